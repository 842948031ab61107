/* qlayer.h - allocation and dequantization of the quantized linear layer, which is a
 * kq_qmat (kernels/kq_format.h: packed codes and fp16 (s, m) per (row, block),
 * w = s*q + m). What the quantizers (quant.h, gptq.h, tesseraq.h) produce and edit through
 * kq_format.h's accessors, what io/h5qmodel stores (docs/container.md) and what the
 * kernels consume (bits 2/4). No quantizer math here: io/ includes this header, never
 * quant.h. */
#ifndef UPQ_QLAYER_H
#define UPQ_QLAYER_H

#include <stddef.h>
#include <stdint.h>

#include "kq_format.h"

enum { QUANT_GRID_ASYM = 0, QUANT_GRID_SEQ = 1 };

/* 1 when bits is 2/3/4/8 and group is 0/32/64/128 (kq_qmat_valid). */
int quant_format_valid(int bits, int group);
/* Allocates a zeroed (N, K) matrix (codes 0, s = m = 0, grid ASYM) owning its data;
 * UPQ_EINPUT for an invalid format, UPQ_EIO out of memory. */
int quant_qmat_init(kq_qmat *q, int bits, int group, int64_t N, int64_t K);
/* Frees what quant_qmat_init allocated (also safe on a zeroed struct). */
void quant_qmat_free(kq_qmat *q);
/* Bytes of q's data (kq_qmat_bytes). */
size_t quant_qmat_bytes(const kq_qmat *q);

/* W (N, K) = s*q + m in fp32 (kq_dequant_row_ref, rows in parallel). */
void quant_dequant(const kq_qmat *q, float *W, int64_t ldw);

#endif
