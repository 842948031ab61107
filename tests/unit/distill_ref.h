/* distill_ref.h - helpers of the distillation-loss tests (test_distill_loss.c,
 * test_distill_batch.c): a seeded generator, a float64 plain reference of one position's
 * loss written from the definitions (its gradient by double central differences), teacher
 * records in each mode, and one-position evaluation. Test helper only (not a test itself). */
#ifndef UPQ_TEST_DISTILL_REF_H
#define UPQ_TEST_DISTILL_REF_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "distill_loss.h"
#include "rng.h"

static uint64_t rs[4]; /* seeded by each test's main */
static inline double unif(void) { return upq_rng_uniform(rs); }
static inline void fill(float *x, int64_t n, double scale)
{
    for (int64_t i = 0; i < n; i++) x[i] = (float)(scale * (2 * unif() - 1));
}

static const char *kname[] = {"ce", "fkl", "rkl", "jsd", "cakld"};
static const char *mname[] = {"full", "topk", "sample", "topk-derived-tail", "sample-bucket"};

/* ---- float64 reference, from the definitions ---- */
static inline double xlogy_ratio(double x, double y) { return x > 0 ? x * log(x / y) : 0.0; }

static inline double ref_term(dl_kind k, double beta, double gamma, double p, double q)
{
    if (k == DL_JSD && beta == 0) k = DL_FKL;
    if (k == DL_JSD && beta == 1) k = DL_RKL;
    switch (k) {
    case DL_FKL: return xlogy_ratio(q, p);
    case DL_RKL: return xlogy_ratio(p, q);
    case DL_JSD: {
        /* GKD's JSD over beta (1 - beta), plus the zero-sum -(1 - 2 beta)(p - q) of
         * docs/distill-loss.md (it matters only for the sampled estimator) */
        double m = beta * q + (1 - beta) * p;
        return (beta * xlogy_ratio(q, m) + (1 - beta) * xlogy_ratio(p, m)) / (beta * (1 - beta)) -
               (1 - 2 * beta) * (p - q);
    }
    case DL_CAKLD: return gamma * xlogy_ratio(q, p) + (1 - gamma) * xlogy_ratio(p, q);
    default: abort();
    }
}

static inline void ref_softmax(double *p, const double *x, int64_t V, double scale)
{
    double mx = -INFINITY, s = 0;
    for (int64_t j = 0; j < V; j++) mx = fmax(mx, x[j] * scale);
    for (int64_t j = 0; j < V; j++) s += p[j] = exp(x[j] * scale - mx);
    for (int64_t j = 0; j < V; j++) p[j] /= s;
}

static inline double ref_pos(const dl_config *c, const double *z, const dl_record *r, int32_t target,
                      int64_t V)
{
    double *p = malloc(V * sizeof *p), *q = malloc(V * sizeof *q), v = 0;
    if (c->kind == DL_CE) {
        ref_softmax(p, z, V, 1.0);
        v = -log(p[target]);
        free(p); free(q);
        return v;
    }
    ref_softmax(p, z, V, 1.0 / c->temperature);
    if (r->mode == DL_FULL) {
        double *t = calloc(V, sizeof *t);
        for (int64_t j = 0; j < V; j++) t[j] = r->logp[j];
        ref_softmax(q, t, V, 1.0);
        for (int64_t j = 0; j < V; j++) v += ref_term(c->kind, c->beta, c->gamma, p[j], q[j]);
        free(t);
    } else if (r->mode == DL_TOPK || c->sample_bucket) { /* sample_bucket: drawn ids as K */
        char *in = calloc(V, 1);
        double qs = 0, ptail = 0;
        for (int32_t i = 0; i < r->k; i++) {
            double qi = exp((double)r->logits[i] - r->lse);
            in[r->ids[i]] = 1;
            qs += qi;
            v += ref_term(c->kind, c->beta, c->gamma, p[r->ids[i]], qi);
        }
        for (int64_t j = 0; j < V; j++) ptail += in[j] ? 0 : p[j];
        double qtail = r->mode == DL_TOPK && r->log_tail < 0 ? exp(r->log_tail) : 1 - qs;
        if (r->k < V) v += ref_term(c->kind, c->beta, c->gamma, ptail, qtail);
        free(in);
    } else {
        for (int32_t i = 0; i < r->k; i++) {
            double qi = exp((double)r->logits[i] - r->lse);
            v += (double)r->counts[i] / r->n / qi *
                 ref_term(c->kind, c->beta, c->gamma, p[r->ids[i]], qi);
        }
    }
    free(p); free(q);
    return c->scale_t2 ? v * c->temperature * c->temperature : v;
}

/* d ref_pos / d z by central differences in double. */
static inline void ref_grad(double *g, const dl_config *c, const float *zf, const dl_record *r,
                     int32_t target, int64_t V)
{
    double *z = malloc(V * sizeof *z);
    for (int64_t j = 0; j < V; j++) z[j] = zf[j];
    const double h = 1e-5;
    for (int64_t j = 0; j < V; j++) {
        double z0 = z[j];
        z[j] = z0 + h;
        double up = ref_pos(c, z, r, target, V);
        z[j] = z0 - h;
        double dn = ref_pos(c, z, r, target, V);
        z[j] = z0;
        g[j] = (up - dn) / (2 * h);
    }
    free(z);
}

/* Teacher records for position i in one of three modes, from teacher logits tl (V). */
typedef struct {
    dl_record r;
    int32_t ids[4096], counts[4096];
    float lg[4096];
} rec_buf;

static inline void make_rec(rec_buf *b, dl_mode mode, const float *tl, int64_t V, int32_t K, int32_t n)
{
    memset(&b->r, 0, sizeof b->r);
    b->r.mode = mode;
    if (mode == DL_FULL) b->r.logp = tl;
    else if (mode == DL_TOPK) {
        b->r.lse = dl_topk_build(b->ids, b->lg, &b->r.log_tail, tl, V, K);
        b->r.k = K;
    } else {
        b->r.lse = dl_sample_build(b->ids, b->counts, b->lg, &b->r.k, tl, V, n, rs);
        b->r.n = n;
        b->r.counts = b->counts;
    }
    b->r.ids = b->ids;
    b->r.logits = b->lg;
}

static inline double max_abs(const float *x, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

/* One position: value and gradient of cfg, for the limit and equality tests. */
static inline double eval1(float *d, const dl_config *c, const float *z, const dl_record *r, int64_t V)
{
    int32_t t = 0;
    return dl_loss_forward_backward(d, NULL, c, z, r, &t, 1, V, 1.0, NULL);
}

static inline double grad_diff(const float *a, const float *b, int64_t V)
{
    double m = 0, s = fmax(max_abs(a, V), max_abs(b, V));
    for (int64_t j = 0; j < V; j++) m = fmax(m, fabs(a[j] - b[j]));
    return m / (s + 1e-12);
}

#endif
