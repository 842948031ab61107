/* cmd_bench_kernels.c - `upq bench kernels [--json] [--quick] [--threads LIST] ...`: packed
 * INT2/INT4 GEMV (stored layout and repacked copy) against a streaming-read bandwidth
 * measured interleaved with its passes (weights cycled through more distinct matrices
 * than the L3 holds, so they come from DRAM), and
 * packed GEMM against BLIS FP32 sgemm on the same shape. Prints figures; not a test. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "f16.h"
#include "kq_dispatch.h"
#include "kq_format.h"
#include "kq_gemm.h"
#include "kq_gemv.h"
#include "upq_err.h"

enum { BK_MAX_THREADS = 8 };
/* Weights are cycled through this many bytes of distinct matrices. The VM reports a
 * 32 MiB L3, but a single 64 MiB FP32 matrix re-read here ran at 20 GB/s against
 * 5-12 GB/s for larger sets (the host's L3 may be larger, e.g. Milan-X), so the pool is
 * far bigger than any cache that could be behind it. */
#define BK_POOL_BYTES ((size_t)384 << 20)

typedef struct { int64_t N, K; const char *what; } bk_shape;
typedef struct { int bits, group; } bk_fmt;
enum { BK_MAX_SEL = 16 };
typedef struct {
    int json, quick;
    int threads[BK_MAX_THREADS], nthreads;
    int64_t shapes[BK_MAX_SEL][2];    /* --shapes: N, K pairs; nshapes 0 = every shape */
    int nshapes;
    int fmts[BK_MAX_SEL][2];          /* --formats: bits, group; nfmts 0 = every format */
    int nfmts;
    int gemv, gemm;                   /* --only: which parts run */
    size_t pool_bytes;                /* --pool-mib: bytes the weights are cycled through */
    int64_t ms[BK_MAX_SEL];           /* --m: GEMV takes those <= 8, GEMM the others */
    int nms;                          /* 0: GEMV 1, 8; GEMM 16, 64, 256, 1024 */
    double min_s;                     /* time each measurement at least this long */
    double stream_gbps[BK_MAX_THREADS + 1];
} bk_opts;

static const bk_shape bk_shapes[] = {
    {4096, 4096, "7B q/o"},        {11008, 4096, "7B gate/up"}, {4096, 11008, "7B down"},
    {384, 384, "15m q/o"},         {128, 384, "15m k/v"},       {1024, 384, "15m gate/up"},
    {384, 1024, "15m down"},       {4096, 384, "15m lm_head"},  {64, 64, "260k q/o"},
    {32, 64, "260k k/v"},          {172, 64, "260k gate/up"},   {64, 172, "260k down"},
    {512, 64, "260k lm_head"},
};
static const bk_fmt bk_fmts[] = {{2, 64}, {2, 128}, {4, 128}};
static const int64_t bk_gemm_M[] = {16, 32, 64, 128, 256, 512, 1024};
enum { BK_NGEMM_M = (int)(sizeof bk_gemm_M / sizeof bk_gemm_M[0]) };
enum { BK_NFMT = (int)(sizeof bk_fmts / sizeof bk_fmts[0]) };

/* --formats, else INT2 g128 only under --quick, else all. */
static int bk_fmt_selected(const bk_opts *o, const bk_fmt *fm)
{
    for (int i = 0; i < o->nfmts; i++)
        if (o->fmts[i][0] == fm->bits && o->fmts[i][1] == fm->group) return 1;
    return o->nfmts ? 0 : !o->quick || (fm->bits == 2 && fm->group == 128);
}

/* --m, else the defaults (GEMV M = 1 and 8, GEMM M = 16..1024; fewer under --quick). */
static int bk_m_selected(const bk_opts *o, int64_t M)
{
    for (int i = 0; i < o->nms; i++)
        if (o->ms[i] == M) return 1;
    if (o->nms) return 0;
    return M == 1 || (!o->quick && (M == 8 || M == 64 || M == 1024)) || M == 16 || M == 256;
}

