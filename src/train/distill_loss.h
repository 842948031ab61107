/* distill_loss.h - distillation losses (forward/reverse KL, generalized JSD, CAKLD) and
 * next-token cross-entropy: value and gradient w.r.t. student logits from one teacher
 * record per position (full, top-K or sampled ids). Pure math: no MPI, HDF5 or globals.
 * Conventions (beta limits, temperature, estimators): docs/distill-loss.md. */
#ifndef UPQ_DISTILL_LOSS_H
#define UPQ_DISTILL_LOSS_H

#include <stdint.h>

typedef enum { DL_CE = 0, DL_FKL, DL_RKL, DL_JSD, DL_CAKLD } dl_kind;
typedef enum { DL_FULL = 0, DL_TOPK, DL_SAMPLE } dl_mode;

typedef struct {
    dl_kind kind;
    double beta;        /* DL_JSD: mixture weight of the teacher, [0, 1]; 0 = FKL, 1 = RKL */
    double gamma;       /* DL_CAKLD: weight of FKL, [0, 1] (dl_top1_accum gives it) */
    double temperature; /* > 0: student logits are divided by it; the teacher records are
                           already at this temperature (upq teacher --temperature). Not CE. */
    int scale_t2;       /* 1: distillation losses times T^2 (Hinton), so gradients keep
                           their size across T; 0: no factor */
    int sample_bucket;  /* sample records: 0 = unbiased importance-sampling estimator;
                           1 = drawn ids plus one tail bucket, as top-K (biased, low
                           variance); docs/distill-loss.md measures both */
} dl_config;

/* One position's teacher record: what a teacher shard stores, widened to float (the
 * shard holds fp16/bf16; the reader converts). Only the fields of `mode` are read. */
typedef struct {
    dl_mode mode;
    const float *logp;     /* full: (V) log-probabilities; renormalized here, so raw
                              logits work too; must be finite */
    const int32_t *ids;    /* topk: (k) ids of the k largest logits; sample: (k) unique drawn ids */
    const float *logits;   /* topk, sample: (k) teacher logits at ids */
    const int32_t *counts; /* sample: (k) draws of each id, sum n */
    int32_t k;             /* topk: K; sample: number of unique ids */
    int32_t n;             /* sample: draws N (with replacement) */
    float lse;             /* topk, sample: log-sum-exp of all V teacher logits */
    float log_tail;        /* topk: log of the teacher mass outside the K ids, summed by the
                              teacher in double (exact to fp32 relative precision); >= 0
                              (0 = unset: a tail of mass 1 is impossible) means derive
                              1 - sum exp(logit - lse), absolute error ~1e-7 (fp32 lse) */
    float target_logit;    /* topk: teacher logit of the data's next token (not used here) */
} dl_record;

/* Checks the config (ranges of beta, gamma, temperature); UPQ_EUSAGE with a message. */
int dl_config_check(const dl_config *cfg);
/* Checks one record against vocabulary V (ids in range and unique, k, counts summing to
 * n, finite values); UPQ_EINPUT naming `what` (e.g. "shard.h5 row 3 pos 17"). */
int dl_record_check(const dl_record *r, int64_t V, const char *what);

/* logits (N,V) student logits; recs (N); targets (N): the data's next token, < 0 where
 * the position is masked (tfm_next_token_targets). Masked positions read neither their
 * logits nor their record, get loss 0 and gradient 0.
 * Writes dlogits (N,V) = dscale * d loss_i / d logits_i (always: value-only callers pass
 * scratch and dscale 0; must not alias logits), and losses (N) if not NULL.
 * Returns the sum of the per-position losses (double); *count (if not NULL) the counted
 * positions. */
double dl_loss_forward_backward(float *dlogits, float *losses, const dl_config *cfg,
                                const float *logits, const dl_record *recs,
                                const int32_t *targets, int64_t N, int64_t V, double dscale,
                                int64_t *count);

/* The mean over counted positions (0 when none), gradient of the mean into dlogits. */
double dl_loss_mean(float *dlogits, const dl_config *cfg, const float *logits,
                    const dl_record *recs, const int32_t *targets, int64_t N, int64_t V,
                    int64_t *count);

/* CAKLD's gamma: adds the teacher's top-1 probability of every counted position to *sum
 * and the positions to *count (gamma = sum / count over the whole data, any number of
 * calls). sample: the largest probability among the drawn ids (see docs). */
void dl_top1_accum(double *sum, int64_t *count, const dl_record *recs,
                   const int32_t *targets, int64_t N, int64_t V);

/* Record builders from full teacher logits (V), the reference for the teacher stage.
 * topk: ids/logits (K) of the K largest logits, largest first (ties: lower id first),
 * *log_tail the log of the mass outside them (-inf when K = V); returns the log-sum-exp. */
float dl_topk_build(int32_t *ids, float *top_logits, float *log_tail, const float *logits,
                    int64_t V, int32_t K);
/* sample: n draws with replacement from softmax(logits) using rng (upq_rng state),
 * as unique ids in increasing order with counts and logits; writes *k (<= n) and
 * returns the log-sum-exp. ids, counts, out_logits need room for n entries. */
float dl_sample_build(int32_t *ids, int32_t *counts, float *out_logits, int32_t *k,
                      const float *logits, int64_t V, int32_t n, uint64_t rng[4]);
/* The same from n uniform draws in [0, 1) already taken (in the order the rng gives them),
 * so that positions can be built in parallel with the draws of a sequential rng. */
float dl_sample_build_u(int32_t *ids, int32_t *counts, float *out_logits, int32_t *k,
                        const float *logits, int64_t V, int32_t n, const double *draws);
/* The log-sum-exp of logits (V) by the builders' one float-exp pass (within ~1e-7);
 * scratch: V floats. */
double dl_logsumexp(const float *logits, int64_t V, float *scratch);
/* The same with libm's double exp summed in order (what the losses use): the exactness
 * reference. */
double dl_logsumexp_exact(const float *logits, int64_t V);

#endif
