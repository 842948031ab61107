/* distill_loss.c - distillation losses and cross-entropy from teacher records: one
 * position at a time (log-softmax over V in double), parallel over positions. Every
 * divergence is a sum over vocabulary entries (or top-K buckets, or sampled ids) of an
 * elementwise term f(p, q); the gradient w.r.t. the student logits is
 * p_j * (g_j - sum_k p_k g_k) with g = df/dp. Not the teacher pass, not file I/O. */
#include "distill_loss.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kq_dispatch.h"
#include "rng.h"
#include "upq_err.h"
#include "vexp.h"

int dl_config_check(const dl_config *c)
{
    if (c->kind < DL_CE || c->kind > DL_CAKLD)
        return UPQ_FAIL(UPQ_EUSAGE, "distill loss: unknown loss kind %d", (int)c->kind);
    if (!(c->beta >= 0 && c->beta <= 1))
        return UPQ_FAIL(UPQ_EUSAGE, "distill loss: beta %g is not in [0, 1]", c->beta);
    if (!(c->gamma >= 0 && c->gamma <= 1))
        return UPQ_FAIL(UPQ_EUSAGE, "distill loss: gamma %g is not in [0, 1]", c->gamma);
    if (!(c->temperature > 0 && isfinite(c->temperature)))
        return UPQ_FAIL(UPQ_EUSAGE, "distill loss: temperature %g is not > 0", c->temperature);
    return 0;
}

static int check_ids(const dl_record *r, int64_t V, const char *what)
{
    for (int32_t i = 0; i < r->k; i++) {
        if (r->ids[i] < 0 || r->ids[i] >= V)
            return UPQ_FAIL(UPQ_EINPUT, "%s: teacher id %d at %d is outside the vocabulary (%lld)",
                            what, r->ids[i], i, (long long)V);
        if (!isfinite(r->logits[i]))
            return UPQ_FAIL(UPQ_EINPUT, "%s: teacher logit %d is not finite", what, i);
        for (int32_t j = 0; j < i; j++)
            if (r->ids[j] == r->ids[i])
                return UPQ_FAIL(UPQ_EINPUT, "%s: teacher id %d appears twice", what, r->ids[i]);
    }
    if (!isfinite(r->lse)) return UPQ_FAIL(UPQ_EINPUT, "%s: log-sum-exp is not finite", what);
    return 0;
}

int dl_record_check(const dl_record *r, int64_t V, const char *what)
{
    switch (r->mode) {
    case DL_FULL:
        for (int64_t j = 0; j < V; j++)
            if (!isfinite(r->logp[j]))
                return UPQ_FAIL(UPQ_EINPUT, "%s: teacher log-probability %lld is not finite",
                                what, (long long)j);
        return 0;
    case DL_TOPK:
        if (r->k < 1 || r->k > V)
            return UPQ_FAIL(UPQ_EINPUT, "%s: top-K count %d is not in [1, %lld]", what, r->k,
                            (long long)V);
        if (isnan(r->log_tail) || r->log_tail == INFINITY)
            return UPQ_FAIL(UPQ_EINPUT, "%s: log tail mass %g is not a number", what,
                            (double)r->log_tail);
        return check_ids(r, V, what);
    case DL_SAMPLE: {
        if (r->n < 1 || r->k < 1 || r->k > r->n || r->k > V)
            return UPQ_FAIL(UPQ_EINPUT, "%s: %d unique ids of %d draws is not possible", what,
                            r->k, r->n);
        int64_t s = 0;
        for (int32_t i = 0; i < r->k; i++) {
            if (r->counts[i] < 1)
                return UPQ_FAIL(UPQ_EINPUT, "%s: draw count %d of id %d is < 1", what,
                                r->counts[i], r->ids[i]);
            s += r->counts[i];
        }
        if (s != r->n)
            return UPQ_FAIL(UPQ_EINPUT, "%s: draw counts sum to %lld, expected %d", what,
                            (long long)s, r->n);
        return check_ids(r, V, what);
    }
    }
    return UPQ_FAIL(UPQ_EINPUT, "%s: unknown teacher record mode %d", what, (int)r->mode);
}

