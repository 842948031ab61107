/* export_gptq.h - writer of `upq export` (prefix exp_): a quantized container as a GPTQ
 * checkpoint (AutoGPTQ "gptq" = v1 layout, docs/export.md) into an existing folder.
 * And the fp16 HF format (exp_hf_write, over hf_model_write). The folder handling (temp folder,
 * rename, tokenizer files) is the driver's (src/stages/export.c). */
#ifndef UPQ_EXPORT_GPTQ_H
#define UPQ_EXPORT_GPTQ_H

#include <stdint.h>

#include "model.h"
#include "qlayer.h"

/* One linear in GPTQ form. pack = 32/bits codes per int32; G = ceil(K/group) groups
 * (1 for per-channel). Arrays are row-major as in the safetensors file. */
typedef struct {
    int64_t N, K, G;
    int bits, group_size;  /* group_size -1 = per output channel */
    int32_t *qweight;      /* (K/pack, N): code of (n, k) at bits*(k%pack) of [k/pack][n] */
    int32_t *qzeros;       /* (G, N/pack): z - 1 (v1) or z (v2) of (g, n) at bits*(n%pack) of [g][n/pack] */
    float *scales;         /* (G, N), exactly fp16 values */
    int32_t *g_idx;        /* (K): k / group (0 per channel) */
    int64_t n_inexact;     /* groups whose zero point -m/s is not an integer in [zmin, maxq] */
    double max_err, rms_err; /* requantization error vs s*q + m (0 when exact) */
} exp_gptq_layer;

/* Converts q (bits 2/4/8, N and K multiples of 32/bits) into g (allocated; exp_gptq_free).
 * v2 = 0: checkpoint_format "gptq" (v1: qzeros hold z - 1, so z = 0 cannot be stored: a v1
 * loader adds 1 back with a carry into the next field); v2 = 1: "gptq_v2" (qzeros hold z).
 * A group is exact when z = round(-m/s) is in [zmin, maxq] (zmin 1 for v1, 0 for v2)
 * and fp16(-s*z) == m (then
 * s*(q - z) is the container's w = s*q + m up to m's fp16 rounding). An inexact group is
 * UPQ_EINPUT naming `name`, row and group, unless requantize: then z is clamped to
 * [zmin, maxq], codes = clamp(round(w/s + z)) of the container's w, and the error is
 * recorded in g->max_err/rms_err. */
int exp_gptq_convert(const kq_qmat *q, const char *name, int v2, int requantize, exp_gptq_layer *g);
void exp_gptq_free(exp_gptq_layer *g);

/* Writes dir/config.json (with quantization_config) and dir/model.safetensors: every linear of
 * the container at `container` as qweight/qzeros/scales/g_idx (+ bias), the rest of m (read
 * by h5q_read) in fp16. Prints one line per requantized layer (max/RMS error) to stdout.
 * UPQ_EINPUT naming the layer when a linear is not quantized, the layers differ in bits or
 * group, or a group is inexact without requantize. */
int exp_gptq_write(const char *dir, const char *container, const tfm_model *m, int v2, int requantize);

/* The "hf" format: hf_model_write(dir, m, ST_F16, 1) (config.json + model.safetensors, every
 * tensor fp16) with "torch_dtype": "float16" in config.json. */
int exp_hf_write(const char *dir, const tfm_model *m);

#endif
