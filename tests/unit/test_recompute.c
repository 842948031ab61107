/* test_recompute.c - activation recomputation (recompute.h) on a small random model (3
 * layers, GQA, q/k/v biases, no ../shared data) against the stored-activation passes of
 * forward.h/backward.h, bit for bit:
 * 1. the whole model as one range: logits and every parameter gradient equal
 *    tfm_forward's and tfm_backward's;
 * 2. two stages ([0, 2) with the embedding, [2, 3) with the head) and two micro-batches in
 *    flight on the first stage (forward A, forward B, then the backwards; one shared work
 *    area, per-micro-batch residuals only): logits, dx and the accumulated gradients equal
 *    the whole model's run on A then B;
 * 3. a backward whose B differs from the last forward is UPQ_EINPUT. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backward.h"
#include "forward.h"
#include "loss.h"
#include "rand_model.h"
#include "recompute.h"
#include "test_util.h"
#include "upq_err.h"

#define B_ 2
#define T_ 11

static void tokens(int32_t *tok, int32_t *tgt, const tfm_config *c, int salt)
{
    for (int i = 0; i < B_ * T_; i++) tok[i] = (int32_t)((i * 7 + 3 + salt * 5) % c->V);
    tfm_next_token_targets(tgt, tok, NULL, B_, T_);
}

static int same(const float *a, const float *b, int64_t n) { return !memcmp(a, b, (size_t)n * sizeof(float)); }

static void test_whole(const tfm_model *m)
{
    const tfm_config *c = &m->cfg;
    int32_t tok[B_ * T_], tgt[B_ * T_];
    tokens(tok, tgt, c, 0);
    int64_t BT = B_ * T_;
    tfm_model g0, g1;
    CHECK_OK(tfm_model_alloc(&g0, c));
    CHECK_OK(tfm_model_alloc(&g1, c));
    tfm_acts a, w;
    CHECK_OK(tfm_acts_alloc(&a, c, B_, T_, 1));
    CHECK_OK(tfm_forward(m, &a, tok, B_, T_, NULL));
    tfm_ce_loss(a.dlogits, a.logits, tgt, BT, c->V, NULL);
    CHECK_OK(tfm_backward(m, &g0, &a, tok, B_, T_));
    CHECK_OK(tfm_rc_work_alloc(&w, c, 1, 1, B_, T_));
    float *resid = malloc((size_t)tfm_rc_resid_floats(c, 0, c->L, B_, T_) * sizeof(float));
    CHECK(resid != NULL);
    CHECK_OK(tfm_rc_forward(m, NULL, &w, resid, tok, NULL, 0, c->L, B_, T_));
    CHECK_MSG(same(w.logits, a.logits, BT * c->V), "recomputation: logits differ from tfm_forward's");
    tfm_ce_loss(w.dlogits, w.logits, tgt, BT, c->V, NULL);
    CHECK_OK(tfm_rc_backward(m, &g1, NULL, &w, resid, tok, NULL, NULL, 0, c->L, B_, T_));
    CHECK_MSG(same(g0.mem, g1.mem, g0.n_params), "recomputation: gradients differ from tfm_backward's");
    double gn = 0;
    for (int64_t i = 0; i < g0.n_params; i++) gn += fabs(g0.mem[i]);
    CHECK(isfinite(gn) && gn > 0);
    CHECK(tfm_rc_backward(m, &g1, NULL, &w, resid, tok, NULL, NULL, 0, c->L, 1, T_) == UPQ_EINPUT);
    free(resid);
    tfm_acts_free(&a);
    tfm_acts_free(&w);
    tfm_model_free(&g0);
    tfm_model_free(&g1);
}

static void test_stages(const tfm_model *m)
{
    const tfm_config *c = &m->cfg;
    int32_t tok[2][B_ * T_], tgt[2][B_ * T_];
    int64_t BT = B_ * T_, BTC = BT * c->C;
    tfm_model g0, g1;
    CHECK_OK(tfm_model_alloc(&g0, c));
    CHECK_OK(tfm_model_alloc(&g1, c));
    tfm_acts a, w0, w1;
    CHECK_OK(tfm_acts_alloc(&a, c, B_, T_, 1));
    float *ref = malloc((size_t)(2 * BT * c->V) * sizeof(float));
    CHECK(ref != NULL);
    for (int j = 0; j < 2; j++) { /* the reference: A then B through the whole model */
        tokens(tok[j], tgt[j], c, j + 1);
        CHECK_OK(tfm_forward(m, &a, tok[j], B_, T_, NULL));
        memcpy(ref + j * BT * c->V, a.logits, (size_t)(BT * c->V) * sizeof(float));
        tfm_ce_loss(a.dlogits, a.logits, tgt[j], BT, c->V, NULL);
        CHECK_OK(tfm_backward(m, &g0, &a, tok[j], B_, T_));
    }
    CHECK_OK(tfm_rc_work_alloc(&w0, c, 1, 0, B_, T_));
    CHECK_OK(tfm_rc_work_alloc(&w1, c, 0, 1, B_, T_));
    int64_t n0 = tfm_rc_resid_floats(c, 0, 2, B_, T_), n1 = tfm_rc_resid_floats(c, 2, 3, B_, T_);
    float *r0 = malloc((size_t)(2 * n0) * sizeof(float)), *r1 = malloc((size_t)n1 * sizeof(float));
    float *dx = malloc((size_t)(2 * BTC) * sizeof(float));
    CHECK(r0 && r1 && dx);
    for (int j = 0; j < 2; j++) /* stage 0: both micro-batches in flight */
        CHECK_OK(tfm_rc_forward(m, NULL, &w0, r0 + j * n0, tok[j], NULL, 0, 2, B_, T_));
    for (int j = 0; j < 2; j++) { /* stage 1: F B F B */
        CHECK_OK(tfm_rc_forward(m, NULL, &w1, r1, NULL, r0 + j * n0 + 2 * BTC, 2, 3, B_, T_));
        CHECK_MSG(same(w1.logits, ref + j * BT * c->V, BT * c->V), "staged recomputation: logits of micro-batch %d differ", j);
        tfm_ce_loss(w1.dlogits, w1.logits, tgt[j], BT, c->V, NULL);
        CHECK_OK(tfm_rc_backward(m, &g1, NULL, &w1, r1, NULL, NULL, dx + j * BTC, 2, 3, B_, T_));
    }
    for (int j = 0; j < 2; j++)
        CHECK_OK(tfm_rc_backward(m, &g1, NULL, &w0, r0 + j * n0, tok[j], dx + j * BTC, NULL, 0, 2, B_, T_));
    CHECK_MSG(same(g0.mem, g1.mem, g0.n_params), "staged recomputation: accumulated gradients differ from the whole model's");
    free(ref), free(r0), free(r1), free(dx);
    tfm_acts_free(&a);
    tfm_acts_free(&w0);
    tfm_acts_free(&w1);
    tfm_model_free(&g0);
    tfm_model_free(&g1);
}

int main(void)
{
    tfm_config c = rm_config(0, 0);
    c.L = 3;
    tfm_model m;
    CHECK_OK(tfm_model_alloc(&m, &c));
    rm_model_init(&m);
    test_whole(&m);
    test_stages(&m);
    tfm_model_free(&m);
    return tu_finish("test_recompute");
}
