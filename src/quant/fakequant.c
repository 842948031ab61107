/* fakequant.c - the QAT fake-quantizers (fakequant.h): init by clipping search, forward,
 * straight-through backward, state enumeration and export to the container grid. fp32
 * forward with quant.h's rounding (rintf, half to even); parameter gradients are summed
 * per (row, group) in double. Not the linear layer, not the optimizer. */
#include "fakequant.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "f16.h"
#include "upq_err.h"

/* Clipping search: shrink factors 0.95^i (1.0 down to 0.085) of the group's range. The
 * linear quant_clip_grid (down to 0.55) misses the MSE optimum of 2-bit per-channel
 * groups: a 4096-column Gaussian row already wants about 0.4, rows with outliers less. */
enum { FQ_CLIP_STEPS = 48 };
static float clip_factor(int i) { return powf(0.95f, (float)i); }

/* Multi-row loops go parallel only when the weight is large enough to pay for it. */
#define FQ_PAR_MIN (1 << 16)

static const char *const kind_names[FQ_NKINDS] = {"seq", "asym", "lsq", "r2q"};

const char *fq_kind_name(fq_kind kind)
{
    return kind >= 0 && kind < FQ_NKINDS ? kind_names[kind] : "?";
}

int fq_kind_parse(const char *name, fq_kind *kind)
{
    for (int k = 0; k < FQ_NKINDS; k++)
        if (strcmp(name, kind_names[k]) == 0) return *kind = (fq_kind)k, 0;
    return -1;
}

static int64_t group_len(const fq_quantizer *q, int64_t g)
{
    int64_t k0 = g * q->gs;
    return q->in - k0 < q->gs ? q->in - k0 : q->gs;
}

/* ---- per-group grids: the fp32 (s, z) of wq = s*(code - z) (seq, asym) ---- */

static void seq_grid(float delta, int bits, float *s, float *z)
{
    float st = delta * (1.0f / (float)(1 << (bits - 1))); /* delta * 2^(1-bits), exact as ldexpf */
    *s = st < FQ_MIN_STEP ? FQ_MIN_STEP : st; /* a NaN stays NaN */
    *z = 0.5f * (float)((1 << bits) - 1);
}

/* asym's (s, z) from the group's current min/max shrunk by f; *kmin, *kmax (may be NULL):
 * the first argmin/argmax, *live: 1 when s follows them (not the 1e-5 range floor). */
static void asym_grid_arg(const float *w, int64_t n, float f, int maxq, float *s, float *z, int64_t *kmin,
                          int64_t *kmax, int *live)
{
    int64_t a = 0, b = 0;
    for (int64_t k = 1; k < n; k++) a = w[k] < w[a] ? k : a, b = w[k] > w[b] ? k : b;
    quant_minmax(f * w[a], f * w[b], maxq, s, z);
    if (kmin) *kmin = a, *kmax = b, *live = f * w[b] - f * w[a] > 1e-5f;
}

static void asym_grid(const float *w, int64_t n, float f, int maxq, float *s, float *z)
{
    asym_grid_arg(w, n, f, maxq, s, z, NULL, NULL, NULL);
}

static float lsq_step(float s) { return s < FQ_MIN_STEP ? FQ_MIN_STEP : s; }

/* lsq's code as a float (NaN stays NaN: cast only what is known finite). */
static float lsq_code(float w, float s, float b, int maxq)
{
    float x = rintf((w - b) / s);
    x = x < 0.0f ? 0.0f : x;
    return x > (float)maxq ? (float)maxq : x;
}

/* R2Q code: 2*[w >= 0] + [w - a1 sign(w) >= 0]; level a1 sign(w) + a2 sign(residual).
 * Branch-free: the signs of random weights would mispredict half the time. */
static uint8_t r2q_code(float w, float a1, float *level, float a2)
{
    int b1 = w >= 0.0f;
    float s1 = (float)(2 * b1 - 1), r = w - a1 * s1;
    int b2 = r >= 0.0f;
    *level = a1 * s1 + a2 * (float)(2 * b2 - 1);
    return (uint8_t)(2 * b1 + b2);
}

