/* attention.c - causal grouped-query scaled-dot-product attention (HF eager:
 * scores = q k^T * D^-1/2, causal mask, fp32 softmax, probs v) and its gradient.
 * One (sequence, head) pair per OpenMP iteration, the products single-threaded
 * BLIS calls over causal row blocks. The T x T probabilities are never stored: the
 * forward keeps each row's softmax max and 1/sum, and the backward recomputes one row
 * block of probabilities at a time with the same kernel calls and loops, so they are
 * bit-identical to the forward's. Not RoPE. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "layers.h"
#include "matmul.h"
#include "vexp.h"

/* Rows are processed in blocks of ATT_BLOCK: block [r0, r1) only needs keys 0..r1-1,
 * which skips most of the masked upper triangle (about 44% of the work at T = 512). */
#define ATT_BLOCK 64

int64_t attention_scratch_floats(int64_t T, int64_t nthreads)
{
    return nthreads * 2 * ATT_BLOCK * T;
}

static void scale_row(float *s, int64_t n, float scale)
{
    for (int64_t j = 0; j < n; j++) s[j] *= scale;
}

static void exp_row(float *s, int64_t n, float mx)
{
    for (int64_t j = 0; j < n; j++) s[j] = upq_expf(s[j] - mx);
}

/* Multiplies cols 0..t by inv and zeros t+1 .. end-1 (the rest of the row block). */
static void finish_row(float *s, int64_t t, int64_t end, float inv)
{
    int64_t n = t + 1;
    for (int64_t j = 0; j < n; j++) s[j] *= inv;
    if (n < end) memset(s + n, 0, (size_t)(end - n) * sizeof(float));
}

/* Row t of s: scale, softmax over 0..t, zero to the end of the row block; st gets the
 * row's (max, 1/sum). Split into simple loops so that the compiler vectorizes them
 * (upq_expf); the max uses 8 independent partials (maxss chains), the sum 4 double
 * partials, both in a fixed order. */
static void causal_softmax_row(float *s, float *st, int64_t t, int64_t end, float scale)
{
    int64_t n = t + 1, j;
    float m8[8];
    for (int u = 0; u < 8; u++) m8[u] = -INFINITY;
    scale_row(s, n, scale);
    for (j = 0; j + 8 <= n; j += 8)
        for (int u = 0; u < 8; u++) m8[u] = s[j + u] > m8[u] ? s[j + u] : m8[u];
    for (; j < n; j++) m8[0] = s[j] > m8[0] ? s[j] : m8[0];
    float mx = m8[0];
    for (int u = 1; u < 8; u++) mx = m8[u] > mx ? m8[u] : mx;
    exp_row(s, n, mx);
    double acc[4] = {0, 0, 0, 0};
    for (j = 0; j + 4 <= n; j += 4)
        for (int u = 0; u < 4; u++) acc[u] += s[j + u];
    for (; j < n; j++) acc[0] += s[j];
    float inv = (float)(1.0 / ((acc[0] + acc[1]) + (acc[2] + acc[3])));
    st[0] = mx;
    st[1] = inv;
    finish_row(s, t, end, inv);
}

/* Probabilities of rows r0..r1-1 (cols 0..r1-1) into s (ld T): scores by the same
 * single-threaded product, then the softmax. st_out: the forward, which saves each row's
 * (max, 1/sum); else recomputed from st_in with the same loops (bit-identical). */
static void prob_block(float *s, float *st_out, const float *st_in, const float *qb,
                       const float *kb, int64_t r0, int64_t r1, int64_t T, int64_t HD,
                       int64_t KD, int64_t D, float scale)
{
    int64_t nr = r1 - r0;
    kq_sgemm_ex(0, 1, nr, r1, D, qb + r0 * HD, HD, kb, KD, s, T, 0.0f, 1);
    for (int64_t t = r0; t < r1; t++) {
        float *row = s + (t - r0) * T;
        if (st_out) {
            causal_softmax_row(row, st_out + 2 * t, t, r1, scale);
        } else {
            scale_row(row, t + 1, scale);
            exp_row(row, t + 1, st_in[2 * t]);
            finish_row(row, t, r1, st_in[2 * t + 1]);
        }
    }
}

