/* test_packed_model.c - the model on packed INT4/INT2 linears (h5q_read_packed, kq_gemm /
 * kq_gemv in the forward passes) against the FP32 forward on the dequantized weights
 * (h5q_read), on tinyllama-15m quantized with RTN INT4 g128 and INT2 g64 (quant.h) and
 * written to a container. Checks:
 *  - loading: every linear packed, bit-exact to the kq_qmat written (the kernels' packing of the
 *    same codes), no FP32 copy of them, the other tensors equal; resident bytes printed;
 *  - prefill (T = 64 > KQ_GEMV_MAX_M rows, kq_gemm) on golden.h5's input_ids: logits
 *    within 1e-4 relative (max|diff| / max|ref|);
 *  - decode (KV cache, one row per step, kq_gemv with int8 activations), teacher-forced
 *    on the same ids: every GEMV output within KQ_GEMV_Q8_BOUND (recomputed here from
 *    the codes and the activations, as kq_gemv.h states it), and the logit difference
 *    within the tolerance that bound implies: the difference of a run in which every
 *    GEMV output is pushed to its bound (exact + bound, in the direction of its actual
 *    error). Greedy generation agreement is printed. Skips without ../shared. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "forward.h"
#include "generate.h"
#include "h5model.h"
#include "h5qmodel.h"
#include "h5tokens.h"
#include "hf_model.h"
#include "kq_gemv.h"
#include "q8_probe.h"
#include "kvcache.h"
#include "quant.h"
#include "test_util.h"
#include "tokenizer.h"
#include "upq_err.h"

#define PREFILL_TOL 1e-4
#define PROMPT 16     /* decode prompt: > KQ_GEMV_MAX_M, so its prefill runs kq_gemm */
#define GEN_TOKENS 32
#define DECODE_STEPS 16 /* teacher-forced decode steps checked (T = PROMPT + DECODE_STEPS) */

/* Teacher-forced decode of ids[PROMPT..T) after a PROMPT-token prefill; logits of every
 * decode step into out ((T - PROMPT), V). */
static void decode_logits(const tfm_model *m, const int32_t *ids, int64_t T, probe_ctx *pc, float *out)
{
    tfm_kv kv;
    int64_t slot = 0, V = m->cfg.V;
    CHECK_OK(tfm_kv_init_model(&kv, m, 1, T, PROMPT));
    if (pc) {
        kv.pws.probe = probe;
        kv.pws.probe_ctx = pc;
    }
    CHECK_OK(tfm_kv_forward(m, &kv, &slot, 1, ids, PROMPT, 0));
    memcpy(out, kv.logits, (size_t)V * sizeof(float));
    for (int64_t t = PROMPT; t + 1 < T; t++) {
        CHECK_OK(tfm_kv_forward(m, &kv, &slot, 1, ids + t, 1, 0));
        memcpy(out + (t - PROMPT + 1) * V, kv.logits, (size_t)V * sizeof(float));
    }
    tfm_kv_free(&kv);
}

/* ---- the checks of one format ---- */

static void check_load(tfm_model *dq, tfm_model *pk, const kq_qmat *ql, const char *name)
{
    const tfm_config *c = &dq->cfg;
    int bad = 0;
    CHECK(pk->n_packed == c->L * TFM_NPROJ);
    for (int64_t i = 0; i < c->L * TFM_NPROJ; i++) {
        const kq_qmat *q = pk->layers[i / TFM_NPROJ].pq[i % TFM_NPROJ];
        size_t nb = quant_qmat_bytes(&ql[i]);
        bad += !q || q->N != ql[i].N || q->K != ql[i].K || memcmp(q->data, ql[i].data, nb) != 0;
        bad += weight_of(pk, i / TFM_NPROJ, (int)(i % TFM_NPROJ)) != NULL; /* no FP32 copy */
    }
    CHECK_MSG(bad == 0, "%s: %d packed layers differ from the written kq_qmat or keep an FP32 copy", name, bad);
    CHECK(!memcmp(pk->tok_emb, dq->tok_emb, (size_t)(c->V * c->C) * sizeof(float)));
    CHECK(!memcmp(pk->lm_head, dq->lm_head, (size_t)(c->V * c->C) * sizeof(float)));
    CHECK(!memcmp(pk->final_norm, dq->final_norm, (size_t)c->C * sizeof(float)));
    for (int64_t l = 0; l < c->L; l++)
        CHECK(!memcmp(pk->layers[l].attn_norm, dq->layers[l].attn_norm, (size_t)c->C * sizeof(float)) &&
              !memcmp(pk->layers[l].mlp_norm, dq->layers[l].mlp_norm, (size_t)c->C * sizeof(float)));
    size_t lf = tfm_linear_bytes(dq), lp = tfm_linear_bytes(pk);
    size_t rf = (size_t)dq->n_params * 4, rp = (size_t)pk->n_params * 4 + pk->pq_bytes;
    printf("  %-9s linear weights resident: FP32 %zu bytes, packed %zu bytes (%.2fx smaller); "
           "all weights: FP32 %zu, packed model %zu\n", name, lf, lp, (double)lf / (double)lp, rf, rp);
    CHECK(lp * 6 < lf && rp < rf);
}