/* The loss actually computed: JSD at beta 0 / 1 is exactly FKL / RKL. */
typedef struct {
    dl_kind kind;
    double beta, gamma, lb, l1b; /* log(beta), log(1 - beta) */
} eff_loss;

static eff_loss eff_of(const dl_config *c)
{
    eff_loss e = {c->kind, c->beta, c->gamma, 0, 0};
    if (e.kind == DL_JSD && e.beta == 0) e.kind = DL_FKL;
    if (e.kind == DL_JSD && e.beta == 1) e.kind = DL_RKL;
    if (e.kind == DL_JSD) {
        e.lb = log(e.beta);
        e.l1b = log1p(-e.beta);
    }
    return e;
}

static inline double logaddexp(double a, double b)
{
    double m = a > b ? a : b;
    return m + log1p(exp(-fabs(a - b)));
}

/* Term of one entry with student log-prob s and teacher log-prob t: *f the value, *h the
 * p-weighted derivative p * df/dp (finite where p underflows). 0 * log 0 = 0. */
static inline void term(const eff_loss *e, double s, double t, double *f, double *h)
{
    switch (e->kind) {
    case DL_FKL: { /* each case takes only the exps it needs */
        double q = exp(t);
        *f = q > 0 ? q * (t - s) : 0.0;
        *h = -q;
        return;
    }
    case DL_RKL: {
        double p = exp(s);
        *f = p > 0 ? p * (s - t) : 0.0;
        *h = p > 0 ? p * (s - t + 1) : 0.0;
        return;
    }
    case DL_JSD: {
        double p = exp(s), q = exp(t);
        /* (beta KL(q||m) + (1-beta) KL(p||m)) / (beta (1-beta)), m = beta q + (1-beta) p,
         * with log m in log space so that s - lm keeps its digits as beta -> 0 or 1.
         * The extra -(1 - 2 beta)(p - q) sums to 0 over any normalized pair; it makes the
         * entry's term tend to FKL's at beta -> 0 and RKL's at beta -> 1, so that the
         * sampled estimator (which sums terms over drawn ids only) has the same limits. */
        double lm = logaddexp(e->lb + t, e->l1b + s), c = 1 - 2 * e->beta;
        double fq = q > 0 ? q * (t - lm) / (1 - e->beta) : 0.0;
        double hp = p > 0 ? p * (s - lm) / e->beta : 0.0;
        *f = fq + hp - c * (p - q);
        *h = hp - c * p;
        return;
    }
    case DL_CAKLD: {
        double p = exp(s), q = exp(t), g = e->gamma;
        *f = g * (q > 0 ? q * (t - s) : 0.0) + (1 - g) * (p > 0 ? p * (s - t) : 0.0);
        *h = -g * q + (1 - g) * (p > 0 ? p * (s - t + 1) : 0.0);
        return;
    }
    case DL_CE: break;
    }
    UPQ_ASSERT(0);
}

/* log-sum-exp of x * scale over V, in double. */
static double row_lse(const float *x, double scale, int64_t V)
{
    double mx = -INFINITY;
    for (int64_t j = 0; j < V; j++) { /* fmax without the call: a NaN entry is skipped too */
        double v = x[j] * scale;
        mx = v > mx ? v : mx;
    }
    double sum = 0;
    for (int64_t j = 0; j < V; j++) sum += exp(x[j] * scale - mx);
    return mx + log(sum);
}

/* d_j = gs * (d_j - p_j * hbar) over all j: d holds h_j (or p_j g_tail) on entry. */
static void finish_grad(float *d, const float *z, double a, double ls, double hbar, double gs,
                        int64_t V)
{
    /* The gradient is float: a float exp that vectorizes (vexp.h) is accurate enough. */
    float af = (float)a, lsf = (float)ls, hf = (float)hbar, gf = (float)gs;
    for (int64_t j = 0; j < V; j++) d[j] = gf * (d[j] - upq_expf(z[j] * af - lsf) * hf);
}

static double pos_full(const eff_loss *e, const float *z, double a, const dl_record *r,
                       float *d, double gs, int64_t V)
{
    double ls = row_lse(z, a, V), lt = row_lse(r->logp, 1.0, V);
    double val = 0, hbar = 0;
    for (int64_t j = 0; j < V; j++) {
        double f, h;
        term(e, z[j] * a - ls, r->logp[j] - lt, &f, &h);
        val += f;
        hbar += h;
        d[j] = (float)h;
    }
    finish_grad(d, z, a, ls, hbar, gs, V);
    return val;
}