/* rintf (half to even) of x for |x| < 2^22, in plain arithmetic that vectorises (the
 * baseline x86-64 target has no SSE4.1 round, so rintf is a library call per element).
 * For |x| >= 2^22 the result is not rint(x) but keeps its sign and stays >= 2^22 in
 * magnitude (+-inf and NaN pass through), so every clamp to [0, maxq <= 255] below gives
 * exactly what rintf would have: the fake-quant outputs are bit-identical. Needs IEEE
 * round-to-nearest and no reassociation (no -ffast-math; the build has none). */
static inline float rint_small(float x)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    return (x + magic) - magic;
}

/* The clamp of a rounded code to [0, maxq]; -0 becomes +0 (as a round trip through the
 * uint8_t code does, so wq's signed zeros are those of s * (code - z)). */
static inline float clamp_code(float u, float maxq)
{
    u = u <= 0.0f ? 0.0f : u;
    return u > maxq ? maxq : u;
}

/* Forward of one group w[0..n) (row r, group g) into wq, codes into c when not NULL. A NaN
 * weight or parameter gives a NaN wq (the constant NAN, code 0), so a diverged run shows
 * in its loss. The
 * loops are branch-free float arithmetic (the same operations, in the same order, as
 * quant.h's quant_code_seq / quant_code followed by s * (code - z)), so they vectorise. */
static void group_forward(const fq_quantizer *q, int64_t idx, const float *restrict w, int64_t n,
                          float *restrict wq, uint8_t *restrict c)
{
    float s, z, maxq = (float)q->maxq;
    switch (q->kind) {
    case FQ_SEQ:
        seq_grid(q->p0[idx], q->bits, &s, &z);
#pragma omp simd
        for (int64_t k = 0; k < n; k++) {
            float u = rint_small(w[k] / s + z);
            wq[k] = u != u ? NAN : s * (clamp_code(u, maxq) - z);
        }
        break;
    case FQ_ASYM:
        asym_grid(w, n, q->clip[idx], q->maxq, &s, &z);
#pragma omp simd
        for (int64_t k = 0; k < n; k++) {
            float u = rint_small(w[k] / s) + z; /* NaN when w/s or z (a NaN minimum) is */
            wq[k] = u != u ? NAN : s * (clamp_code(u, maxq) - z);
        }
        break;
    case FQ_LSQ: {
        float b = q->p1[idx];
        s = lsq_step(q->p0[idx]);
#pragma omp simd
        for (int64_t k = 0; k < n; k++) {
            float u = rint_small((w[k] - b) / s);
            wq[k] = u != u ? NAN : s * clamp_code(u, maxq) + b;
        }
        break;
    }
    case FQ_R2Q: {
        float a1 = q->p0[idx], a2 = q->p1[idx];
#pragma omp simd
        for (int64_t k = 0; k < n; k++) {
            float s1 = w[k] >= 0.0f ? 1.0f : -1.0f, s2 = w[k] - a1 * s1 >= 0.0f ? 1.0f : -1.0f;
            wq[k] = w[k] != w[k] ? NAN : a1 * s1 + a2 * s2;
        }
        break;
    }
    default:
        UPQ_ASSERT(0);
    }
    if (!c) return;
    /* The codes (export only): from the same arithmetic; NaN -> 0. */
    for (int64_t k = 0; k < n; k++) {
        float u;
        switch (q->kind) {
        case FQ_SEQ: u = clamp_code(rint_small(w[k] / s + z), maxq); break;
        case FQ_ASYM: u = clamp_code(rint_small(w[k] / s) + z, maxq); break;
        case FQ_LSQ: u = clamp_code(rint_small((w[k] - q->p1[idx]) / s), maxq); break;
        default: u = (float)(2 * (w[k] >= 0.0f) + (w[k] - q->p0[idx] * (w[k] >= 0.0f ? 1.0f : -1.0f) >= 0.0f));
        }
        c[k] = u == u ? (uint8_t)u : 0;
    }
}

/* ---- init ---- */

static double sq_err(const float *w, const float *wq, int64_t n)
{
    double e = 0.0;
    for (int64_t k = 0; k < n; k++) e += ((double)w[k] - wq[k]) * ((double)w[k] - wq[k]);
    return e;
}