static void check_prefill(tfm_model *dq, tfm_model *pk, const int32_t *ids, int64_t T, const char *name)
{
    tfm_acts a, b;
    CHECK_OK(tfm_acts_alloc_model(&a, dq, 1, T));
    CHECK_OK(tfm_acts_alloc_model(&b, pk, 1, T));
    CHECK_OK(tfm_forward(dq, &a, ids, 1, T, NULL));
    CHECK_OK(tfm_forward(pk, &b, ids, 1, T, NULL));
    double e = rel_err(b.logits, a.logits, T * dq->cfg.V);
    printf("  %-9s prefill T=%lld (kq_gemm): logits rel err %.3g (tolerance %.0e)\n", name, (long long)T, e,
           PREFILL_TOL);
    EXPECT_CLOSE(e, PREFILL_TOL, "%s prefill: %.3g > %.0e", name, e, PREFILL_TOL);
    tfm_acts_free(&a);
    tfm_acts_free(&b);
}

static void check_decode(tfm_model *dq, tfm_model *pk, const int32_t *ids, int64_t T, const char *name)
{
    int64_t V = dq->cfg.V, S = T - PROMPT, n = S * V;
    float *ref = malloc((size_t)n * sizeof(float)), *got = malloc((size_t)n * sizeof(float));
    float *env = malloc((size_t)n * sizeof(float));
    probe_ctx pc = {.envelope = 0}, pe = {.envelope = 1};
    int64_t Kmax = dq->cfg.F > dq->cfg.C ? dq->cfg.F : dq->cfg.C;
    Kmax = Kmax > dq->cfg.H * dq->cfg.D ? Kmax : dq->cfg.H * dq->cfg.D;
    pc.row = pe.row = malloc((size_t)Kmax * sizeof(float));
    pc.d = pe.d = malloc((size_t)(Kmax / 32 + 1) * sizeof(double));
    decode_logits(dq, ids, T, NULL, ref);
    decode_logits(pk, ids, T, &pc, got);
    decode_logits(pk, ids, T, &pe, env);
    double e = rel_err(got, ref, n), tol = rel_err(env, ref, n);
    printf("  %-9s decode %lld steps (kq_gemv, int8 activations): %lld GEMV outputs, %lld outside "
           "KQ_GEMV_Q8_BOUND, max |err|/bound %.3f; logits rel err %.3g, bound-envelope run %.3g\n",
           name, (long long)S, (long long)pc.outputs, (long long)pc.bad, pc.max_ratio, e, tol);
    CHECK(pc.outputs > 0 && pc.bad == 0);
    EXPECT_CLOSE(e, tol, "%s decode: logits rel err %.3g above the bound envelope's %.3g", name, e, tol);
    free(pc.row);
    free(pc.d);
    free(ref);
    free(got);
    free(env);
}

static void check_generate(tfm_model *dq, tfm_model *pk, const tok_tokenizer *tok, const int32_t *ids,
                           const char *name)
{
    tok_ids prompt = {(int32_t *)ids, PROMPT, PROMPT};
    gen_opts o = gen_opts_default();
    o.max_new_tokens = GEN_TOKENS;
    gen_result a, b;
    CHECK_OK(gen_run(dq, tok, &prompt, 1, &o, &a));
    CHECK_OK(gen_run(pk, tok, &prompt, 1, &o, &b));
    int64_t same = 0, prefix = -1;
    for (int64_t i = 0; i < a.ids.n && i < b.ids.n; i++) {
        same += a.ids.ids[i] == b.ids.ids[i];
        if (prefix < 0 && a.ids.ids[i] != b.ids.ids[i]) prefix = i;
    }
    if (prefix < 0) prefix = a.ids.n < b.ids.n ? a.ids.n : b.ids.n;
    printf("  %-9s greedy generation, %d new tokens: %lld agree (first %lld identical)\n", name, GEN_TOKENS,
           (long long)same, (long long)prefix);
    CHECK(a.ids.n == GEN_TOKENS && b.ids.n == GEN_TOKENS);
    gen_result_free(&a);
    gen_result_free(&b);
}