/* --shapes, else the three quick shapes under --quick, else all. */
static int bk_shape_selected(const bk_opts *o, const bk_shape *s)
{
    for (int i = 0; i < o->nshapes; i++)
        if (o->shapes[i][0] == s->N && o->shapes[i][1] == s->K) return 1;
    if (o->nshapes) return 0;
    return !o->quick || (s->N == 4096 && s->K == 4096) || (s->N == 384 && s->K == 384) ||
           (s->N == 64 && s->K == 64);
}

static double bk_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *bk_alloc(size_t bytes, const char *what)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes ? bytes : 64)) {
        UPQ_FAIL(UPQ_EIO, "bench kernels: out of memory allocating %zu bytes for %s", bytes, what);
        return NULL;
    }
    return p;
}

static void bk_fill_random(void *p, size_t bytes, uint32_t seed)
{
    uint32_t *u = p;
    for (size_t i = 0; i < bytes / 4; i++) {
        seed = seed * 1664525u + 1013904223u;
        u[i] = seed;
    }
}

static void bk_fill_floats(float *p, int64_t n, uint32_t seed)
{
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
    }
}

/* null or the number, for the JSON lines. */
static json_t *bk_num(double v, int valid) { return valid ? json_real(v) : json_null(); }

static void bk_emit(const bk_opts *o, const char *kernel, int bits, int group, int64_t M,
                    int64_t N, int64_t K, int threads, double us, double gbps, double ratio_bw,
                    double gflops, double ratio_blis)
{
    if (o->json) {
        json_t *j = json_pack("{s:s, s:o, s:o, s:I, s:I, s:I, s:i, s:o, s:o, s:o, s:o, s:o}", "kernel", kernel,
                              "bits", bits ? json_integer(bits) : json_null(), "group",
                              bits ? json_integer(group) : json_null(), "M", (json_int_t)M, "N", (json_int_t)N,
                              "K", (json_int_t)K, "threads", threads, "us", bk_num(us, us >= 0), "gbps",
                              bk_num(gbps, gbps >= 0), "ratio_bw", bk_num(ratio_bw, ratio_bw >= 0), "gflops",
                              bk_num(gflops, gflops >= 0), "ratio_blis", bk_num(ratio_blis, ratio_blis >= 0));
        if (cli_print_json(j, 6, JSON_COMPACT)) fprintf(stderr, "upq bench kernels: %s\n", upq_errmsg());
    } else {
        char fmt[16] = "fp32";
        if (bits) snprintf(fmt, sizeof fmt, "int%d g%d", bits, group);
        printf("%-15s %-9s M %-5lld N %-6lld K %-6lld t %d  %10.1f us", kernel, fmt, (long long)M,
               (long long)N, (long long)K, threads, us);
        if (gbps >= 0) printf("  %7.2f GB/s", gbps);
        if (ratio_bw >= 0) printf("  %5.2f x bw", ratio_bw);
        if (gflops >= 0) printf("  %8.2f GFLOP/s", gflops);
        if (ratio_blis >= 0) printf("  %5.2f x blis", ratio_blis);
        printf("\n");
    }
    fflush(stdout);
}

typedef struct { double t_med, t_lo, t_hi, bw_med, bw_lo, bw_hi; } bk_tbw; /* bk_time_bw */

/* A GEMV line with the interleaved bandwidth (bk_time_bw): median time per call and its
 * range, the median read bandwidth and its range, the floor (bytes / that bandwidth) and
 * the kernel's ratio to it (floor / time: 1 = at the bandwidth). */