/* The clipping search of one group: sets p0/p1/clip at idx to the candidate (shrink
 * factor of the group's range) with the least weight MSE of the kind's own forward;
 * the first (widest) wins ties. tmp holds n floats. */
static void group_search(fq_quantizer *q, int64_t idx, const float *w, int64_t n, float *tmp)
{
    float lo = w[0], hi = w[0];
    for (int64_t k = 1; k < n; k++) lo = w[k] < lo ? w[k] : lo, hi = w[k] > hi ? w[k] : hi;
    float amax = fabsf(lo) > fabsf(hi) ? fabsf(lo) : fabsf(hi);
    double best = INFINITY;
    float best_a = 0.0f, best_b = 0.0f;
    for (int i = 0; i < FQ_CLIP_STEPS; i++) {
        float f = clip_factor(i), a, b = 0.0f, s, z;
        if (q->kind == FQ_SEQ) {
            quant_seq_params(f * amax, q->maxq, &s, &z);
            a = s * (float)(1 << (q->bits - 1)); /* D = s * 2^(bits-1): the outer level is 3D/4 at 2 bits */
            q->p0[idx] = a;
        } else if (q->kind == FQ_ASYM) {
            a = q->clip[idx] = f;
        } else { /* lsq: the free-offset min-max grid of the shrunk range */
            float r = f * (hi - lo);
            a = q->p0[idx] = (r > 1e-5f ? r : 1e-5f) / (float)q->maxq;
            b = q->p1[idx] = f * lo;
        }
        group_forward(q, idx, w, n, tmp, NULL);
        double e = sq_err(w, tmp, n);
        if (e < best) best = e, best_a = a, best_b = b;
    }
    if (q->kind == FQ_ASYM) q->clip[idx] = best_a;
    else q->p0[idx] = best_a;
    if (q->kind == FQ_LSQ) q->p1[idx] = best_b;
}

/* R2Q's greedy init: the least-squares 1-bit scale mean|w|, then that of the residual. */
static void group_r2q_init(fq_quantizer *q, int64_t idx, const float *w, int64_t n)
{
    double a1 = 0.0, a2 = 0.0;
    for (int64_t k = 0; k < n; k++) a1 += fabs((double)w[k]);
    a1 /= (double)n;
    for (int64_t k = 0; k < n; k++) a2 += fabs((double)w[k] - (w[k] >= 0.0f ? a1 : -a1));
    q->p0[idx] = (float)a1;
    q->p1[idx] = (float)(a2 / (double)n);
}

static int check_finite(const float *w, int64_t out, int64_t in, const char *what)
{
    for (int64_t r = 0; r < out; r++)
        for (int64_t k = 0; k < in; k++)
            if (!isfinite(w[r * in + k]))
                return UPQ_FAIL(UPQ_EINPUT, "fake-quant %s: weight (%lld, %lld) is %g (expected finite)", what,
                                (long long)r, (long long)k, (double)w[r * in + k]);
    return UPQ_OK;
}

