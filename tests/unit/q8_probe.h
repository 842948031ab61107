/* q8_probe.h - a tfm_pws probe (linear_packed.h) for the packed-model tests: checks every
 * kq_gemv product against KQ_GEMV_Q8_BOUND of kq_gemv.h, recomputed here from the codes,
 * scales and the activations (exact product in double from kq_dequant_row_ref), and in
 * envelope mode replaces each output by exact +- bound in the direction of its actual
 * error; also the logit metric and weight lookup both packed-model tests use. Test helper
 * only (not a test itself). */
#ifndef UPQ_TEST_Q8_PROBE_H
#define UPQ_TEST_Q8_PROBE_H

#include <math.h>
#include <stdint.h>

#include "f16.h"
#include "kq_format.h"
#include "kq_gemv.h"
#include "model.h"
#include "test_util.h"

/* max|a - b| / max|b| over n values (NaN if anything is not finite): the tests' logit metric. */
static inline double rel_err(const float *a, const float *b, int64_t n) { return tu_rel_err(a, b, n); }

/* The FP32 weight of linear p (q, k, v, o, gate, up, down) of layer l. */
static inline float *weight_of(tfm_model *m, int64_t l, int p)
{
    tfm_layer *w = &m->layers[l];
    float *ws[TFM_NPROJ] = {w->wq, w->wk, w->wv, w->wo, w->w_gate, w->w_up, w->w_down};
    return ws[p];
}

typedef struct {
    int envelope;          /* 1: replace each output by exact +- bound */
    int64_t outputs, bad;
    double max_ratio;      /* max |err| / bound */
    float *row;            /* K floats */
    double *d;             /* K/32 activation step bounds */
} probe_ctx;

/* KQ_GEMV_Q8_BOUND of output n: sum over 32-chunks c of |s| * sum_c q * d_c / 2 with
 * d_c = a/127 + A/127^2 (a = the chunk's max|x|, A = its block's), d given per chunk. */
static double q8_bound(const kq_qmat *W, int64_t n, const double *d)
{
    uint8_t codes[128];
    double qb = 0.0;
    for (int64_t b = 0; b < W->nb; b++) {
        uint16_t s16, m16;
        kq_block_unpack(W, kq_qmat_block(W, n, b), codes, &s16, &m16);
        int64_t k0 = b * W->bg;
        for (int64_t k1 = k0; k1 < k0 + W->bg && k1 < W->K; k1 += 32) {
            double qs = 0.0;
            for (int64_t k = k1; k < k1 + 32 && k < W->K; k++) qs += codes[k - k0];
            qb += fabs(kq_f16_to_f32(s16)) * qs * d[k1 / 32] / 2.0;
        }
    }
    return qb;
}

/* The activation step bound d_c per 32-chunk of x (K values) for W's blocks. */
static void chunk_steps(const kq_qmat *W, const float *x, double *d)
{
    for (int64_t k0 = 0; k0 < W->K; k0 += W->bg) {
        double A = 0.0;
        for (int64_t k = k0; k < k0 + W->bg && k < W->K; k++) A = fabs(x[k]) > A ? fabs(x[k]) : A;
        for (int64_t k1 = k0; k1 < k0 + W->bg && k1 < W->K; k1 += 32) {
            double a = 0.0;
            for (int64_t k = k1; k < k1 + 32 && k < W->K; k++) a = fabs(x[k]) > a ? fabs(x[k]) : a;
            d[k1 / 32] = a / 127.0 + A / (127.0 * 127.0);
        }
    }
}

static void probe(void *vctx, const kq_qmat *W, const float *X, int64_t M, float *Y)
{
    probe_ctx *p = vctx;
    for (int64_t i = 0; i < M; i++) {
        const float *x = X + i * W->K;
        chunk_steps(W, x, p->d);
        for (int64_t n = 0; n < W->N; n++) {
            kq_dequant_row_ref(W, n, 0, W->K, p->row);
            double y = 0.0, sabs = 0.0;
            for (int64_t k = 0; k < W->K; k++) {
                y += (double)x[k] * p->row[k];
                sabs += fabs((double)x[k] * p->row[k]);
            }
            double qb = q8_bound(W, n, p->d), e = Y[i * W->N + n] - y;
            p->outputs++;
            p->bad += !(fabs(e) <= qb + KQ_GEMV_FP_RTOL * sabs);
            if (qb > 0 && fabs(e) / qb > p->max_ratio) p->max_ratio = fabs(e) / qb;
            if (p->envelope) Y[i * W->N + n] = (float)(y + (e >= 0 ? qb : -qb));
        }
    }
}

#endif