static void bk_emit_bw(const bk_opts *o, const char *kernel, int bits, int group, int64_t M,
                       int64_t N, int64_t K, int threads, const bk_tbw *m, double gbps,
                       double floor_s, double gflops, int used)
{
    const double ratio = floor_s / m->t_med;
    if (o->json) {
        json_t *j = json_pack("{s:s, s:i, s:i, s:I, s:I, s:I, s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:b}",
                              "kernel", kernel, "bits", bits, "group", group, "M", (json_int_t)M, "N",
                              (json_int_t)N, "K", (json_int_t)K, "threads", threads, "us", m->t_med * 1e6,
                              "us_lo", m->t_lo * 1e6, "us_hi", m->t_hi * 1e6, "gbps", gbps, "bw_gbps",
                              m->bw_med, "bw_lo", m->bw_lo, "bw_hi", m->bw_hi, "floor_us", floor_s * 1e6,
                              "ratio_bw", ratio, "gflops", gflops, "used", used);
        if (cli_print_json(j, 6, JSON_COMPACT)) fprintf(stderr, "upq bench kernels: %s\n", upq_errmsg());
    } else {
        char fmt[16];
        snprintf(fmt, sizeof fmt, "int%d g%d", bits, group);
        printf("%-22s %-9s M %-2lld N %-6lld K %-6lld t %d  %9.1f us [%.1f-%.1f]  bw %6.2f GB/s [%.1f-%.1f]"
               "  floor %8.1f us  %5.2f x bw%s\n",
               kernel, fmt, (long long)M, (long long)N, (long long)K, threads, m->t_med * 1e6, m->t_lo * 1e6,
               m->t_hi * 1e6, m->bw_med, m->bw_lo, m->bw_hi, floor_s * 1e6, ratio, used ? "  *" : "");
    }
    fflush(stdout);
}

/* Streaming-read bandwidth over the pool for each thread count: the best of every read
 * shape (kq_stream_read variants), best of 3 passes each. */
static void bk_stream(bk_opts *o, const void *pool, size_t bytes)
{
    for (int ti = 0; ti < o->nthreads; ti++) {
        int t = o->threads[ti];
        double best = 1e30;
        for (int v = 0; v < KQ_STREAM_VARIANTS; v++)
            for (int r = 0; r < 3; r++) {
                double t0 = bk_now();
                volatile uint64_t sink = kq_stream_read(pool, bytes, t, v);
                (void)sink;
                double dt = bk_now() - t0;
                if (dt < best) best = dt;
            }
        o->stream_gbps[t] = (double)bytes / best * 1e-9;
        bk_emit(o, "stream_read", 0, 0, 0, 0, (int64_t)bytes, t, best * 1e6, o->stream_gbps[t],
                1.0, -1, -1);
    }
}

/* Seconds per call of fn over copies 0..ncopy-1 cycled: a warm-up pass, then the best of
 * timed passes until they add up to min_s (at least one). */
typedef void (*bk_call)(void *ctx, int64_t copy, int threads);
static double bk_time(bk_call fn, void *ctx, int64_t ncopy, int threads, double min_s)
{
    for (int64_t c = 0; c < ncopy; c++) fn(ctx, c, threads); /* warm-up pass */
    double best = 1e30, total = 0.0;
    for (int pass = 0; pass < 100 && (total < min_s || pass < 1); pass++) {
        double t0 = bk_now();
        for (int64_t c = 0; c < ncopy; c++) fn(ctx, c, threads);
        double dt = bk_now() - t0;
        total += dt;
        if (dt / (double)ncopy < best) best = dt / (double)ncopy;
    }
    return best;
}

/* The kernel and the streaming read interleaved, so both see the same memory conditions:
 * per pass one kernel pass over copies 0..ncopy-1 and one read of those same bytes
 * (ncopy * bytes from the pool start, the same threads) in each read shape, the best
 * shape that pass. PASSES passes after a warm-up; medians and extremes of both. */
enum { BK_PASSES = 7 };
static int bk_cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
static bk_tbw bk_time_bw(bk_call fn, void *ctx, int64_t ncopy, int threads, const void *pool,
                         size_t stream_bytes)
{
    double t[BK_PASSES], bw[BK_PASSES];
    for (int64_t c = 0; c < ncopy; c++) fn(ctx, c, threads); /* warm-up pass */
    for (int p = 0; p < BK_PASSES; p++) {
        double best = 1e30;
        for (int v = 0; v < KQ_STREAM_VARIANTS; v++) {
            double t0 = bk_now();
            volatile uint64_t sink = kq_stream_read(pool, stream_bytes, threads, v);
            (void)sink;
            double dt = bk_now() - t0;
            if (dt < best) best = dt;
        }
        bw[p] = (double)stream_bytes / best * 1e-9;
        double t0 = bk_now();
        for (int64_t c = 0; c < ncopy; c++) fn(ctx, c, threads);
        t[p] = (bk_now() - t0) / (double)ncopy;
    }
    qsort(t, BK_PASSES, sizeof t[0], bk_cmp_d);
    qsort(bw, BK_PASSES, sizeof bw[0], bk_cmp_d);
    return (bk_tbw){t[BK_PASSES / 2], t[0], t[BK_PASSES - 1], bw[BK_PASSES / 2], bw[0], bw[BK_PASSES - 1]};
}