int fq_init(fq_quantizer *q, fq_kind kind, int bits, int64_t group, int64_t out, int64_t in, const float *w)
{
    memset(q, 0, sizeof *q);
    UPQ_ASSERT(w);
    if (kind < 0 || kind >= FQ_NKINDS)
        return UPQ_FAIL(UPQ_EINPUT, "fake-quant: unknown quantizer kind %d (seq, asym, lsq, r2q)", (int)kind);
    if (bits < 2 || bits > 8 || (kind == FQ_R2Q && bits != 2))
        return UPQ_FAIL(UPQ_EINPUT, "fake-quant %s: %d bits unsupported (2..8; r2q 2 only)", kind_names[kind], bits);
    if (out < 1 || in < 1)
        return UPQ_FAIL(UPQ_EINPUT, "fake-quant %s: empty weight (%lld, %lld)", kind_names[kind], (long long)out,
                        (long long)in);
    TRY(check_finite(w, out, in, "init"));
    q->kind = kind;
    q->bits = bits;
    q->maxq = (1 << bits) - 1;
    q->out = out;
    q->in = in;
    q->group = group > 0 && group <= in ? group : 0;
    q->gs = q->group ? q->group : in;
    q->ng = (in + q->gs - 1) / q->gs;
    int64_t pg = out * q->ng, nlearn = kind == FQ_ASYM ? 0 : kind == FQ_SEQ ? 1 : 2;
    q->n_params = nlearn * pg;
    q->mem = upq_malloc((size_t)(nlearn + (kind == FQ_ASYM)) * (size_t)pg * sizeof(float), "fake-quant parameters");
    if (!q->mem) return UPQ_EIO;
    q->params = q->mem;
    if (nlearn >= 1) q->p0 = q->mem;
    if (nlearn == 2) q->p1 = q->mem + pg;
    if (kind == FQ_ASYM) q->clip = q->mem;
    int nt = omp_get_max_threads();
    float *scratch = upq_malloc((size_t)nt * (size_t)q->gs * sizeof(float), "fake-quant init scratch");
    if (!scratch) return fq_free(q), UPQ_EIO;
#pragma omp parallel num_threads(nt) if (out * in >= FQ_PAR_MIN)
    {
        float *tmp = scratch + (size_t)omp_get_thread_num() * (size_t)q->gs;
#pragma omp for schedule(dynamic, 4)
        for (int64_t r = 0; r < out; r++) {
            for (int64_t g = 0; g < q->ng; g++) {
                const float *wg = w + r * in + g * q->gs;
                if (kind == FQ_R2Q) group_r2q_init(q, r * q->ng + g, wg, group_len(q, g));
                else group_search(q, r * q->ng + g, wg, group_len(q, g), tmp);
            }
        }
    }
    free(scratch);
    return UPQ_OK;
}

void fq_free(fq_quantizer *q)
{
    free(q->mem);
    memset(q, 0, sizeof *q);
}

void fq_forward(const fq_quantizer *q, const float *w, float *wq)
{
#pragma omp parallel for schedule(static) if (q->out * q->in >= FQ_PAR_MIN)
    for (int64_t r = 0; r < q->out; r++)
        for (int64_t g = 0; g < q->ng; g++) {
            int64_t o = r * q->in + g * q->gs;
            group_forward(q, r * q->ng + g, w + o, group_len(q, g), wq + o, NULL);
        }
}

/* ---- backward ---- */

/* One group: dw += STE(dwq); (*d0, *d1) = dL/d(p0, p1) of the group (before scaling). */
static void group_backward(const fq_quantizer *q, int64_t idx, const float *w, const float *dwq, int64_t n,
                           float *dw, double *d0, double *d1)
{
    double a0 = 0.0, a1 = 0.0;
    float s, z, maxq = (float)q->maxq;
    switch (q->kind) {
    case FQ_SEQ:
    case FQ_ASYM: { /* inside = the rounded code needed no clamping (seq: |w| <= D) */
        int64_t kmin = 0, kmax = 0;
        int live = 0;
        if (q->kind == FQ_SEQ) seq_grid(q->p0[idx], q->bits, &s, &z);
        else asym_grid_arg(w, n, q->clip[idx], q->maxq, &s, &z, &kmin, &kmax, &live);
        for (int64_t k = 0; k < n; k++) {
            float x = w[k] / s, u = q->kind == FQ_SEQ ? rintf(x + z) : rintf(x) + z;
            int inside = u >= 0.0f && u <= maxq;
            float code = u < 0.0f ? 0.0f : u > maxq ? maxq : u;
            if (inside) dw[k] += dwq[k];
            /* d wq / ds, LSQ rule: (code - z) - w/s inside, (code - z) outside */
            a0 += (double)dwq[k] * ((double)code - z - (inside ? (double)x : 0.0));
        }
        if (q->kind == FQ_SEQ) {
            a0 *= 1.0 / (double)(1 << (q->bits - 1)); /* ds/dD = 2^(1-bits), exact as ldexp */
        } else if (live) { /* s = f (max - min) / maxq: dL/ds to the extremes (z: none) */
            float gs = (float)(a0 * (double)q->clip[idx] / (double)q->maxq);
            dw[kmax] += gs;
            dw[kmin] -= gs;
            a0 = 0.0;
        }
        break;
    }
    case FQ_LSQ: { /* inside: 0 <= (w-b)/s <= maxq, unrounded (LSQ's clip) */
        s = lsq_step(q->p0[idx]);
        float b = q->p1[idx];
        for (int64_t k = 0; k < n; k++) {
            float x = (w[k] - b) / s;
            int inside = x >= 0.0f && x <= maxq;
            float code = lsq_code(w[k], s, b, q->maxq);
            if (inside) dw[k] += dwq[k];
            a0 += (double)dwq[k] * ((double)code - (inside ? (double)x : 0.0));
            a1 += inside ? 0.0 : (double)dwq[k];
        }
        double gsc = 1.0 / sqrt((double)n * (double)q->maxq); /* LSQ's gradient scale */
        a0 *= gsc;
        a1 *= gsc;
        break;
    }
    case FQ_R2Q:
        for (int64_t k = 0; k < n; k++) {
            float lv;
            int code = r2q_code(w[k], q->p0[idx], &lv, q->p1[idx]);
            dw[k] += dwq[k];
            a0 += (double)dwq[k] * (double)(2 * (code >> 1) - 1);
            a1 += (double)dwq[k] * (double)(2 * (code & 1) - 1);
        }
        break;
    default:
        UPQ_ASSERT(0);
    }
    *d0 = a0;
    *d1 = a1;
}