/* Top-K: the K entries plus one tail bucket holding the rest of both distributions. The
 * teacher's tail mass is the record's log_tail, else 1 - sum of the K probabilities under
 * the full lse; the student's is summed directly (no 1 - sum cancellation). */
static double pos_topk(const eff_loss *e, const float *z, double a, const dl_record *r,
                       float *d, double gs, int64_t V)
{
    double ls = row_lse(z, a, V), qk = 0, ptail = 0;
    memset(d, 0, (size_t)V * sizeof *d);
    for (int32_t i = 0; i < r->k; i++) {
        d[r->ids[i]] = -1.0f; /* marks the K entries for the tail sum */
        qk += exp((double)r->logits[i] - r->lse);
    }
    for (int64_t j = 0; j < V; j++)
        if (d[j] == 0.0f) {
            double p = exp(z[j] * a - ls);
            ptail += p;
            d[j] = (float)p;
        }
    double val = 0, hbar = 0, gtail = 0;
    if (r->k < V) {
        /* Without a stored log_tail, rounding (fp32 lse, fp16 logits) can push the K mass
         * past 1: floor the tail so that reverse KL stays finite. */
        double ltail = r->log_tail < 0 ? (double)r->log_tail : log(fmax(1.0 - qk, 1e-20)), f, h;
        term(e, log(ptail), ltail, &f, &h);
        val += f;
        hbar += h;
        gtail = ptail > 0 ? h / ptail : 0.0; /* every tail entry has g = df/dP_tail */
    }
    for (int64_t j = 0; j < V; j++) d[j] = (float)(d[j] * gtail); /* K entries: below */
    for (int32_t i = 0; i < r->k; i++) {
        double f, h;
        term(e, z[r->ids[i]] * a - ls, (double)r->logits[i] - r->lse, &f, &h);
        val += f;
        hbar += h;
        d[r->ids[i]] = (float)h;
    }
    finish_grad(d, z, a, ls, hbar, gs, V);
    return val;
}

/* Sampled ids x_1..x_N ~ q (the teacher): sum_j f(p_j, q_j) = E_q[f(p_x, q_x) / q_x], so
 * sum_i c_i / (N q_i) f(p_i, q_i) is unbiased, and so is its gradient. */
static double pos_sample(const eff_loss *e, const float *z, double a, const dl_record *r,
                         float *d, double gs, int64_t V)
{
    double ls = row_lse(z, a, V), val = 0, hbar = 0;
    memset(d, 0, (size_t)V * sizeof *d);
    for (int32_t i = 0; i < r->k; i++) {
        double f, h, t = (double)r->logits[i] - r->lse;
        double w = (double)r->counts[i] / r->n * exp(-t);
        term(e, z[r->ids[i]] * a - ls, t, &f, &h);
        val += w * f;
        hbar += w * h;
        d[r->ids[i]] += (float)(w * h); /* += : a repeated id (not from the builder) still counts */
    }
    finish_grad(d, z, a, ls, hbar, gs, V);
    return val;
}

static double pos_ce(const float *z, int32_t target, float *d, double gs, int64_t V)
{
    double ls = row_lse(z, 1.0, V);
    memset(d, 0, (size_t)V * sizeof *d);
    d[target] = -1.0f;
    finish_grad(d, z, 1.0, ls, -1.0, gs, V);
    return ls - z[target];
}

