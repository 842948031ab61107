/* test_packed_mixed.c - h5q_read_packed on a small random model (q/k/v biases, GQA,
 * sizes that are not multiples of the group) whose linears mix bits 2, 3, 4, 8 and groups
 * 32, per-channel, 64, 128: bits 2/4 load packed and bit-exact to the kq_qmat written with no FP32
 * copy, bits 3/8 load dequantized (counted in n_dequant), the other tensors equal
 * h5q_read's; prefill logits (B = 2, T = 20 rows through kq_gemm) equal the FP32 forward
 * on the dequantized weights to 1e-4 relative; a KV-cached prefill (kq_gemm) equals it
 * too and decode steps (kq_gemv) keep every GEMV output within KQ_GEMV_Q8_BOUND; an FP32
 * container loads with no packed layer. Needs no ../shared data. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "forward.h"
#include "h5model.h"
#include "h5qmodel.h"
#include "kvcache.h"
#include "q8_probe.h"
#include "quant.h"
#include "rand_model.h"
#include "test_util.h"
#include "upq_err.h"

#define TOL 1e-4

static void check_tensors(tfm_model *dq, tfm_model *pk, const kq_qmat *ql, int64_t n_dequant)
{
    const tfm_config *c = &dq->cfg;
    int64_t want_dq = 0, bad = 0;
    for (int64_t i = 0; i < c->L * TFM_NPROJ; i++) {
        int64_t l = i / TFM_NPROJ;
        int p = (int)(i % TFM_NPROJ), packs = ql[i].bits == 2 || ql[i].bits == 4;
        const kq_qmat *q = pk->layers[l].pq[p];
        want_dq += !packs;
        if (packs) {
            bad += !q || weight_of(pk, l, p) || memcmp(q->data, ql[i].data, quant_qmat_bytes(&ql[i])) != 0;
        } else {
            bad += q || memcmp(weight_of(pk, l, p), weight_of(dq, l, p),
                               (size_t)(ql[i].N * ql[i].K) * sizeof(float)) != 0;
        }
    }
    CHECK_MSG(bad == 0, "%lld linears loaded wrongly", (long long)bad);
    CHECK(n_dequant == want_dq && pk->n_packed == c->L * TFM_NPROJ - want_dq);
    CHECK(!memcmp(pk->tok_emb, dq->tok_emb, (size_t)(c->V * c->C) * sizeof(float)));
    for (int64_t l = 0; l < c->L; l++)
        CHECK(!memcmp(pk->layers[l].bq, dq->layers[l].bq, (size_t)(c->H * c->D) * sizeof(float)) &&
              !memcmp(pk->layers[l].mlp_norm, dq->layers[l].mlp_norm, (size_t)c->C * sizeof(float)));
    printf("mixed: %lld packed, %lld dequantized (bits 3/8)\n", (long long)pk->n_packed, (long long)n_dequant);
}

static void check_forward(tfm_model *dq, tfm_model *pk, const int32_t *tok, int64_t B, int64_t T)
{
    tfm_acts a, b;
    CHECK_OK(tfm_acts_alloc_model(&a, dq, B, T));
    CHECK_OK(tfm_acts_alloc_model(&b, pk, B, T));
    CHECK_OK(tfm_forward(dq, &a, tok, B, T, NULL));
    CHECK_OK(tfm_forward(pk, &b, tok, B, T, NULL));
    double e = rel_err(b.logits, a.logits, B * T * dq->cfg.V);
    printf("mixed: prefill %lld x %lld (kq_gemm) logits rel err %.3g\n", (long long)B, (long long)T, e);
    EXPECT_CLOSE(e, TOL, "prefill %.3g > %.0e", e, TOL);
    tfm_acts_free(&a);
    tfm_acts_free(&b);
}

/* KV cache: prefill of S tokens (kq_gemm) equals the FP32 one; then decode steps
 * (kq_gemv) with every GEMV output checked against its bound. */