typedef struct {
    kq_qmat q;              /* copy 0; copy c is at data + c * bytes (and rp + c * bytes) */
    size_t bytes;           /* bytes per copy: the stored matrix, or its repacked copy */
    const float *x, *wf;    /* fp32 activations; fp32 weights pool (for BLIS) */
    size_t wf_elems;
    float *y;
    void *ws;
    size_t ws_bytes;
    int64_t M;
    const float *X;
    const kq_kernels *tab; /* kq_gemv's table: NULL = active; _rp lines force the copy */
} bk_ctx;

static void bk_call_gemv(void *p, int64_t c, int threads)
{
    bk_ctx *b = p;
    kq_qmat q = b->q;
    if (q.rp) q.rp = b->q.rp + (size_t)c * b->bytes; /* data: one copy, for edge rows */
    else q.data = b->q.data + (size_t)c * b->bytes;
    kq_gemv(b->M, b->x, q.K, &q, b->y, q.N, threads, b->tab, b->ws, b->ws_bytes);
}

static void bk_call_sgemv(void *p, int64_t c, int threads)
{
    bk_ctx *b = p;
    kq_blis_sgemv(b->q.N, b->q.K, b->wf + (size_t)c * b->wf_elems, b->x, b->y, threads);
}

static void bk_call_gemm(void *p, int64_t c, int threads)
{
    bk_ctx *b = p;
    kq_gemm(b->M, b->X, b->q.K, &b->q, b->y, b->q.N, 0.0f, threads, NULL, b->ws, b->ws_bytes);
    (void)c;
}

static void bk_call_sgemm(void *p, int64_t c, int threads)
{
    bk_ctx *b = p;
    kq_blis_sgemm_nt(b->M, b->q.N, b->q.K, b->X, b->wf, b->y, threads, 1);
    (void)c;
}

static void bk_call_sgemm_nosup(void *p, int64_t c, int threads)
{
    bk_ctx *b = p;
    kq_blis_sgemm_nt(b->M, b->q.N, b->q.K, b->X, b->wf, b->y, threads, 0);
    (void)c;
}

/* Random codes with a sane fp16 (s, m) in every block: the kernels' cost does not depend
 * on the values, and quantizing 96 MiB of floats would dominate the run. */
static void bk_fill_qmat(const kq_qmat *q, uint8_t *data, size_t bytes, uint32_t seed)
{
    bk_fill_random(data, bytes, seed);
    uint16_t s = kq_f32_to_f16(0.01f), m = kq_f32_to_f16(-0.015f);
    for (size_t off = 0; off + (size_t)q->block_bytes <= bytes; off += (size_t)q->block_bytes) {
        memcpy(data + off, &s, 2);
        memcpy(data + off + 2, &m, 2);
    }
}

