/* ggml_quant.h - the ggml block formats that `upq export --format gguf` writes (prefix gq_):
 * F32, F16, Q4_0, Q4_1 and Q2_K exactly as ggml defines them (ggml-common.h: block layout;
 * ggml-quants.c: dequantize_row_*), encoders of one row and the decoder. The encoders take
 * the row's weights and, where the source is a quantized grid w = s*q + m, that grid as a
 * hint per 16 weights, so an exactly representable grid is kept exactly (Q4_1 of a group
 * that is a multiple of 32) and Q2_K starts from our (s, m) instead of a blind fit.
 * Plain C, no I/O; docs/export.md "GGUF" says which type each linear gets. */
#ifndef UPQ_GGML_QUANT_H
#define UPQ_GGML_QUANT_H

#include <stddef.h>
#include <stdint.h>

/* ggml_type numbers (ggml.h), as written in a GGUF tensor info. */
enum { GQ_F32 = 0, GQ_F16 = 1, GQ_Q4_0 = 2, GQ_Q4_1 = 3, GQ_Q2_K = 10 };

/* Weights per block (1 for F32/F16) and bytes per block; 0 for a type not handled here. */
int gq_block_size(int type);
size_t gq_block_bytes(int type);
/* "F32", "F16", "Q4_0", "Q4_1", "Q2_K" ("?" otherwise). */
const char *gq_type_name(int type);
/* Bytes of one row of K weights (K a multiple of gq_block_size). */
size_t gq_row_bytes(int type, int64_t K);

/* Encodes K weights w (K a multiple of the block size) into out (gq_row_bytes bytes).
 * hs, hm: NULL, or per 16 weights the grid w = hs*q + hm the row came from (Q4_0 ignores
 * them; Q4_1 uses hs/hm of a block's first 16 weights when the block's two halves agree
 * and falls back to min-max otherwise; Q2_K uses them as its sub-block scale/min targets).
 * maxq: the grid's largest code (3 for INT2, 15 for INT4) or 0 when there is no grid. */
void gq_encode_row(int type, const float *w, const float *hs, const float *hm, int maxq, int64_t K, void *out);
/* Decodes one row as ggml's dequantize_row_* does (bit for bit: same operations). */
void gq_decode_row(int type, const void *in, float *y, int64_t K);

#endif
