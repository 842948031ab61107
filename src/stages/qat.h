/* qat.h - `upq qat`: distillation QAT of a fake-quantized student against the teacher
 * records of `upq teacher`, on S pipeline stages x R replicas (MPI ranks = S x R; one rank:
 * S = R = 1). Loop, pipeline, checkpoint and output: docs/qat.md. */
#ifndef UPQ_QAT_H
#define UPQ_QAT_H

#include <stdint.h>

typedef struct {
    const char *init;        /* student init: .h5 container (dequantized) or HF folder */
    const char *teacher_dir; /* upq teacher output */
    const char *data_dir;    /* the token shards it was made from */
    const char *out;         /* packed INT2 container; OUT.ckpt.h5 and OUT.loss.csv beside */
    int bits;                /* 2 */
    int64_t group;           /* 0 = per channel */
    int quantizer;           /* fq_kind */
    int loss;                /* dl_kind */
    double beta;             /* JSD's beta, [0, 1] */
    int64_t steps, batch, micro_batches, ckpt_every, warmup;
    int64_t stages, replicas; /* pipeline stages S and replicas R: ranks = S x R */
    int recompute;           /* 1: keep only each layer's input residual, re-run its forward in the backward */
    double lr, scale_lr, min_lr_frac, clip;
    uint64_t seed;
    int progress;            /* 1: progress lines on stderr */
    int argc;                /* the command line, for the provenance */
    char *const *argv;
} qat_opts;

typedef struct {
    int64_t steps_done, resumed_from;
    double first_loss, last_loss, seconds, tokens_per_s;
} qat_result;

/* Runs (or resumes from OUT.ckpt.h5) the training and writes the output. UPQ_EINPUT
 * (exit 2) naming the file for bad data/teacher/init, UPQ_EUSAGE for bad options,
 * UPQ_EPREEMPT (75) after checkpointing on SIGTERM/SIGUSR1. */
int qat_run(const qat_opts *o, qat_result *r);

#endif
