/* qlayer.h - the quantized linear layer as data (quant_layer): codes one per byte, fp16
 * (s, m) per (row, block), w = s*q + m; what the quantizers (quant.h, gptq.h,
 * tesseraq.h) produce and io/h5qmodel stores. Its packed form for the kernels is
 * kq_qmat (kernels/kq_format.h), made by quant_to_kq; the container stores bits 2/4 in
 * the same block layout (docs/container.md). No quantizer math here: io/ includes this
 * header, never quant.h. */
#ifndef UPQ_QLAYER_H
#define UPQ_QLAYER_H

#include <stddef.h>
#include <stdint.h>

#include "kq_format.h"

/* per-channel (group 0) is stored as 128-blocks, as in the kernels' format */
enum { QUANT_CHANNEL_BLOCK = KQ_CHANNEL_BLOCK };
enum { QUANT_GRID_ASYM = 0, QUANT_GRID_SEQ = 1 };

/* A quantized (N, K) weight: one code per byte in memory, (s, m) per (row, block).
 * Per-channel layers repeat the row's (s, m) in every block, as kq_qmat does. */
typedef struct {
    int bits;            /* 2, 3, 4 or 8 */
    int grid;            /* QUANT_GRID_ASYM (quant_layer_init's) or QUANT_GRID_SEQ */
    int group;           /* 32, 64, 128, or 0 = per output channel */
    int bg;              /* codes per stored block: group, or 128 when group = 0 */
    int64_t N, K;        /* rows (outputs), columns (inputs) */
    int64_t nb;          /* blocks per row = ceil(K / bg) */
    uint8_t *codes;      /* (N, K) */
    uint16_t *scales;    /* (N, nb) fp16 s */
    uint16_t *offsets;   /* (N, nb) fp16 m */
} quant_layer;

/* 1 when bits is 2/3/4/8 and group is 0/32/64/128. */
int quant_format_valid(int bits, int group);
/* Allocates a zeroed layer; UPQ_EINPUT for an invalid format, UPQ_EIO out of memory. */
int quant_layer_init(quant_layer *q, int bits, int group, int64_t N, int64_t K);
void quant_layer_free(quant_layer *q);

/* W (N, K) = s*q + m in fp32. */
void quant_dequant(const quant_layer *q, float *W, int64_t ldw);
/* Storage of the codes (docs/container.md): bits 2 and 4 are the kernels' block layout
 * ("planes", kq_block_pack) without the (s, m) header, (N, nb*bg*bits/8) bytes; bits 3
 * and 8 are one code per byte, (N, nb*bg), tails padded with code 0. */
int64_t quant_code_bytes_per_row(const quant_layer *q);
void quant_codes_pack(const quant_layer *q, uint8_t *out);
void quant_codes_unpack(quant_layer *q, const uint8_t *in);
/* The kernels' packed matrix (bits 2/4 only): data holds kq_qmat_bytes(...) bytes. */
void quant_to_kq(const quant_layer *q, void *data);

#endif