void fq_backward(const fq_quantizer *q, const float *w, const float *dwq, float *dw, fq_grads *g)
{
    int64_t pg = q->out * q->ng;
    UPQ_ASSERT(!g || g->n == q->n_params);
#pragma omp parallel for schedule(static) if (q->out * q->in >= FQ_PAR_MIN)
    for (int64_t r = 0; r < q->out; r++)
        for (int64_t gi = 0; gi < q->ng; gi++) {
            int64_t o = r * q->in + gi * q->gs, idx = r * q->ng + gi;
            double d0, d1;
            group_backward(q, idx, w + o, dwq + o, group_len(q, gi), dw + o, &d0, &d1);
            if (!g) continue;
            if (q->p0) g->d[idx] += (float)d0;
            if (q->p1) g->d[pg + idx] += (float)d1;
        }
}

int fq_grads_init(fq_grads *g, const fq_quantizer *q)
{
    g->n = q->n_params;
    g->d = upq_calloc(g->n ? (size_t)g->n : 1, sizeof(float), "fake-quant gradients");
    return g->d ? UPQ_OK : UPQ_EIO;
}

void fq_grads_zero(fq_grads *g)
{
    if (g->n) memset(g->d, 0, (size_t)g->n * sizeof(float));
}

void fq_grads_free(fq_grads *g)
{
    free(g->d);
    memset(g, 0, sizeof *g);
}

int fq_arrays(const fq_quantizer *q, fq_array *a)
{
    static const char *const n0[FQ_NKINDS] = {"delta", NULL, "scale", "alpha1"};
    static const char *const n1[FQ_NKINDS] = {NULL, NULL, "offset", "alpha2"};
    int64_t pg = q->out * q->ng;
    int n = 0;
    if (q->p0) a[n++] = (fq_array){n0[q->kind], q->p0, pg, 1, 0};
    if (q->p1) a[n++] = (fq_array){n1[q->kind], q->p1, pg, 1, pg};
    if (q->clip) a[n++] = (fq_array){"clip", q->clip, pg, 0, -1};
    return n;
}

/* ---- export ---- */

double fq_export_tol(double s, double m, int maxq)
{
    return ldexp(1.0, -10) * ((double)maxq * fabs(s) + fabs(m)) + (double)(maxq + 2) * ldexp(1.0, -24);
}

/* The fp32 (s, m) of one group on the container grid: wq = s*code + m; *z = the code of
 * zero when m = -s*z (seq, asym, r2q: stored as fp16(-fp16(s)*z), quant_store_params), else NAN. */
static void group_sm(const fq_quantizer *q, int64_t idx, const float *w, int64_t n, float *s, float *m, float *z)
{
    switch (q->kind) {
    case FQ_SEQ: seq_grid(q->p0[idx], q->bits, s, z); break;
    case FQ_ASYM: asym_grid(w, n, q->clip[idx], q->maxq, s, z); break;
    case FQ_LSQ: *s = lsq_step(q->p0[idx]); *m = q->p1[idx]; *z = NAN; return;
    default: /* r2q: least-squares uniform fit s*(code - 1.5) of the levels -a1-a2 .. a1+a2 */
        *s = (4.0f * q->p0[idx] + 2.0f * q->p1[idx]) / 5.0f;
        *z = 1.5f;
    }
    *m = -*s * *z;
}