static int bk_gemv_shape(const bk_opts *o, const bk_shape *sh, uint8_t *pool, float *fpool)
{
    const int64_t N = sh->N, K = sh->K;
    float *x = bk_alloc(sizeof(float) * (size_t)(KQ_GEMV_MAX_M * K), "x");
    float *y = bk_alloc(sizeof(float) * (size_t)(KQ_GEMV_MAX_M * N), "y");
    if (!x || !y) { free(x); free(y); return UPQ_EIO; }
    bk_fill_floats(x, KQ_GEMV_MAX_M * K, 5);
    bk_ctx b = {.x = x, .y = y, .wf = fpool, .wf_elems = (size_t)(N * K), .M = 1};
    kq_qmat_init(&b.q, 2, KQ_GROUP_CHANNEL, N, K, NULL);
    /* FP32 BLIS GEMV baseline: 4NK bytes per call, cycled the same way */
    int64_t fcopy = (int64_t)(o->pool_bytes / (sizeof(float) * (size_t)(N * K)));
    if (fcopy > 65536) fcopy = 65536;
    if (fcopy < 1) fcopy = 1;
    bk_fill_floats(fpool, (int64_t)(fcopy * N * K), 11);
    for (int ti = 0; ti < o->nthreads; ti++) {
        int t = o->threads[ti];
        double s = bk_time(bk_call_sgemv, &b, fcopy, t, o->min_s);
        double gbps = 4.0 * (double)(N * K) / s * 1e-9;
        bk_emit(o, "blis_sgemv_f32", 0, 0, 1, N, K, t, s * 1e6, gbps, gbps / o->stream_gbps[t],
                2.0 * (double)(N * K) / s * 1e-9, -1);
    }
    for (int f = 0; f < BK_NFMT; f++) {
        const bk_fmt *fm = &bk_fmts[f];
        if (!bk_fmt_selected(o, fm)) continue;
        for (int rp = 0; rp < 2; rp++) { /* the stored layout, then the repacked copy */
        kq_qmat_init(&b.q, fm->bits, fm->group, N, K, pool);
        const size_t rpb = kq_repack_bytes(&b.q);
        if (rp && !rpb) break;
        uint8_t *orig = NULL;
        b.bytes = rp ? rpb : kq_qmat_bytes(fm->bits, fm->group, N, K);
        /* at most 65536 copies: tiny matrices (stories260k) still span > 64 MiB, and a
         * pass stays well under a second although each call costs microseconds */
        int64_t ncopy = (int64_t)(o->pool_bytes / b.bytes);
        if (ncopy > 65536) ncopy = 65536;
        if (ncopy < 1) ncopy = 1;
        if (rp) { /* one stored matrix (edge rows read it), its repacked copy cycled */
            size_t qb = kq_qmat_bytes(fm->bits, fm->group, N, K);
            orig = bk_alloc(qb, "stored matrix");
            if (!orig) { free(x); free(y); return UPQ_EIO; }
            b.q.data = orig;
            bk_fill_qmat(&b.q, orig, qb, 7);
            kq_repack(&b.q, pool);
            for (int64_t c = 1; c < ncopy; c++) memcpy(pool + (size_t)c * b.bytes, pool, b.bytes);
        } else
            bk_fill_qmat(&b.q, pool, (size_t)ncopy * b.bytes, 7);
        b.ws_bytes = kq_gemv_ws_bytes(KQ_GEMV_MAX_M, &b.q);
        b.ws = bk_alloc(b.ws_bytes, "gemv workspace");
        if (!b.ws) { free(x); free(y); free(orig); return UPQ_EIO; }
        char name[32];
        snprintf(name, sizeof name, "gemv_%s%s", kq_kernels_active()->name, rp ? "_rp" : "");
        kq_kernels forced = *kq_kernels_active(); /* _rp: the copy at every M */
        forced.q4_rp_min_m = 1;
        b.tab = rp ? &forced : NULL;
        kq_qmat with_rp = b.q; /* a linear holding a copy (rp only tested for NULL): read at this M? */
        with_rp.rp = rpb ? pool : NULL;
        for (b.M = 1; b.M <= KQ_GEMV_MAX_M; b.M++)
            for (int ti = 0; ti < o->nthreads && bk_m_selected(o, b.M); ti++) {
                int t = o->threads[ti];
                bk_tbw m = bk_time_bw(bk_call_gemv, &b, ncopy, t, pool, (size_t)ncopy * b.bytes);
                double gbps = (double)b.bytes / m.t_med * 1e-9, floor_s = (double)b.bytes / (m.bw_med * 1e9);
                bk_emit_bw(o, name, fm->bits, fm->group, b.M, N, K, t, &m, gbps, floor_s,
                           2.0 * (double)(b.M * N * K) / m.t_med * 1e-9,
                           kq_gemv_uses_rp(&with_rp, b.M, NULL) == rp);
            }
        free(b.ws);
        free(orig);
        }
    }
    free(x);
    free(y);
    return 0;
}

