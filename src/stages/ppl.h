/* ppl.h - perplexity over non-overlapping windows of a token stream (REFERENCE.md
 * protocol: floor(n/ctx) windows, tail dropped, no BOS, tokens 1..ctx-1 of each
 * window scored), windows split over MPI ranks in contiguous batches. The result
 * is bitwise independent of the rank count: per-window NLL sums are computed the
 * same way whatever the split and added in window order. Also the model loaders
 * the inference commands share (FP32, or with packed linears). */
#ifndef UPQ_PPL_H
#define UPQ_PPL_H

#include <stdint.h>

#include "forward.h"
#include "model.h"

typedef struct {
    int64_t ctx;          /* window length in tokens (>= 2, <= max_position_embeddings) */
    int64_t batch;        /* windows per forward pass (>= 1) */
    int64_t max_windows;  /* score only the first K windows; 0 = all */
    int progress;         /* rank 0 prints progress to stderr */
} ppl_opts;

typedef struct {
    double nll_sum;       /* sum of NLL over predicted tokens (nats) */
    double mean_nll;      /* nll_sum / predicted */
    double ppl;           /* exp(mean_nll) */
    int64_t windows, predicted;
} ppl_result;

/* Loads a HuggingFace model folder (hf_model_load) or, when path is a regular file,
 * an upq .h5 model container (h5m_read). */
int ppl_load_model(const char *path, tfm_model *m);
/* The same for inference on the packed kernels: a container's bits 2/4 linears stay
 * packed (h5q_read_packed); *n_dequant counts quantized linears with no packed kernel
 * (bits 3/8), loaded dequantized. A HF folder or FP32 container loads as FP32. */
int ppl_load_model_packed(const char *path, tfm_model *m, int64_t *n_dequant);

/* Math only (no MPI): NLL sums of windows [w0, w1) of ids (window w is
 * ids[w*ctx .. w*ctx+ctx)), `batch` windows per forward pass, into nll[w - w0].
 * a: inference activations for (batch, ctx) (tfm_acts_alloc_model). done_cb (may be NULL) is called after
 * each batch with the windows finished so far. UPQ_EINPUT naming the stream offset
 * of a token id outside [0, V). */
int ppl_windows_nll(const tfm_model *m, tfm_acts *a, const int64_t *ids, int64_t ctx,
                    int64_t w0, int64_t w1, int64_t batch, double *nll,
                    void (*done_cb)(void *ctx, int64_t done), void *cb_ctx);

/* The driver: every rank passes the whole stream (n ids); batches of windows are
 * split over ranks in contiguous ranges, per-window sums reduced with par_sum_f64.
 * All ranks return the same status and result. */
int ppl_run(const tfm_model *m, const int64_t *ids, int64_t n, const ppl_opts *o,
            ppl_result *r);

#endif
