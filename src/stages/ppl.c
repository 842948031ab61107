/* ppl.c - the perplexity stage: window math (ppl_windows_nll, no MPI), the rank
 * split and reduction (ppl_run), progress on rank 0, and the shared model loader.
 * Not the CLI (cmd_ppl.c) nor token-file reading (io/h5tokens). */
#include "ppl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "h5model.h"
#include "h5qmodel.h"
#include "hf_model.h"
#include "par.h"
#include "progress.h"
#include "upq_err.h"
#include "vexp.h"

int ppl_load_model(const char *path, tfm_model *m)
{
    struct stat st;
    if (stat(path, &st) != 0) return UPQ_FAIL(UPQ_EINPUT, "%s: no such model folder or file", path);
    if (S_ISREG(st.st_mode)) return h5q_read(path, m); /* FP32 or quantized (dequantized) */
    return hf_model_load(path, m);
}

int ppl_load_model_packed(const char *path, tfm_model *m, int64_t *n_dequant)
{
    struct stat st;
    *n_dequant = 0;
    if (stat(path, &st) != 0) return UPQ_FAIL(UPQ_EINPUT, "%s: no such model folder or file", path);
    if (S_ISREG(st.st_mode)) return h5q_read_packed(path, m, n_dequant);
    return hf_model_load(path, m);
}

/* -log softmax(x)[target] over V logits: max, then exp in chunks (vectorized
 * upq_expf into a stack buffer) summed in double in a fixed order. */
static double row_nll(const float *x, int64_t V, int32_t target)
{
    float mx = x[0], e[256];
    for (int64_t j = 1; j < V; j++) mx = x[j] > mx ? x[j] : mx;
    double acc[4] = {0, 0, 0, 0};
    for (int64_t j0 = 0; j0 < V; j0 += 256) {
        int64_t n = V - j0 < 256 ? V - j0 : 256, j;
        for (j = 0; j < n; j++) e[j] = upq_expf(x[j0 + j] - mx);
        for (j = 0; j + 4 <= n; j += 4)
            for (int u = 0; u < 4; u++) acc[u] += e[j + u];
        for (; j < n; j++) acc[0] += e[j];
    }
    return mx + log((acc[0] + acc[1]) + (acc[2] + acc[3])) - x[target];
}

/* Per-row NLL of one batch, then per-window sums in row order (deterministic:
 * independent of the OpenMP thread count). */
static void batch_nll(const float *logits, const int32_t *tok, int64_t nb, int64_t T, int64_t V,
                      double *row, double *nll)
{
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < nb * T; i++)
        row[i] = i % T == T - 1 ? 0.0 : row_nll(logits + i * V, V, tok[i + 1]);
    for (int64_t b = 0; b < nb; b++) {
        double s = 0;
        for (int64_t t = 0; t < T - 1; t++) s += row[b * T + t];
        nll[b] = s;
    }
}

int ppl_windows_nll(const tfm_model *m, tfm_acts *a, const int64_t *ids, int64_t ctx,
                    int64_t w0, int64_t w1, int64_t batch, double *nll,
                    void (*done_cb)(void *ctx, int64_t done), void *cb_ctx)
{
    int64_t V = m->cfg.V;
    int32_t *tok = upq_malloc((size_t)(batch * ctx) * sizeof *tok, "window tokens");
    double *row = upq_malloc((size_t)(batch * ctx) * sizeof *row, "row NLL");
    int rc = tok && row ? UPQ_OK : UPQ_EIO;
    for (int64_t w = w0; w < w1 && !rc; w += batch) {
        int64_t nb = w1 - w < batch ? w1 - w : batch;
        for (int64_t i = 0; i < nb * ctx && !rc; i++) {
            int64_t id = ids[w * ctx + i];
            if (id < 0 || id >= V)
                rc = UPQ_FAIL(UPQ_EINPUT, "token id %lld at stream offset %lld is outside the vocabulary [0, %lld)",
                              (long long)id, (long long)(w * ctx + i), (long long)V);
            tok[i] = (int32_t)id;
        }
        if (!rc) rc = tfm_forward(m, a, tok, nb, ctx, NULL);
        if (rc) break;
        batch_nll(a->logits, tok, nb, ctx, V, row, nll + (w - w0));
        if (done_cb) done_cb(cb_ctx, w + nb - w0);
    }
    free(tok);
    free(row);
    return rc;
}

typedef struct {
    prog p;
    int64_t local; /* this rank's windows */
    int nranks;
} progress;

/* Rank 0's progress stands for every rank's (contiguous equal shares). */
static void progress_cb(void *vg, int64_t done)
{
    progress *g = vg;
    int64_t est = g->nranks > 1 ? (int64_t)((double)done / (double)g->local * (double)g->p.total) : done;
    if (done == g->local) est = g->p.total;
    prog_update(&g->p, est, g->nranks > 1 ? "(rank 0's share scaled)" : NULL);
}

int ppl_run(const tfm_model *m, const int64_t *ids, int64_t n, const ppl_opts *o, ppl_result *r)
{
    int64_t ctx = o->ctx, nwin = ctx >= 2 ? n / ctx : 0, B = o->batch;
    if (o->max_windows > 0 && nwin > o->max_windows) nwin = o->max_windows;
    if (ctx < 2 || B < 1)
        return UPQ_FAIL(UPQ_EUSAGE, "ppl: --ctx must be >= 2 and --batch >= 1 (got %lld, %lld)",
                        (long long)ctx, (long long)B);
    if (nwin == 0)
        return UPQ_FAIL(UPQ_EINPUT, "ppl: the stream has %lld tokens, fewer than one window of %lld",
                        (long long)n, (long long)ctx);
    int rank = par_rank(), P = par_size();
    int64_t nbatch = (nwin + B - 1) / B;
    int64_t b0 = nbatch * rank / P, b1 = nbatch * (rank + 1) / P;
    int64_t w0 = b0 * B, w1 = b1 * B < nwin ? b1 * B : nwin;
    double *nll = upq_calloc((size_t)nwin, sizeof(double), "per-window NLL");
    tfm_acts a = {0};
    int rc = nll ? UPQ_OK : UPQ_EIO;
    if (!rc) rc = tfm_acts_alloc_model(&a, m, B, ctx);
    progress g = {.local = w1 - w0, .nranks = P};
    prog_init(&g.p, o->progress && rank == 0 ? stderr : NULL, "ppl", "window", nwin);
    prog_set_rate(&g.p, "tokens/s", (double)ctx);
    if (!rc && w1 > w0)
        rc = ppl_windows_nll(m, &a, ids, ctx, w0, w1, B, nll + w0,
                             o->progress && rank == 0 ? progress_cb : NULL, &g);
    prog_end(&g.p);
    tfm_acts_free(&a);
    rc = par_agree(rc);
    if (!rc) rc = par_sum_f64(nll, nwin);
    if (!rc) {
        double s = 0;
        for (int64_t w = 0; w < nwin; w++) s += nll[w];
        r->nll_sum = s;
        r->windows = nwin;
        r->predicted = nwin * (ctx - 1);
        r->mean_nll = s / (double)r->predicted;
        r->ppl = exp(r->mean_nll);
    }
    free(nll);
    return rc;
}