static int bk_gemm_shape(const bk_opts *o, const bk_shape *sh, int64_t M, uint8_t *pool,
                         float *fpool)
{
    const int64_t N = sh->N, K = sh->K;
    float *X = bk_alloc(sizeof(float) * (size_t)(M * K), "X");
    float *Y = bk_alloc(sizeof(float) * (size_t)(M * N), "Y");
    if (!X || !Y) { free(X); free(Y); return UPQ_EIO; }
    bk_fill_floats(X, M * K, 3);
    bk_fill_floats(fpool, N * K, 13);
    bk_ctx b = {.X = X, .y = Y, .wf = fpool, .M = M};
    kq_qmat_init(&b.q, 2, KQ_GROUP_CHANNEL, N, K, NULL);
    const double flop = 2.0 * (double)M * (double)N * (double)K;
    double blis_s[BK_MAX_THREADS + 1];
    for (int ti = 0; ti < o->nthreads; ti++) {
        int t = o->threads[ti];
        double sup = bk_time(bk_call_sgemm, &b, 1, t, o->min_s);
        double nosup = bk_time(bk_call_sgemm_nosup, &b, 1, t, o->min_s);
        blis_s[t] = sup < nosup ? sup : nosup;
        bk_emit(o, "blis_sgemm_f32", 0, 0, M, N, K, t, blis_s[t] * 1e6, -1, -1,
                flop / blis_s[t] * 1e-9, 1.0);
    }
    for (int f = 0; f < BK_NFMT; f++) {
        const bk_fmt *fm = &bk_fmts[f];
        if (!bk_fmt_selected(o, fm)) continue;
        kq_qmat_init(&b.q, fm->bits, fm->group, N, K, pool);
        bk_fill_qmat(&b.q, pool, kq_qmat_bytes(fm->bits, fm->group, N, K), 9);
        for (int ti = 0; ti < o->nthreads; ti++) {
            int t = o->threads[ti];
            b.ws_bytes = kq_gemm_ws_bytes(M, &b.q, t);
            b.ws = bk_alloc(b.ws_bytes, "gemm workspace");
            if (!b.ws) { free(X); free(Y); return UPQ_EIO; }
            double s = bk_time(bk_call_gemm, &b, 1, t, o->min_s);
            bk_emit(o, "gemm_blis_ukr", fm->bits, fm->group, M, N, K, t, s * 1e6, -1, -1,
                    flop / s * 1e-9, blis_s[t] / s);
            free(b.ws);
        }
    }
    free(X);
    free(Y);
    return 0;
}

static void bk_usage(FILE *f)
{
    fprintf(f,
            "usage: upq bench kernels [--json] [--quick] [--threads LIST] [--shapes LIST]\n"
            "                         [--formats LIST] [--only gemv|gemm] [--pool-mib N] [--m LIST]\n\n"
            "Packed INT2/INT4 kernels on the shapes of LLaMA-7B and the ../shared models:\n"
            "  GEMV (M = 1; and M = 8): weights cycled through %zu MiB of distinct matrices so\n"
            "    they stream from DRAM, not the L3; per kernel 7 passes, each followed by a\n"
            "    streaming read of the same bytes with the same threads (best read shape):\n"
            "    median time per call [min-max], median read bandwidth [min-max], the floor\n"
            "    (bytes per call / that bandwidth) and the ratio floor / time ('x bw'). Lines\n"
            "    ending _rp use the run-time repacked copy (kq_repack: INT2 g64, INT4 g128) at\n"
            "    every M; '*' marks the layout kq_gemv reads at that M when a model holds both\n"
            "    (INT4 g128: the stored blocks below M = 5 on AVX512-VNNI).\n"
            "  GEMM (M = 16, 64, 256, 1024): GFLOP/s and the ratio to BLIS FP32 sgemm on the same\n"
            "    shape in the same run. Also the FP32 BLIS GEMV baseline.\n\n"
            "  --json          one JSON object per line: kernel, bits, group, M, N, K, threads,\n"
            "                  us, gbps, ratio_bw, gflops, ratio_blis (null where not applicable;\n"
            "                  stream_read lines give the bytes read as K); GEMV lines also\n"
            "                  us_lo, us_hi, bw_gbps, bw_lo, bw_hi, floor_us, used\n"
            "  --quick         smoke run: few shapes, INT2 g128 only, short timings\n"
            "  --threads LIST  thread counts (default 1,2; at most %d)\n"
            "  --shapes LIST   only these of the shapes below, as NxK (e.g. 4096x4096,11008x4096)\n"
            "  --formats LIST  only these of int2 g64, int2 g128, int4 g128, as BITSgGROUP\n"
            "                  (e.g. 2g64,4g128)\n"
            "  --only WHAT     gemv or gemm: run only that part (the stream read always runs)\n"
            "  --m LIST        M values: GEMV runs those in 1..8 (default 1,8), GEMM those in\n"
            "                  16,32,64,128,256,512,1024 (default 16,64,256,1024)\n"
            "  --pool-mib N    cycle weights (and the stream read) through N MiB, 1..%zu; a\n"
            "                  small pool keeps them in cache: the kernels' compute ceiling\n"
            "  --help          this text\n\n"
            "UPQ_KERNELS=ref benchmarks the plain-C references. Figures are noisy on a shared\n"
            "machine; GEMM and BLIS numbers are the best of repeated passes. When other processes load the\n"
            "cores, OMP_WAIT_POLICY=passive keeps threads from spinning against them (2-thread\n"
            "figures otherwise collapse), and only ratios from one run compare.\n",
            BK_POOL_BYTES >> 20, BK_MAX_THREADS, BK_POOL_BYTES >> 20);
    fprintf(f, "\nshapes (N x K):");
    for (size_t i = 0; i < sizeof bk_shapes / sizeof bk_shapes[0]; i++)
        fprintf(f, "%s %lldx%lld (%s)", i % 4 ? "," : "\n ", (long long)bk_shapes[i].N,
                (long long)bk_shapes[i].K, bk_shapes[i].what);
    fprintf(f, "\n");
}