static void check_kv(tfm_model *dq, tfm_model *pk, const int32_t *tok, int64_t S, int64_t steps)
{
    tfm_kv k1, k2;
    int64_t slot = 0, V = dq->cfg.V;
    probe_ctx pc = {.envelope = 0};
    pc.row = malloc(256 * sizeof(float));
    pc.d = malloc(16 * sizeof(double));
    CHECK(dq->cfg.F <= 256 && dq->cfg.C <= 256);
    CHECK_OK(tfm_kv_init_model(&k1, dq, 1, S + steps, S));
    CHECK_OK(tfm_kv_init_model(&k2, pk, 1, S + steps, S));
    k2.pws.probe = probe;
    k2.pws.probe_ctx = &pc;
    CHECK_OK(tfm_kv_forward(dq, &k1, &slot, 1, tok, S, 1));
    CHECK_OK(tfm_kv_forward(pk, &k2, &slot, 1, tok, S, 1));
    double e = rel_err(k2.logits, k1.logits, S * V);
    EXPECT_CLOSE(e, TOL, "kv prefill %.3g > %.0e", e, TOL);
    for (int64_t t = 0; t < steps; t++) {
        CHECK_OK(tfm_kv_forward(dq, &k1, &slot, 1, tok + S + t, 1, 0));
        CHECK_OK(tfm_kv_forward(pk, &k2, &slot, 1, tok + S + t, 1, 0));
    }
    printf("mixed: kv prefill %lld (kq_gemm) rel err %.3g; %lld decode steps: %lld GEMV outputs, %lld outside "
           "KQ_GEMV_Q8_BOUND (max |err|/bound %.3f)\n", (long long)S, e, (long long)steps, (long long)pc.outputs,
           (long long)pc.bad, pc.max_ratio);
    CHECK(pc.outputs > 0 && pc.bad == 0);
    tfm_kv_free(&k1);
    tfm_kv_free(&k2);
    free(pc.row);
    free(pc.d);
}

int main(void)
{
    char dir[] = "/tmp/test_packed_mixed_XXXXXX", p1[256], p2[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(p1, sizeof p1, "%s/q.h5", dir);
    snprintf(p2, sizeof p2, "%s/fp.h5", dir);
    tfm_config c = rm_config(0, 0);
    tfm_model m, dq, pk;
    CHECK_OK(tfm_model_alloc(&m, &c));
    rm_model_init(&m);
    kq_qmat *ql = calloc((size_t)(c.L * TFM_NPROJ), sizeof *ql);
    int bits[] = {2, 3, 4, 8, 4, 2}, groups[] = {32, 0, 64, 128};
    for (int64_t i = 0; i < c.L * TFM_NPROJ; i++) {
        int64_t N, K;
        tfm_proj_shape(&c, (int)(i % TFM_NPROJ), &N, &K);
        CHECK_OK(quant_qmat_init(&ql[i], bits[i % 6], groups[i % 4], N, K));
        quant_rtn(&ql[i], weight_of(&m, i / TFM_NPROJ, (int)(i % TFM_NPROJ)), K, NULL, NULL, 0);
    }
    h5m_provenance prov;
    h5m_prov_init(&prov, "ptq-rtn", 0, NULL);
    snprintf(prov.created, sizeof prov.created, "2026-01-01T00:00:00Z");
    CHECK_OK(h5q_write(p1, &m, ql, &prov, NULL, 0));
    int64_t n_dequant = -1, B = 2, T = 20;
    CHECK_OK(h5q_read(p1, &dq));
    CHECK_OK(h5q_read_packed(p1, &pk, &n_dequant));
    int32_t tok[40];
    for (int i = 0; i < 40; i++) tok[i] = (int32_t)((i * 7 + 3) % c.V);
    if (!tu_failures) {
        check_tensors(&dq, &pk, ql, n_dequant);
        check_forward(&dq, &pk, tok, B, T);
        check_kv(&dq, &pk, tok, 12, 6);
    }
    tfm_model_free(&dq);
    tfm_model_free(&pk);
    /* An FP32 container: no packed layer, nothing dequantized. */
    CHECK_OK(h5q_write(p2, &m, NULL, &prov, NULL, 0));
    CHECK_OK(h5q_read_packed(p2, &pk, &n_dequant));
    CHECK(pk.n_packed == 0 && n_dequant == 0 && pk.n_params == m.n_params &&
          !memcmp(pk.mem, m.mem, (size_t)m.n_params * sizeof(float)));
    tfm_model_free(&pk);
    for (int64_t i = 0; i < c.L * TFM_NPROJ; i++) quant_qmat_free(&ql[i]);
    free(ql);
    tfm_model_free(&m);
    unlink(p1), unlink(p2), rmdir(dir);
    return tu_finish("test_packed_mixed");
}
