/* test_golden_forward.c - tfm_forward on the 64-token input_ids of each test model
 * against PyTorch's golden.h5 (fp32 CPU, eager): logits, every hf_hidden_states
 * entry and hidden/layer_XX. Metric: max|ours - ref| / max|ref| <= 1e-4 per tensor.
 * Also runs the same prompt as a batch of 2 (identical rows) and a 40-token prefix,
 * which must reproduce the corresponding reference rows. Skips without ../shared. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "h5arrays.h"
#include "h5tokens.h"
#include "hf_model.h"
#include "test_util.h"
#include "upq_err.h"

#define TOL 1e-4

static void check_tensor(const char *model, const char *what, const float *ours, const float *ref,
                         int64_t n)
{
    double e = tu_rel_err(ours, ref, n);
    printf("  %-18s %-22s rel err %.3g\n", model, what, e);
    EXPECT_CLOSE(e, TOL, "%s %s: %.3g > %.1g", model, what, e, TOL);
}

static void golden_model(const char *shared, const char *name)
{
    char dir[4096], gold[4200];
    snprintf(dir, sizeof dir, "%s/models/%s", shared, name);
    snprintf(gold, sizeof gold, "%s/golden.h5", dir);
    tfm_model m;
    int rc = hf_model_load(dir, &m);
    CHECK_OK(rc);
    if (rc) return;
    const tfm_config *c = &m.cfg;
    int64_t *ids = NULL, T = 0, shp[8];
    int nd = 0;
    float *ref_logits = NULL, *ref_hidden = NULL, *ref_layer = NULL;
    CHECK_OK(h5_read_tokens(gold, "/input_ids", &ids, &T));
    CHECK_OK(h5a_read_f32(gold, "/logits", &ref_logits, &nd, shp));
    CHECK_OK(h5a_read_f32(gold, "/hf_hidden_states", &ref_hidden, &nd, shp));
    if (!ids || !ref_logits || !ref_hidden) return;
    CHECK(shp[0] == c->L + 1 && shp[1] == T && shp[2] == c->C);

    int32_t *tok = malloc(2 * T * sizeof *tok);
    for (int64_t i = 0; i < 2 * T; i++) tok[i] = (int32_t)ids[i % T];
    int64_t BTC = 2 * T * c->C;
    float *hid = malloc((size_t)((c->L + 1) * BTC) * sizeof(float));
    tfm_acts a;
    CHECK_OK(tfm_acts_alloc(&a, c, 2, T, 0));
    /* Batch of one. */
    CHECK_OK(tfm_forward(&m, &a, tok, 1, T, hid));
    check_tensor(name, "logits", a.logits, ref_logits, T * c->V);
    for (int64_t l = 0; l <= c->L; l++) {
        char what[64];
        snprintf(what, sizeof what, "hf_hidden_states[%lld]", (long long)l);
        check_tensor(name, what, hid + l * T * c->C, ref_hidden + l * T * c->C, T * c->C);
    }
    char ds[64];
    snprintf(ds, sizeof ds, "/hidden/layer_%02lld", (long long)(c->L - 1));
    CHECK_OK(h5a_read_f32(gold, ds, &ref_layer, &nd, shp));
    if (ref_layer) check_tensor(name, ds, a.resid + (c->L & 1) * 2 * T * c->C, ref_layer, T * c->C);
    /* Batch of two identical sequences: both rows must match. */
    CHECK_OK(tfm_forward(&m, &a, tok, 2, T, NULL));
    check_tensor(name, "logits batch row 1", a.logits + T * c->V, ref_logits, T * c->V);
    /* A prefix: causality means its logits are the reference's first rows. */
    CHECK_OK(tfm_forward(&m, &a, tok, 1, 40, NULL));
    check_tensor(name, "logits prefix 40", a.logits, ref_logits, 40 * c->V);
    tfm_acts_free(&a);
    free(tok);
    free(hid);
    free(ids);
    free(ref_logits);
    free(ref_hidden);
    free(ref_layer);
    tfm_model_free(&m);
}

int main(void)
{
    const char *shared = tu_shared_dir();
    golden_model(shared, "stories260k");
    golden_model(shared, "tinyllama-15m");
    golden_model(shared, "tinyllama-15m-instruct");
    return tu_finish("test_golden_forward");
}
