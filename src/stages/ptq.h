/* ptq.h - block-wise post-training quantization on one rank (prefix ptq_): calibration
 * windows from a token shard or raw text, then block by block (inputs from the already
 * quantized blocks, or from the FP model), quantize the 7 linear layers with rtn or gptq,
 * measure the block's reconstruction error against the FP block, commit the block to a
 * part file (resume starts at the first block without one), and finally write the
 * quantized container (io/h5qmodel.h) with a per-block error table, CSV and SVG.
 * Not the kernels, not the distributed path (MPI issue). */
#ifndef UPQ_PTQ_H
#define UPQ_PTQ_H

#include <stdint.h>

#include "tesseraq.h"

enum { PTQ_RTN = 0, PTQ_GPTQ = 1, PTQ_TESSERAQ = 2 };
enum { PTQ_INPUT_QUANT = 0, PTQ_INPUT_FP = 1 };

typedef struct {
    const char *model;       /* HF folder or upq container */
    const char *calib;       /* FILE.h5[:DATASET] (default /tokens) or a text file */
    const char *tokenizer;   /* folder with tokenizer.json for text (default: model) */
    const char *out;         /* MODEL.h5 */
    const char *csv;         /* per-block table (default: OUT with .csv) */
    int bits, group, method, clip, act_order, input_mode, progress;
    int64_t calib_samples, seq_len;
    uint64_t seed;
    double damp;             /* GPTQ damping, fraction of mean diag(H) */
    int64_t gptq_block;      /* GPTQ lazy block (columns) */
    int tsq_init_gptq;       /* tesseraq: start from gptq (1, default) or rtn (0) */
    int grid;                /* QUANT_GRID_ASYM (default) or QUANT_GRID_SEQ (--grid seq) */
    tsq_opts tsq;            /* tesseraq schedule */
    int argc;                /* for the provenance command line */
    char *const *argv;
    int distributed;         /* 1: every MPI rank calls ptq_run together (block-parallel, ptq_mpi.c);
                              * 0: this rank runs it alone (upq run and mpirun upq ptq set 1) */
    int ranks_per_block;     /* MPI: --ranks-per-block R (0: one rank per block group) */
    int64_t scalapack_min_dim; /* MPI block groups: GPTQ's inverse through ScaLAPACK on the
                              * group's ranks for layers with K >= this (LAPACK below) */
    const char *scratch;     /* --scratch DIR: calibration activations in a per-rank HDF5 scratch
                              * file there (io/h5scratch.h) instead of RAM; NULL: in RAM */
} ptq_opts;

/* Fills the defaults (bits 4, group 128, rtn, 128 samples of 512 tokens, seed 0, damp
 * 0.01, block 128, quantized inputs, progress on). */
void ptq_opts_default(ptq_opts *o);

/* Calibration: `samples` windows of T tokens. From an HDF5 token stream: windows at
 * seeded random offsets. From text: seeded random byte offsets, each at the next line
 * start, tokenized (no special tokens) until T tokens. ids (samples*T) malloc'ed. */
int ptq_calib_load(const ptq_opts *o, int32_t **ids, char sha256_hex[65]);

/* The whole run. UPQ_EINPUT/UPQ_EIO/UPQ_EUSAGE with a message; the container is only
 * written when every block is done. */
int ptq_run(const ptq_opts *o);

/* Per-block error table as CSV, and an SVG plot of it (log scale), for L blocks. */
int ptq_report_write(const char *csv_path, const char *svg_path, const char *method, const double *err_init,
                     const double *err_final, int64_t L);

#endif