static void check_format(tfm_model *fp, int bits, int group, const int32_t *ids, int64_t T,
                         const tok_tokenizer *tok, const char *tmpdir)
{
    const tfm_config *c = &fp->cfg;
    char name[32], path[4200];
    snprintf(name, sizeof name, "INT%d g%d", bits, group);
    snprintf(path, sizeof path, "%s/int%d_g%d.h5", tmpdir, bits, group);
    kq_qmat *ql = calloc((size_t)(c->L * TFM_NPROJ), sizeof *ql);
    for (int64_t i = 0; i < c->L * TFM_NPROJ; i++) {
        int64_t N, K;
        tfm_proj_shape(c, (int)(i % TFM_NPROJ), &N, &K);
        CHECK_OK(quant_qmat_init(&ql[i], bits, group, N, K));
        quant_rtn(&ql[i], weight_of(fp, i / TFM_NPROJ, (int)(i % TFM_NPROJ)), K, NULL, NULL, 0);
    }
    h5m_provenance prov;
    h5m_prov_init(&prov, "ptq-rtn", 0, NULL);
    snprintf(prov.created, sizeof prov.created, "2026-01-01T00:00:00Z");
    CHECK_OK(h5q_write(path, fp, ql, &prov, NULL, 0));
    tfm_model dq, pk;
    int64_t n_dequant = -1;
    CHECK_OK(h5q_read(path, &dq));
    CHECK_OK(h5q_read_packed(path, &pk, &n_dequant));
    CHECK(n_dequant == 0);
    /* both formats have a run-time repacked layout: the loader builds it, so the decode
     * checks below run the repacked kernels (kq_repack, tfm_model_repack) */
    for (int64_t i = 0; i < c->L * TFM_NPROJ; i++)
        CHECK(pk.pq_mats && pk.pq_mats[i].data && pk.pq_mats[i].rp && pk.pq_rp_mem);
    if (!tu_failures) {
        check_load(&dq, &pk, ql, name);
        check_prefill(&dq, &pk, ids, T, name);
        check_decode(&dq, &pk, ids, PROMPT + DECODE_STEPS, name);
        check_generate(&dq, &pk, tok, ids, name);
    }
    tfm_model_free(&dq);
    tfm_model_free(&pk);
    for (int64_t i = 0; i < c->L * TFM_NPROJ; i++) quant_qmat_free(&ql[i]);
    free(ql);
    unlink(path);
}

int main(void)
{
    const char *shared = tu_shared_dir();
    char dir[4096], gold[4200], tmp[] = "/tmp/test_packed_model_XXXXXX";
    snprintf(dir, sizeof dir, "%s/models/tinyllama-15m", shared);
    snprintf(gold, sizeof gold, "%s/golden.h5", dir);
    if (access(gold, R_OK) != 0) {
        fprintf(stderr, "SKIPPED: %s is absent\n", gold);
        return TEST_SKIP_RC;
    }
    CHECK(mkdtemp(tmp) != NULL);
    tfm_model fp;
    tok_tokenizer *tok = NULL;
    int64_t *ids64 = NULL, T = 0;
    CHECK_OK(hf_model_load(dir, &fp));
    CHECK_OK(tok_create(dir, &tok));
    CHECK_OK(h5_read_tokens(gold, "/input_ids", &ids64, &T));
    if (tu_failures) return tu_finish("test_packed_model");
    CHECK(T > KQ_GEMV_MAX_M && T >= PROMPT + DECODE_STEPS);
    int32_t *ids = malloc((size_t)T * sizeof *ids);
    for (int64_t i = 0; i < T; i++) ids[i] = (int32_t)ids64[i];
    printf("tinyllama-15m, golden.h5 input_ids (T = %lld), packed vs FP32 on the dequantized weights\n",
           (long long)T);
    check_format(&fp, 4, 128, ids, T, tok, tmp);
    check_format(&fp, 2, 64, ids, T, tok, tmp);
    rmdir(tmp);
    free(ids);
    free(ids64);
    tok_destroy(tok);
    tfm_model_free(&fp);
    return tu_finish("test_packed_model");
}