/* Exports one (row, group); returns the max |dequantised - forward| or -1 on failure
 * (message recorded). tmp holds gs floats, codes gs bytes. */
static double export_group(const fq_quantizer *q, int64_t r, int64_t g, const float *w, int flags, kq_qmat *out,
                           float *tmp, uint8_t *codes)
{
    int64_t n = group_len(q, g), idx = r * q->ng + g, o = r * q->in + g * q->gs;
    float s, m, z;
    uint16_t s16, m16;
    group_sm(q, idx, w + o, n, &s, &m, &z);
    if (isnan(z)) s16 = kq_f32_to_f16(s), m16 = kq_f32_to_f16(m);
    else quant_store_params(s, z, &s16, &m16);
    float sf = kq_f16_to_f32(s16), mf = kq_f16_to_f32(m16);
    if (!isfinite(sf) || !isfinite(mf)) {
        UPQ_FAIL(UPQ_EINPUT, "fake-quant export: row %lld group %lld: scale %g / offset %g do not fit fp16",
                 (long long)r, (long long)g, (double)s, (double)m);
        return -1.0;
    }
    group_forward(q, idx, w + o, n, tmp, codes);
    double dev = 0.0;
    for (int64_t k = 0; k < n; k++) {
        double d = fabs((double)(sf * (float)codes[k] + mf) - (double)tmp[k]);
        dev = d > dev ? d : dev;
    }
    if (q->kind == FQ_R2Q && !(flags & FQ_EXPORT_PROJECT) && !(dev <= fq_export_tol(s, m, q->maxq))) {
        UPQ_FAIL(UPQ_EINPUT,
                 "fake-quant export: r2q row %lld group %lld: levels +-%g +-%g are not equally spaced "
                 "(need alpha1 = 2 alpha2; off by %g); FQ_EXPORT_PROJECT fits a uniform grid",
                 (long long)r, (long long)g, (double)q->p0[idx], (double)q->p1[idx], dev);
        return -1.0;
    }
    /* Stored blocks: the group's own, or every 128-block of the row per channel. */
    int64_t b0 = out->group ? g : 0, b1 = out->group ? g + 1 : out->nb;
    for (int64_t b = b0; b < b1; b++) kq_params_set(out, r, b, s16, m16);
    for (int64_t k = 0; k < n; k++) kq_code_set(out, r, g * q->gs + k, codes[k]);
    return dev;
}

int fq_export(const fq_quantizer *q, const float *w, int flags, kq_qmat *out, double *max_dev)
{
    int group = q->group > INT32_MAX ? -1 : (int)q->group;
    if (q->ng == 1 && !quant_format_valid(q->bits, group)) group = 0; /* one group per row: per channel */
    if (!quant_format_valid(q->bits, group))
        return UPQ_FAIL(UPQ_EINPUT,
                        "fake-quant export: %d bits, group %lld has no container format (bits 2/3/4/8, "
                        "group 0/32/64/128)",
                        q->bits, (long long)q->group);
    TRY(check_finite(w, q->out, q->in, "export"));
    TRY(quant_qmat_init(out, q->bits, group, q->out, q->in));
    out->grid = q->kind == FQ_SEQ || q->kind == FQ_R2Q ? QUANT_GRID_SEQ : QUANT_GRID_ASYM;
    float *tmp = upq_malloc((size_t)q->gs * (sizeof(float) + 1), "fake-quant export scratch");
    if (!tmp) return quant_qmat_free(out), UPQ_EIO;
    uint8_t *codes = (uint8_t *)(tmp + q->gs);
    double dev = 0.0;
    for (int64_t r = 0; r < q->out; r++)
        for (int64_t g = 0; g < q->ng; g++) {
            double d = export_group(q, r, g, w, flags, out, tmp, codes);
            if (d < 0.0) {
                free(tmp);
                quant_qmat_free(out);
                return UPQ_EINPUT;
            }
            dev = d > dev ? d : dev;
        }
    free(tmp);
    if (max_dev) *max_dev = dev;
    return UPQ_OK;
}
