/* test_kvcache.c - the KV-cached incremental forward (kvcache.h) against B's full
 * forward (forward.h): every row of logits fed as a prefill, then one token at a time,
 * and with several slots of different lengths fed together, must equal the full
 * forward's row t within 1e-5 (max abs error over the row / max(1, max |logit|)). Runs on
 * random models (GQA, q/k/v bias, llama3 RoPE, tied) and on tinyllama-15m when
 * ../shared is present. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "hf_model.h"
#include "kvcache.h"
#include "rand_model.h"
#include "test_util.h"
#include "upq_err.h"

#define TOL 1e-5

/* max |a - b| over the row / max(1, max |b|): logits of real models reach 20-30. */
static double row_err(const float *a, const float *b, int64_t V)
{
    return tu_max_abs_err(a, b, V) / tu_max(1.0, tu_max_abs(b, V));
}

/* Full forward of the T tokens of seq b, then the cache fed in pieces: a prefill of
 * `pre` tokens (all rows), then one token per call, two slots in every call. */
static void check_model(const char *label, const tfm_model *m, const int32_t *tok, int64_t T,
                        int64_t pre)
{
    const tfm_config *c = &m->cfg;
    int64_t V = c->V;
    tfm_acts a;
    CHECK_OK(tfm_acts_alloc(&a, c, 1, T, 0));
    CHECK_OK(tfm_forward(m, &a, tok, 1, T, NULL));
    tfm_kv kv;
    CHECK_OK(tfm_kv_init(&kv, c, 3, T, T * 2));
    double worst = 0;
    /* slot 2 gets the whole prefix as one prefill; slot 0 a shorter prefill */
    int64_t s2 = 2, s0 = 0;
    CHECK_OK(tfm_kv_forward(m, &kv, &s2, 1, tok, pre, 1));
    for (int64_t t = 0; t < pre; t++) {
        worst = tu_max(worst, row_err(kv.logits + t * V, a.logits + t * V, V));
    }
    CHECK_OK(tfm_kv_forward(m, &kv, &s0, 1, tok, 1, 0));
    worst = tu_max(worst, row_err(kv.logits, a.logits, V));
    /* then both slots step together, slot 0 lagging behind slot 2 */
    for (int64_t t = pre; t < T; t++) {
        int64_t slots[2] = {2, 0};
        int32_t in[2] = {tok[t], tok[kv.len[0]]};
        int64_t p0 = kv.len[0];
        CHECK_OK(tfm_kv_forward(m, &kv, slots, 2, in, 1, 0));
        worst = tu_max(worst, row_err(kv.logits, a.logits + t * V, V));
        worst = tu_max(worst, row_err(kv.logits + V, a.logits + p0 * V, V));
    }
    /* two slots fed two tokens each with all_rows: rows in (slot, token) order */
    CHECK(kv.len[2] == T);
    tfm_kv_reset(&kv, 2);
    int64_t three[2] = {2, 1};
    int32_t two[4] = {tok[0], tok[1], tok[0], tok[1]};
    CHECK_OK(tfm_kv_forward(m, &kv, three, 2, two, 2, 1));
    for (int64_t r = 0; r < 4; r++) worst = tu_max(worst, row_err(kv.logits + r * V, a.logits + (r % 2) * V, V));
    printf("  %-24s T=%lld prefill %lld: max rel |kv - full| = %.3g\n", label, (long long)T,
           (long long)pre, worst);
    EXPECT_CLOSE(worst, TOL, "%s: %.3g > %g", label, worst, TOL);
    /* passing the cache's end is an input error, not a crash */
    int32_t one = tok[0];
    CHECK(tfm_kv_forward(m, &kv, &s0, 1, &one, T, 0) == UPQ_EINPUT);
    int32_t bad = (int32_t)V;
    CHECK(tfm_kv_forward(m, &kv, &s2, 1, &bad, 1, 0) == UPQ_EINPUT);
    tfm_kv_free(&kv);
    tfm_acts_free(&a);
}

static void random_models(void)
{
    for (int variant = 0; variant < 3; variant++) {
        tfm_config c = rm_config(variant == 2, variant == 1);
        tfm_model m;
        CHECK_OK(tfm_model_alloc(&m, &c));
        rm_model_init(&m);
        int32_t tok[40];
        for (int i = 0; i < 40; i++) tok[i] = (int32_t)((i * 7 + 3) % c.V);
        char label[64];
        snprintf(label, sizeof label, "random model %d", variant);
        check_model(label, &m, tok, 40, 13);
        tfm_model_free(&m);
    }
}

static void tinyllama(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/models/tinyllama-15m", tu_shared_dir());
    tfm_model m;
    int rc = hf_model_load(dir, &m);
    CHECK_OK(rc);
    if (rc) return;
    int32_t tok[96];
    for (int i = 0; i < 96; i++) tok[i] = (int32_t)((i * 131 + 1) % m.cfg.V);
    check_model("tinyllama-15m", &m, tok, 96, 50);
    tfm_model_free(&m);
}

int main(void)
{
    random_models();
    tinyllama();
    return tu_finish("test_kvcache");
}