double dl_loss_forward_backward(float *dlogits, float *losses, const dl_config *cfg,
                                const float *logits, const dl_record *recs,
                                const int32_t *targets, int64_t N, int64_t V, double dscale,
                                int64_t *count)
{
    UPQ_ASSERT(dlogits != logits);
    eff_loss e = eff_of(cfg);
    double T = cfg->temperature, a = 1.0 / T, vs = cfg->scale_t2 ? T * T : 1.0;
    double sum = 0;
    int64_t cnt = 0;
#pragma omp parallel for schedule(static) reduction(+ : sum, cnt)
    for (int64_t i = 0; i < N; i++) {
        const float *z = logits + i * V;
        float *d = dlogits + i * V;
        double v = 0;
        if (targets[i] < 0) {
            memset(d, 0, (size_t)V * sizeof *d);
        } else if (e.kind == DL_CE) {
            UPQ_ASSERT(targets[i] < V);
            v = pos_ce(z, targets[i], d, dscale, V);
        } else {
            const dl_record *r = recs + i;
            double gs = dscale * vs * a;
            if (r->mode == DL_FULL) v = pos_full(&e, z, a, r, d, gs, V);
            else if (r->mode == DL_TOPK) v = pos_topk(&e, z, a, r, d, gs, V);
            else if (cfg->sample_bucket) {
                dl_record b = *r; /* the drawn ids as "top-K", the tail derived */
                b.log_tail = 0;
                v = pos_topk(&e, z, a, &b, d, gs, V);
            }
            else v = pos_sample(&e, z, a, r, d, gs, V);
            v *= vs;
        }
        if (losses) losses[i] = (float)v;
        sum += v;
        cnt += targets[i] >= 0;
    }
    if (count) *count = cnt;
    return sum;
}

double dl_loss_mean(float *dlogits, const dl_config *cfg, const float *logits,
                    const dl_record *recs, const int32_t *targets, int64_t N, int64_t V,
                    int64_t *count)
{
    int64_t cnt = 0;
    for (int64_t i = 0; i < N; i++) cnt += targets[i] >= 0;
    if (count) *count = cnt;
    double inv = cnt ? 1.0 / (double)cnt : 0.0;
    return dl_loss_forward_backward(dlogits, NULL, cfg, logits, recs, targets, N, V, inv,
                                    NULL) * inv;
}

static double top1(const dl_record *r, int64_t V)
{
    if (r->mode == DL_FULL) {
        float mx = r->logp[0];
        for (int64_t j = 1; j < V; j++) mx = fmaxf(mx, r->logp[j]);
        return exp((double)mx - row_lse(r->logp, 1.0, V));
    }
    float mx = r->logits[0];
    for (int32_t i = 1; i < r->k; i++) mx = fmaxf(mx, r->logits[i]);
    return exp((double)mx - r->lse);
}

void dl_top1_accum(double *sum, int64_t *count, const dl_record *recs,
                   const int32_t *targets, int64_t N, int64_t V)
{
    double s = 0;
    int64_t c = 0;
#pragma omp parallel for schedule(static) reduction(+ : s, c)
    for (int64_t i = 0; i < N; i++) {
        if (targets[i] < 0) continue;
        s += top1(recs + i, V);
        c++;
    }
    *sum += s;
    *count += c;
}

typedef struct {
    float l;
    int32_t id;
} lid;

/* a ranks before b: larger logit, then lower id. */
static int lid_before(lid a, lid b) { return a.l > b.l || (a.l == b.l && a.id < b.id); }

static int lid_cmp(const void *x, const void *y)
{
    lid a = *(const lid *)x, b = *(const lid *)y;
    return lid_before(a, b) ? -1 : lid_before(b, a) ? 1 : 0;
}

/* A candidate's rank as one integer: larger key = ranked first (lid_before: larger logit,
 * then lower id). The float's bits made order-preserving (-0 taken as +0, which compares
 * equal to it) above the complemented id. For non-NaN logits only. */
static inline uint64_t rank_key(float l, int32_t id)
{
    l += 0.0f; /* -0 -> +0 */
    uint32_t u;
    memcpy(&u, &l, sizeof u);
    u = u & 0x80000000u ? ~u : u | 0x80000000u;
    return (uint64_t)u << 32 | (uint32_t)~(uint32_t)id;
}

/* Reorders c[0, n) (distinct keys) so that c[0, K) are the K largest, largest first:
 * quickselect (Hoare partition around the middle key), then an insertion sort of the K.
 * A few hundred candidates and K = 64: cheaper than a heap. */
