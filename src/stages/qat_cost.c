/* qat_cost.c - the cost model behind `upq qat --stages S`'s layer split (qat_pipe.h,
 * docs/qat.md "Stage split"): what one training row of T tokens costs each part of the
 * model, forward + backward, in FLOP-equivalents (a multiply-add of a GEMM = 2). A function
 * of the model config, T and the teacher records' layout only - never of timings - so
 * that every rank, any S and a resume on another S compute the same split. Not the split
 * itself (mpi/partition.c) and not a timing model of any machine: the constants that are
 * not FLOP counts (the loss's per-vocabulary work, the per-weight passes of a micro-batch)
 * were measured once on the shared 2-core AMD EPYC (docs/qat.md) and are fixed here. */
#include "qat_pipe.h"

/* Attention rows are computed in blocks of 64 (src/model/attention.c's ATT_BLOCK): block
 * [r0, r1) multiplies against keys 0..r1-1. */
enum { QC_ATT_BLOCK = 64 };

/* The constants below are not FLOP counts: FLOP-equivalents of the work that is not a GEMM,
 * each measured once (perf samples of a training run minus its set-up, docs/qat.md "Stage
 * split") relative to the GEMMs of the same run, and fixed here.
 * QC_LOSS_V: the distillation loss per vocabulary entry and position (the log-sum-exp and
 * the tail probabilities in double, two libm exp an entry, the float gradient pass, the
 * maximum and the clears: distill_loss.c) with topk or sample records; full records also
 * evaluate the loss term and a second log-sum-exp per entry, about 3 times the
 * transcendental work (QC_LOSS_V_FULL, estimated, not measured). */
#define QC_LOSS_V 1360.0
#define QC_LOSS_V_FULL (3.0 * QC_LOSS_V)
/* QC_REC: per stored record value (fp16 widening, the id scatter). */
#define QC_REC 8.0
/* QC_PAIR: the softmax passes per (query, key, head) pair (forward, and the backward's
 * recomputation and ds); QC_NORM per C element of a token (both RMSNorms forward and
 * backward, RoPE, residuals); QC_FFN per F element (SwiGLU forward and backward). */
#define QC_PAIR 330.0
#define QC_NORM 520.0
#define QC_FFN 330.0
/* QC_WEIGHT_MB: per linear weight and micro-batch (the zeroing of dL/dwq, the copy into the
 * gradient tree and its merges); QC_WEIGHT_STEP: per weight and optimizer step (the
 * fake-quant forward and backward, the clip's sums of squares, AdamW), shared by the rows
 * of the step that the pipeline runs. */
#define QC_WEIGHT_MB 76.0
#define QC_WEIGHT_STEP 715.0

/* Keys multiplied per query row, summed over a row of T tokens (the causal blocks). */
static double att_pairs(int64_t T)
{
    double n = 0;
    for (int64_t r0 = 0; r0 < T; r0 += QC_ATT_BLOCK) {
        int64_t r1 = r0 + QC_ATT_BLOCK < T ? r0 + QC_ATT_BLOCK : T;
        n += (double)(r1 - r0) * (double)r1;
    }
    return n;
}

void qat_cost_model(const tfm_config *c, int64_t T, int64_t rows, int full_records, int64_t K, qat_costs *out)
{
    double lin = 0, t = (double)T, C = (double)c->C, V = (double)c->V;
    int64_t N, Kp;
    for (int p = 0; p < TFM_NPROJ; p++) tfm_proj_shape(c, p, &N, &Kp), lin += (double)N * (double)Kp;
    /* seven linears: forward, dx and dW (the fake-quant weights' gradient), 2 T N K each;
     * then the passes over their weights, per micro-batch (of one row: the split does not
     * depend on how rows are grouped) and per step */
    out->linears = 6.0 * t * lin;
    out->weights = QC_WEIGHT_MB * lin + QC_WEIGHT_STEP * lin / (double)(rows > 0 ? rows : 1);
    /* attention: forward q k^T and p v, backward the recomputed q k^T, dp, ds k, ds^T q and
     * p^T dy: 7 products of D multiply-adds per (query, key) pair and head, plus the softmax */
    double pairs = att_pairs(T) * (double)c->H;
    out->attention = 14.0 * (double)c->D * pairs + QC_PAIR * pairs;
    out->elementwise = t * (QC_NORM * C + QC_FFN * (double)c->F);
    out->layer = out->linears + out->weights + out->attention + out->elementwise;
    out->embedding = t * 2.0 * C; /* the lookup and the (dropped) scatter of its gradient */
    /* final norm, the frozen head's forward and dx (no dW) */
    out->head = t * (4.0 * C * V + QC_NORM / 2.0 * C);
    /* the loss over V and the teacher records of the row */
    out->loss = t * (V * (full_records ? QC_LOSS_V_FULL : QC_LOSS_V) + QC_REC * (double)(full_records ? c->V : K));
}

void qat_layer_costs(const tfm_config *c, int64_t T, int64_t rows, int full_records, int64_t K, double *cost)
{
    qat_costs q;
    qat_cost_model(c, T, rows, full_records, K, &q);
    for (int64_t l = 0; l < c->L; l++) cost[l] = q.layer;
    cost[0] += q.embedding;
    cost[c->L - 1] += q.head + q.loss;
}
