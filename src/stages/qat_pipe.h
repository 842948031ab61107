/* qat_pipe.h - what qat.c and qat_step.c share: the student of one pipeline stage (its
 * layers' fake-quantized linears, optimizers and gradient buffers) and the loop's state
 * (placement, activation slots, transfers, timers). One step of training over the 1F1B
 * schedule is qat_step (qat_step.c); setup, checkpoints and export are qat.c's. */
#ifndef UPQ_QAT_PIPE_H
#define UPQ_QAT_PIPE_H

#include <stdint.h>

#include "adamw.h"
#include "block.h"
#include "distill_loss.h"
#include "fakequant.h"
#include "forward.h"
#include "group.h"
#include "hf_model.h"
#include "pipe.h"
#include "qat_internal.h"
#include "recompute.h"
#include "sched1f1b.h"
#include "treesum.h"

/* Every decoder linear has an entry (n = L * TFM_NPROJ); the stage owns [lo, hi) (its
 * layers' linears): quantizer, gradients, optimizers and the contiguous wq/dw/dlat
 * buffers exist for those only (world rank 0 receives the other linears' latent weights
 * and quantizer state for the export). */
typedef struct {
    int64_t n, lo, hi;
    fq_quantizer *q;      /* (n) */
    fq_grads *dq;         /* (n) owned only */
    adamw_state *ow, *oq; /* (n) owned only: optimizers of latent weights and quantizer parameters */
    blk_weights *lw;      /* (L) */
    float *wq, *dw, *dlat;/* (total) the owned linears' effective weights, dL/dwq, dL/dlatent */
    float **lat;          /* (n) the latent weights (inside the model) */
    int64_t *nw;          /* (n) weights of linear i */
    int64_t *np;          /* (n) learnable quantizer parameters of linear i */
    int64_t total;        /* weights of the owned linears */
} student;

typedef struct {
    const qat_opts *o;
    tfm_model *m, g;      /* g: embedding/final norm gradient sink, no layers, no head (first and last stage) */
    student s;
    qat_data d;
    dl_config cfg;
    int S, R, stage, replica, rank, last;
    int64_t l0, l1;       /* this stage's layers */
    int64_t *first;       /* (S+1) first layer of each stage */
    int64_t M, Mloc, mb;  /* micro-batches per step, per replica, rows per micro-batch */
    int64_t nslots;       /* activation slots (1F1B: micro-batches in flight) */
    tfm_acts *acts;       /* (nslots) without recomputation; NULL with it */
    tfm_acts work;        /* recomputation: one layer's activations, shared by the slots */
    float *stash;         /* recomputation: (nslots, l1-l0+1, mb, T, C) residuals entering each layer */
    int64_t nstash;       /* floats of one slot's stash */
    int32_t *tok;         /* (nslots, mb, T) tokens of the micro-batch in each slot */
    int32_t *tgt;         /* (mb, T) */
    uint8_t *mask;        /* (mb, T) */
    dl_record *recs;      /* (mb*T) */
    float *wide;          /* widened teacher values of a micro-batch */
    float *xin, *gin, *dxo; /* (2, mb, T, C) each: received activations, received gradients, sent dx */
    pipe_op *ops;         /* (2 Mloc) */
    pipe_link *link;
    pipe_tree *tree;
    grp *gpipe, *grep, *gworld; /* my pipeline (by stage), my stage's replicas, everyone */
    double *ssq;          /* (2n) per-linear sums of squares for the global clip */
    double *lossv;        /* (M) per micro-batch losses of a step */
    int64_t *perm;        /* (N) row order of the current epoch */
    int64_t perm_epoch;
    double t_compute, t_comm, t_idle;
} qat_ctx;

/* The stage split's cost model (qat_cost.c): FLOP-equivalents of one row of T tokens,
 * forward + backward, for each part; rows: rows per optimizer step of one pipeline (B/R),
 * which share the per-step work on the weights; full_records: the teacher stores all V
 * log-probs, else K values a position. A function of the configuration only (no timings),
 * so every rank and every resume computes the same split. */
