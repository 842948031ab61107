/* tesseraq.h - TesseraQ-style block reconstruction (prefix tsq_): per weight a soft
 * rounding variable (rectified sigmoid h(a) in [0, 1] added to the floor code), per
 * (row, block) a learnable dequantization-scale multiplier, Adam on the block-output
 * MSE against the FP block, and progressive adaptive rounding: each round hardens the
 * most confident soft variables (|h - 1/2| largest) until everything is hard, then the
 * codes and scales are folded back into the kq_qmat (fp16 s, m = -s*z).
 * Starts from an rtn/gptq kq_qmat of the same block. Not the driver (ptq.c). */
#ifndef UPQ_TESSERAQ_H
#define UPQ_TESSERAQ_H

#include <stdint.h>

#include "block.h"
#include "model.h"
#include "ptq_block.h"
#include "ptq_grad.h"
#include "quant.h"

typedef struct {
    int rounds;          /* hardening rounds (10) */
    int steps;           /* Adam steps per round (100) */
    double lr;           /* Adam step of the rounding variables (3e-2) */
    double lr_scale;     /* Adam step of the scale multipliers (1e-3) */
    double final_frac;   /* hardened fraction before the last round (0.995) */
    int64_t batch;       /* calibration windows per step (1) */
    int h_init;          /* TSQ_H_CODE: h = 0.25/0.75 on the init's side (default);
                          * TSQ_H_FRAC: AdaRound's h = frac(W/s + z), the soft weight = W */
    uint64_t seed;
    /* Block groups (several ranks share the windows): this rank holds windows
     * [win_first, win_first + win_count) of the S (X, Y hold only those; read only when
     * reduce is set).
     * Every step each rank takes the gradient on its windows among the step's batch, then
     * reduce(reduce_ctx, buf, n) sums the concatenated gradients (and the loss, last) over
     * the ranks in a fixed order, so that every rank makes the same Adam update. The loss
     * is normalised by the whole batch. NULL: one rank. */
    int64_t win_first, win_count;
    int (*reduce)(void *ctx, float *buf, int64_t n);
    void *reduce_ctx;
} tsq_opts;

enum { TSQ_H_CODE = 0, TSQ_H_FRAC = 1 };

void tsq_opts_default(tsq_opts *o);

/* Learnable state of one linear layer (N, K). */
typedef struct {
    int64_t N, K, nb, bg;
    int maxq, grid;
    uint8_t *clo;        /* (N, K) floor code in [0, maxq-1] */
    int8_t *hard;        /* (N, K) -1 soft, else the hard offset 0/1 */
    float *alpha, *ga, *ma, *va;  /* (N, K) variables, gradient, Adam moments */
    float *s, *z;        /* (N, nb) base scale (fp32 of the stored fp16) and zero point */
    float *nu, *gn, *mn, *vn;     /* (N, nb) scale multiplier, gradient, moments */
    float *Wsoft, *gW;   /* (N, K) current weights and their gradient */
} tsq_linear;

typedef struct {
    tfm_config c;
    tfm_layer soft;      /* the block with Wsoft as FP32 linear weights (forward only) */
    blk_weights bw;      /* the block with LIN_SOFTROUND linears over lin[] (linear.h) */
    tsq_linear lin[TFM_NPROJ];
    ptq_block_ws ws;
    ptq_grad_ws gws;
    float *out, *dout;   /* (T, C) */
    int64_t T, step;
} tsq_state;

/* From the FP block w and its initial quantization ql[TFM_NPROJ] (rtn or gptq, zero-point form or
 * the SEQ grid, whose z = maxq/2 stays fixed); h_init: TSQ_H_CODE or TSQ_H_FRAC. */
int tsq_init(tsq_state *st, const tfm_config *c, const tfm_layer *w, const kq_qmat ql[TFM_NPROJ], int64_t T);
int tsq_init_h(tsq_state *st, const tfm_config *c, const tfm_layer *w, const kq_qmat ql[TFM_NPROJ], int64_t T,
               int h_init);
void tsq_free(tsq_state *st);
/* Rebuilds the soft weights, then the mean-squared block-output error over windows idx[n]
 * of X/Y (S, T, C) and its gradient w.r.t. every soft variable and scale multiplier. */
double tsq_loss_grad(tsq_state *st, const float *X, const float *Y, const int64_t *idx, int64_t n);
/* The whole schedule; *loss_out: final MSE over all S windows with hard codes. Writes the
 * result into ql, unless that MSE is above the init's (ql on entry; measured first), when
 * ql keeps the init and *loss_out is the init's MSE. progress (may be NULL) gets (round, loss) after every round. */
int tsq_run(tsq_state *st, const float *X, const float *Y, int64_t S, const tsq_opts *o, kq_qmat ql[TFM_NPROJ],
            double *loss_out, void (*progress)(void *ctx, int round, double loss), void *ctx);

#endif