/* "4096x4096,11008x4096" (shapes) or "2g64,4g128" (formats) into o. */
static int bk_parse_pairs(const char *arg, int shapes, bk_opts *o)
{
    const char *what = shapes ? "--shapes" : "--formats";
    const char sep = shapes ? 'x' : 'g';
    int n = 0;
    for (const char *p = arg; *p;) {
        char *end;
        long long a = strtoll(p, &end, 10), b = -1;
        if (end != p && *end == sep) b = strtoll(end + 1, &end, 10);
        if (b < 0 || (*end && *end != ',') || n == BK_MAX_SEL)
            return cli_usage_error("bench kernels", "%s: expected at most %d items like %s, got '%s'",
                                   what, BK_MAX_SEL, shapes ? "4096x4096" : "2g64", arg);
        if (shapes) o->shapes[n][0] = a, o->shapes[n][1] = b;
        else o->fmts[n][0] = (int)a, o->fmts[n][1] = (int)b;
        n++;
        p = *end ? end + 1 : end;
    }
    if (shapes) o->nshapes = n;
    else o->nfmts = n;
    for (int i = 0; i < n; i++) { /* each must name one of the tables' entries */
        int found = 0;
        for (size_t j = 0; shapes && j < sizeof bk_shapes / sizeof bk_shapes[0]; j++)
            found |= bk_shapes[j].N == o->shapes[i][0] && bk_shapes[j].K == o->shapes[i][1];
        for (int j = 0; !shapes && j < BK_NFMT; j++)
            found |= bk_fmts[j].bits == o->fmts[i][0] && bk_fmts[j].group == o->fmts[i][1];
        if (!found) return cli_usage_error("bench kernels", "%s: item %d of '%s' is not one of those in --help", what, i + 1, arg);
    }
    return 0;
}