typedef struct {
    double linears, weights, attention, elementwise; /* one decoder layer's parts */
    double layer;                           /* their sum */
    double embedding;                       /* first stage */
    double head, loss;                      /* last stage: final norm + LM head; loss + records */
} qat_costs;
void qat_cost_model(const tfm_config *c, int64_t T, int64_t rows, int full_records, int64_t K, qat_costs *out);
/* cost (L): qat_costs.layer per layer, plus the embedding on layer 0 and the head and loss
 * on layer L-1 (the stages that run them). */
void qat_layer_costs(const tfm_config *c, int64_t T, int64_t rows, int full_records, int64_t K, double *cost);

/* The init model (qat_init.c). Open: a container (.h5) is read whole into m; an HF folder
 * is validated and m allocated for its config, nothing converted (*hf stays open). Read:
 * with hf, this rank's share (layers [l0, l1), the embedding when first, final norm and
 * head when last; all of it when all), then hf is closed; without hf nothing. */
int qat_init_open(const char *path, tfm_model *m, hf_model_files **hf);
int qat_init_read(hf_model_files *hf, tfm_model *m, int64_t l0, int64_t l1, int first, int last, int all);

/* Row `cursor` of the run (a function of seed and cursor only). */
int64_t qat_row_at(qat_ctx *x, int64_t cursor);
/* tok (mb, T) of the micro-batch starting at cursor; with recs also mask, targets and
 * the teacher records (x->tgt, x->recs). */
void qat_fill_batch(qat_ctx *x, int64_t cursor, int32_t *tok, int recs);
/* One optimizer step of the whole pipeline: every rank calls it with the same cursor
 * (advanced by the batch). *loss: the step's loss on every rank. */
int qat_step(qat_ctx *x, int64_t *cursor, double lr_w, double lr_q, float *loss);

/* Checkpoint (qat_ckpt.c): every rank calls both. Write: replica 0's stages write
 * collectively, all ranks agree, rank 0 commits. Read: this rank's layers and the loss
 * curve; UPQ_EINPUT for another configuration's key. */
int qat_ckpt_write(qat_ctx *x, const char *ckpt, const char *key, float *losses, int64_t step, int64_t cursor);
int qat_ckpt_read(qat_ctx *x, const char *ckpt, const char *key, float *losses, int64_t *step, int64_t *cursor);

/* The export check's reference (qat_step.c): replica 0's stages run the fake-quant forward
 * of the run's first micro-batch; world rank 0 gets its logits (mb, T, V) in logits. */
int qat_check_forward(qat_ctx *x, float *logits);

/* The --loss names, by qat_opts.loss (qat_export.c). */
extern const char *const qat_loss_names[];
/* The export, stage by stage (qat_export.c). Prepare: this stage's quantizer parameters
 * snapped onto the container's fp16 grid and its linears' effective weights remade from
 * them. Linear: the packed form of linear i (q, latent lat; snapped) into *ql, *dev the max
 * of its deviation and *dev, UPQ_EINPUT naming layer and linear. */
void qat_export_prepare(qat_ctx *x);
int qat_export_linear(const qat_opts *o, int64_t i, const fq_quantizer *q, const float *lat, kq_qmat *ql, double *dev);
/* World rank 0, with every linear packed (ql (n), dev their largest deviation) and the
 * reference logits: the container at o->out (ql's matrices are freed once it is written,
 * before the packed read-back); *rel the packed forward's largest relative logit
 * difference to the fake-quant one, *npk the packed linears. */
int qat_write_output(qat_ctx *x, kq_qmat *ql, double dev, const float *ref_logits, const float *losses,
                     int64_t steps, double *rel, int64_t *npk);
/* OUT.loss.csv and OUT.loss.svg, each written atomically. */
int qat_write_csv(const char *out, const qat_opts *o, const float *losses, int64_t steps);

#endif
