/* test_golden_grad.c - whole-model gradient of tinyllama-15m: mean next-token CE over
 * the 63 predictions of input_ids (tfm_forward, tfm_ce_loss, tfm_backward) against
 * PyTorch's golden.h5 /grad/ tensors (eval mode, fp32) and its loss attribute.
 * Metric per tensor: max|ours - ref| / max|ref| <= 1e-4; loss within 1e-5 relative.
 * Then the frozen-embedding backward (no tok_emb and no layer-0 attention-norm target, as
 * qat has it; it skips the first block's input gradient): every other gradient must equal
 * the full backward's bit for bit. Skips without ../shared. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backward.h"
#include "forward.h"
#include "h5arrays.h"
#include "h5tokens.h"
#include "hf_model.h"
#include "loss.h"
#include "test_util.h"
#include "upq_err.h"

typedef struct {
    const char *gold;
    int checked;
} grad_ctx;

/* Called for every parameter of the gradient model; compares those golden.h5 has. */
static int compare_grad(void *ctx, const char *name, float *data, int ndim, const int64_t shape[2])
{
    grad_ctx *g = ctx;
    char ds[300];
    snprintf(ds, sizeof ds, "/grad/%s", name);
    float *ref = NULL;
    int nd = 0;
    int64_t shp[8];
    upq_err_clear();
    if (h5a_read_f32(g->gold, ds, &ref, &nd, shp) != UPQ_OK) return UPQ_OK; /* not stored */
    int64_t n = ndim == 2 ? shape[0] * shape[1] : shape[0];
    CHECK(nd == ndim && shp[0] == shape[0]);
    double mr = tu_max_abs(ref, n), e = tu_rel_err(data, ref, n);
    printf("  %-45s max|ref| %.3g  rel err %.3g\n", name, mr, e);
    EXPECT_CLOSE(e, 1e-4, "%s: %.3g", name, e);
    g->checked++;
    free(ref);
    return UPQ_OK;
}

typedef struct {
    const tfm_model *full, *frozen;
    int64_t compared, differ;
} same_ctx;

/* The frozen run's tensor against the full run's at the same offset (both carved alike). */
static int compare_same(void *ctx, const char *name, float *data, int ndim, const int64_t shape[2])
{
    same_ctx *s = ctx;
    if (!strcmp(name, "model.embed_tokens.weight") || !strcmp(name, "model.layers.0.input_layernorm.weight"))
        return UPQ_OK;
    int64_t n = ndim == 2 ? shape[0] * shape[1] : shape[0];
    const float *full = s->full->mem + (data - s->frozen->mem);
    int same = memcmp(full, data, (size_t)n * sizeof(float)) == 0 && isfinite(tu_max_abs(data, n));
    CHECK_MSG(same, "frozen-embedding backward differs in %s", name);
    s->compared++;
    s->differ += !same;
    return UPQ_OK;
}

int main(void)
{
    const char *shared = tu_shared_dir();
    char dir[4096], gold[4200];
    snprintf(dir, sizeof dir, "%s/models/tinyllama-15m", shared);
    snprintf(gold, sizeof gold, "%s/golden.h5", dir);
    tfm_model m, g;
    int64_t *ids = NULL, T = 0;
    CHECK_OK(hf_model_load(dir, &m));
    CHECK_OK(h5_read_tokens(gold, "/input_ids", &ids, &T));
    if (tu_failures) return tu_finish("test_golden_grad");
    CHECK_OK(tfm_model_alloc(&g, &m.cfg));
    int32_t *tok = malloc(T * sizeof *tok), *tgt = malloc(T * sizeof *tgt);
    for (int64_t i = 0; i < T; i++) tok[i] = (int32_t)ids[i];
    tfm_next_token_targets(tgt, tok, NULL, 1, T);
    tfm_acts a;
    CHECK_OK(tfm_acts_alloc(&a, &m.cfg, 1, T, 1));
    CHECK_OK(tfm_forward(&m, &a, tok, 1, T, NULL));
    int64_t cnt = 0;
    float loss = tfm_ce_loss(a.dlogits, a.logits, tgt, T, m.cfg.V, &cnt);
    double ref_loss = 0;
    CHECK_OK(h5a_read_attr_f64(gold, "/grad", "loss", &ref_loss));
    printf("  loss %.7f (golden %.7f), %lld predictions\n", loss, ref_loss, (long long)cnt);
    CHECK(cnt == T - 1);
    CHECK(fabs(loss - ref_loss) <= 1e-5 * ref_loss);
    CHECK_OK(tfm_backward(&m, &g, &a, tok, 1, T));
    grad_ctx ctx = {gold, 0};
    CHECK_OK(tfm_params_foreach(&g, compare_grad, &ctx));
    CHECK(ctx.checked == 3);

    tfm_model g2;
    CHECK_OK(tfm_model_alloc(&g2, &m.cfg));
    CHECK_OK(tfm_forward(&m, &a, tok, 1, T, NULL));
    (void)tfm_ce_loss(a.dlogits, a.logits, tgt, T, m.cfg.V, &cnt);
    float *emb = g2.tok_emb, *n0 = g2.layers[0].attn_norm;
    g2.tok_emb = NULL, g2.layers[0].attn_norm = NULL;
    CHECK_OK(tfm_backward(&m, &g2, &a, tok, 1, T));
    g2.tok_emb = emb, g2.layers[0].attn_norm = n0;
    CHECK(tu_max_abs(n0, m.cfg.C) == 0.0); /* untouched */
    same_ctx sc = {&g, &g2, 0, 0};
    CHECK_OK(tfm_params_foreach(&g2, compare_same, &sc));
    printf("  frozen-embedding backward: %lld tensors compared, %lld differ\n", (long long)sc.compared,
           (long long)sc.differ);
    CHECK(sc.compared == 9 * m.cfg.L + !m.cfg.tie_embeddings); /* all but the two skipped */
    tfm_model_free(&g2);
    tfm_acts_free(&a);
    tfm_model_free(&g);
    tfm_model_free(&m);
    free(tok);
    free(tgt);
    free(ids);
    return tu_finish("test_golden_grad");
}