static int bk_parse(int argc, char **argv, bk_opts *o)
{
    static const struct option opts[] = {{"json", no_argument, 0, 'j'},
                                         {"quick", no_argument, 0, 'q'},
                                         {"threads", required_argument, 0, 't'},
                                         {"shapes", required_argument, 0, 's'},
                                         {"formats", required_argument, 0, 'f'},
                                         {"only", required_argument, 0, 'o'},
                                         {"pool-mib", required_argument, 0, 'p'},
                                         {"m", required_argument, 0, 'm'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    *o = (bk_opts){.nthreads = 2, .threads = {1, 2}, .min_s = 0.3, .gemv = 1, .gemm = 1,
                   .pool_bytes = BK_POOL_BYTES};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'j') o->json = 1;
        else if (c == 'q') o->quick = 1;
        else if (c == 'h') { bk_usage(stdout); return -1; }
        else if (c == 's' || c == 'f') TRY(bk_parse_pairs(optarg, c == 's', o));
        else if (c == 'o' && (!strcmp(optarg, "gemv") || !strcmp(optarg, "gemm"))) {
            o->gemv = optarg[3] == 'v';
            o->gemm = !o->gemv;
        } else if (c == 'o') return cli_usage_error("bench kernels", "--only: gemv or gemm, not '%s'", optarg);
        else if (c == 'm') {
            int64_t *ids = NULL, n = 0;
            TRY(cli_parse_ids("bench kernels", optarg, &ids, &n));
            if (n < 1 || n > BK_MAX_SEL) { free(ids); return cli_usage_error("bench kernels", "--m: 1 to %d values", BK_MAX_SEL); }
            memcpy(o->ms, ids, sizeof(int64_t) * (size_t)n);
            o->nms = (int)n;
            free(ids);
        } else if (c == 'p') {
            int64_t mib = 0;
            TRY(cli_parse_int("bench kernels", "--pool-mib", optarg, 1, (int64_t)(BK_POOL_BYTES >> 20), &mib));
            o->pool_bytes = (size_t)mib << 20;
        }
        else if (c == 't') {
            int64_t *ids = NULL, n = 0;
            TRY(cli_parse_ids("bench kernels", optarg, &ids, &n));
            if (n < 1 || n > BK_MAX_THREADS) { free(ids); return cli_usage_error("bench kernels", "--threads: 1 to %d counts", BK_MAX_THREADS); }
            for (int64_t i = 0; i < n; i++) {
                if (ids[i] < 1 || ids[i] > BK_MAX_THREADS) { free(ids); return cli_usage_error("bench kernels", "--threads: each count in 1..%d", BK_MAX_THREADS); }
                o->threads[i] = (int)ids[i];
            }
            o->nthreads = (int)n;
            free(ids);
        } else return cli_usage_error("bench kernels", "unknown option");
    }
    if (optind < argc) return cli_usage_error("bench kernels", "unexpected argument '%s'", argv[optind]);
    if (o->quick) o->min_s = 0.05;
    return 0;
}


int cmd_bench_kernels(int argc, char **argv)
{
    bk_opts o;
    int rc = bk_parse(argc, argv, &o);
    if (rc) return rc < 0 ? UPQ_OK : rc;
    const kq_blis_info *bi = kq_blis_query();
    if (!o.json)
        printf("# cpu: %s; kernels: %s; BLIS %s MR %lld NR %lld KC %lld\n", kq_cpu_features(),
               kq_kernels_active()->name, bi->arch, (long long)bi->MR, (long long)bi->NR,
               (long long)bi->KC);
    size_t fbytes = (size_t)11008 * 4096 * sizeof(float);
    uint8_t *pool = bk_alloc(BK_POOL_BYTES + 4096, "weight pool");
    float *fpool = bk_alloc(fbytes > BK_POOL_BYTES ? fbytes : BK_POOL_BYTES, "fp32 weight pool");
    if (!pool || !fpool) { free(pool); free(fpool); return cli_report("bench kernels", UPQ_EIO); }
    bk_fill_random(pool, BK_POOL_BYTES, 1);
    bk_stream(&o, pool, o.pool_bytes);
    const int nshape = (int)(sizeof bk_shapes / sizeof bk_shapes[0]);
    for (int s = 0; s < nshape && !rc && o.gemv; s++)
        if (bk_shape_selected(&o, &bk_shapes[s])) rc = bk_gemv_shape(&o, &bk_shapes[s], pool, fpool);
    for (int s = 0; s < nshape && !rc && o.gemm; s++)
        for (int mi = 0; mi < BK_NGEMM_M && !rc; mi++) {
            int64_t M = bk_gemm_M[mi];
            if (!bk_shape_selected(&o, &bk_shapes[s]) || !bk_m_selected(&o, M)) continue;
            rc = bk_gemm_shape(&o, &bk_shapes[s], M, pool, fpool);
        }
    free(pool);
    free(fpool);
    return cli_report("bench kernels", rc);
}