void attention_forward(float *y, float *stats, float *scratch, const float *q, const float *k,
                       const float *v, int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D,
                       int64_t nthreads)
{
    int64_t HD = H * D, KD = KV * D, grp = H / KV;
    float scale = 1.0f / sqrtf((float)D);
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1) if (B * H * T * T * D >= TFM_OMP_MIN)
    for (int64_t bh = 0; bh < B * H; bh++) {
        int64_t b = bh / H, h = bh % H, g = h / grp;
        const float *qb = q + b * T * HD + h * D;
        const float *kb = k + b * T * KD + g * D;
        const float *vb = v + b * T * KD + g * D;
        float *s = scratch + (int64_t)omp_get_thread_num() * 2 * ATT_BLOCK * T;
        float *yb = y + b * T * HD + h * D, *st = stats + bh * T * 2;
        for (int64_t r0 = 0; r0 < T; r0 += ATT_BLOCK) {
            int64_t r1 = r0 + ATT_BLOCK < T ? r0 + ATT_BLOCK : T, nr = r1 - r0;
            prob_block(s, st, NULL, qb, kb, r0, r1, T, HD, KD, D, scale);
            kq_sgemm_ex(0, 0, nr, D, r1, s, T, vb, KD, yb + r0 * HD, HD, 0.0f, 1);
        }
    }
}

/* dS = P * (dP - rowsum(P*dP)) * scale for rows r0..r1-1 of the block (ld T). */
static void softmax_backward_rows(float *ds, const float *p, int64_t r0, int64_t r1, int64_t T,
                                  float scale)
{
    for (int64_t t = r0; t < r1; t++) {
        float *d = ds + (t - r0) * T;
        const float *pr = p + (t - r0) * T;
        double dot = 0;
        for (int64_t j = 0; j <= t; j++) dot += (double)pr[j] * d[j];
        for (int64_t j = 0; j <= t; j++) d[j] = pr[j] * (d[j] - (float)dot) * scale;
        for (int64_t j = t + 1; j < r1; j++) d[j] = 0.0f;
    }
}

/* One head of one sequence, row block by row block; dk/dv accumulate. p, ds: (ATT_BLOCK, T). */
static void head_backward(float *dq, float *dk, float *dv, float *p, float *ds, const float *dy,
                          const float *stats, const float *q, const float *k, const float *v,
                          int64_t T, int64_t HD, int64_t KD, int64_t D, float scale)
{
    for (int64_t r0 = 0; r0 < T; r0 += ATT_BLOCK) {
        int64_t r1 = r0 + ATT_BLOCK < T ? r0 + ATT_BLOCK : T, nr = r1 - r0;
        prob_block(p, NULL, stats, q, k, r0, r1, T, HD, KD, D, scale);
        kq_sgemm_ex(1, 0, r1, D, nr, p, T, dy + r0 * HD, HD, dv, KD, 1.0f, 1);
        kq_sgemm_ex(0, 1, nr, r1, D, dy + r0 * HD, HD, v, KD, ds, T, 0.0f, 1);
        softmax_backward_rows(ds, p, r0, r1, T, scale);
        kq_sgemm_ex(0, 0, nr, D, r1, ds, T, k, KD, dq + r0 * HD, HD, 0.0f, 1);
        kq_sgemm_ex(1, 0, r1, D, nr, ds, T, q + r0 * HD, HD, dk, KD, 1.0f, 1);
    }
}

void attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dy,
                        const float *stats, const float *q, const float *k, const float *v,
                        int64_t B, int64_t T, int64_t H, int64_t KV, int64_t D, int64_t nthreads)
{
    int64_t HD = H * D, KD = KV * D, grp = H / KV;
    float scale = 1.0f / sqrtf((float)D);
    /* Heads sharing a kv head accumulate into the same dk/dv: one (b, g) per iteration. */
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1) if (B * H * T * T * D >= TFM_OMP_MIN)
    for (int64_t bg = 0; bg < B * KV; bg++) {
        int64_t b = bg / KV, g = bg % KV;
        float *p = scratch + (int64_t)omp_get_thread_num() * 2 * ATT_BLOCK * T;
        float *ds = p + ATT_BLOCK * T;
        float *dkb = dk + b * T * KD + g * D, *dvb = dv + b * T * KD + g * D;
        for (int64_t t = 0; t < T; t++) {
            memset(dkb + t * KD, 0, (size_t)D * sizeof(float));
            memset(dvb + t * KD, 0, (size_t)D * sizeof(float));
        }
        for (int64_t h = g * grp; h < (g + 1) * grp; h++)
            head_backward(dq + b * T * HD + h * D, dkb, dvb, p, ds, dy + b * T * HD + h * D,
                          stats + (b * H + h) * T * 2, q + b * T * HD + h * D,
                          k + b * T * KD + g * D, v + b * T * KD + g * D, T, HD, KD, D, scale);
    }
}