static void top_select(uint64_t *c, int32_t n, int32_t K)
{
    int32_t lo = 0, hi = n - 1, k = K - 1;
    while (lo < hi) {
        uint64_t piv = c[lo + (hi - lo) / 2];
        int32_t i = lo, j = hi;
        while (i <= j) {
            while (c[i] > piv) i++;
            while (c[j] < piv) j--;
            if (i <= j) {
                uint64_t t = c[i];
                c[i] = c[j];
                c[j] = t;
                i++, j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else break;
    }
    for (int32_t i = 1; i < K; i++) {
        uint64_t v = c[i];
        int32_t j = i;
        for (; j > 0 && v > c[j - 1]; j--) c[j] = c[j - 1];
        c[j] = v;
    }
}

/* The sum of e in eight double partials, in a fixed order (kq_exp_shift_sum_fn's). */
static double sum8(const float *e, int64_t V)
{
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t j = 0;
    for (; j + 8 <= V; j += 8)
        for (int u = 0; u < 8; u++) acc[u] += e[j + u];
    for (; j < V; j++) acc[0] += e[j];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/* e_j = exp(x_j - mx) in float and their sum as sum8 adds it: the record builders' one
 * pass over V, through the kernel table (AVX-512 or AVX2 where present; every version
 * gives the reference's bits, kernels/ref/kq_exp_ref.c, the same float exp as vexp.h's
 * upq_expf). Float exp is within ~1e-7 relative, below the fp32 rounding of the stored
 * log-sum-exp. */
static double exp_shift_sum(float *e, const float *x, float mx, int64_t V)
{
    return kq_kernels_active()->exp_shift_sum(e, x, mx, V);
}

/* The largest of x (8 partial maxima, so the loop vectorizes). */
static float row_max(const float *x, int64_t V)
{
    float m8[8];
    for (int u = 0; u < 8; u++) m8[u] = -INFINITY;
    int64_t j = 0;
    for (; j + 8 <= V; j += 8)
        for (int u = 0; u < 8; u++) m8[u] = x[j + u] > m8[u] ? x[j + u] : m8[u];
    for (; j < V; j++) m8[0] = x[j] > m8[0] ? x[j] : m8[0];
    float mx = m8[0];
    for (int u = 1; u < 8; u++) mx = m8[u] > mx ? m8[u] : mx;
    return mx;
}

/* The k-th largest (0-based) of a (n > k, no NaN; reordered), by quickselect. */
static float kth_largest(float *a, int64_t n, int64_t k)
{
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float piv = a[lo + (hi - lo) / 2];
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] > piv) i++;
            while (a[j] < piv) j--;
            if (i <= j) {
                float t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++, j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else return a[k];
    }
    return a[k];
}

double dl_logsumexp_exact(const float *logits, int64_t V) { return row_lse(logits, 1.0, V); }

double dl_logsumexp(const float *logits, int64_t V, float *scratch)
{
    float mx = row_max(logits, V);
    return mx + log(exp_shift_sum(scratch, logits, mx, V));
}

float dl_topk_build(int32_t *ids, float *top_logits, float *log_tail, const float *logits,
                    int64_t V, int32_t K)
{
    UPQ_ASSERT(K >= 1 && K <= V);
    /* A bar under the K-th largest logit: the K-th largest of the maxima of about 2K
     * blocks (those K maxima are K distinct entries >= it). Only entries >= the bar can be
     * in the top K: the blocks whose maximum reaches it are scanned (without branches)
     * for them, and the K largest of their rank keys are selected. */
    int64_t bs = (V + 2 * (int64_t)K - 1) / (2 * (int64_t)K), nb = (V + bs - 1) / bs;
    /* one scratch block: keys c (V), h (K), then e (V), candidate ids ci (V), maxima bm (2 nb) */
    uint64_t *c = upq_malloc((size_t)V * 8 + (size_t)K * sizeof(lid) + (size_t)(2 * V + 2 * nb) * 4, "top-K scratch");
    UPQ_ASSERT(c);
    lid *h = (lid *)(c + V);
    float *e = (float *)(h + K), *bm = e + 2 * V;
    int32_t *ci = (int32_t *)(e + V);
    for (int64_t b = 0; b < nb; b++) {
        int64_t b0 = b * bs;
        bm[b] = bm[nb + b] = row_max(logits + b0, b0 + bs <= V ? bs : V - b0);
    }
    float bar = kth_largest(bm + nb, nb, K - 1);
    int32_t n = 0;
    for (int64_t b = 0; b < nb; b++) {
        if (!(bm[b] >= bar)) continue;
        int64_t c1 = (b + 1) * bs <= V ? (b + 1) * bs : V;
        for (int64_t j = b * bs; j < c1; j++) {
            ci[n] = (int32_t)j;
            n += logits[j] >= bar;
        }
    }
    for (int32_t i = 0; i < n; i++) c[i] = rank_key(logits[ci[i]], ci[i]);
    if (n >= K) {
        top_select(c, n, K);
        for (int32_t i = 0; i < K; i++) {
            int32_t id = (int32_t)~(uint32_t)c[i];
            h[i] = (lid){logits[id], id};
        }
    } else { /* NaN logits are never >= the bar: fill from the first ids not taken, ranked last */
        int32_t m = 0;
        for (int64_t j = 0; j < V; j++)
            if (logits[j] >= bar) h[m++] = (lid){logits[j], (int32_t)j};
        for (int64_t j = 0; m < K && j < V; j++)
            if (!(logits[j] >= bar)) h[m++] = (lid){logits[j], (int32_t)j};
        qsort(h, (size_t)K, sizeof *h, lid_cmp);
    }
    for (int32_t i = 0; i < K; i++) {
        ids[i] = h[i].id;
        top_logits[i] = h[i].l;
    }
    /* One exp pass (shifted by the largest logit, the first entry): its sum gives the
     * log-sum-exp; then the top K entries are zeroed and the rest summed directly, so a
     * tiny tail keeps its relative precision. */
    float mx = h[0].l;
    double s = exp_shift_sum(e, logits, mx, V);
    for (int32_t i = 0; i < K; i++) e[h[i].id] = 0.0f;
    double tail = sum8(e, V);
    *log_tail = K == V ? -INFINITY : (float)(log(tail) - log(s));
    free(c);
    return (float)(mx + log(s));
}

static int dbl_cmp(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

float dl_sample_build_u(int32_t *ids, int32_t *counts, float *out_logits, int32_t *k,
                        const float *logits, int64_t V, int32_t n, const double *draws)
{
    UPQ_ASSERT(n >= 1);
    double *u = upq_malloc((size_t)n * sizeof *u, "sample draws");
    float *e = upq_malloc((size_t)V * sizeof *e, "sample exp");
    UPQ_ASSERT(u && e);
    memcpy(u, draws, (size_t)n * sizeof *u);
    qsort(u, (size_t)n, sizeof *u, dbl_cmp);
    float mx = row_max(logits, V);
    double s = exp_shift_sum(e, logits, mx, V), inv = 1.0 / s;
    /* Inverse CDF of all draws in one pass; draws past the rounded total go to the last
     * entry with mass. */
    int32_t nk = 0, i = 0;
    double cdf = 0;
    int64_t last = 0;
    for (int64_t j = 0; j < V && i < n; j++) {
        double q = e[j] * inv;
        if (q <= 0) continue;
        cdf += q;
        last = j;
        int32_t c = 0;
        while (i < n && u[i] < cdf) i++, c++;
        if (c) {
            ids[nk] = (int32_t)j;
            counts[nk] = c;
            out_logits[nk] = logits[j];
            nk++;
        }
    }
    if (i < n) {
        if (nk && ids[nk - 1] == last) counts[nk - 1] += n - i;
        else {
            ids[nk] = (int32_t)last;
            counts[nk] = n - i;
            out_logits[nk] = logits[last];
            nk++;
        }
    }
    free(u);
    free(e);
    *k = nk;
    return (float)(mx + log(s));
}

float dl_sample_build(int32_t *ids, int32_t *counts, float *out_logits, int32_t *k,
                      const float *logits, int64_t V, int32_t n, uint64_t rng[4])
{
    UPQ_ASSERT(n >= 1);
    double *u = upq_malloc((size_t)n * sizeof *u, "sample draws");
    UPQ_ASSERT(u);
    for (int32_t i = 0; i < n; i++) u[i] = upq_rng_uniform(rng);
    float lse = dl_sample_build_u(ids, counts, out_logits, k, logits, V, n, u);
    free(u);
    return lse;
}
