/* kq_format.h - the one representation of a quantized linear (kq_qmat): block structs,
 * the matrix descriptor, bit-exact code packing, code/(s, m) accessors for the quantizers
 * and the plain-C quantize/dequantize references (the spec). Bits 2/4 are the fast
 * kernels' formats; bits 3/8 store one code per byte and are dequantized to FP32 by the
 * packed-model loader. Not here: the GEMM/GEMV kernels (kq_gemm.h, kq_gemv.h).
 * Layout: docs/packed-format.md. */
#ifndef UPQ_KQ_FORMAT_H
#define UPQ_KQ_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* One block = the codes of one output row over one group of input columns, with an
 * fp16 scale s and fp16 offset m: w = s*q + m. Code k of a block of B code bytes lives
 * in byte (k % B) at bit position bits*(k / B) ("planes": SIMD unpacks 32 consecutive
 * codes with one shift and one mask). Bits 3 and 8 take B = bg (one code per byte, in
 * the low bits), which is the same rule with k / B = 0. The last block of a row is
 * zero-padded (codes 0). */
typedef struct { uint16_t s, m; uint8_t qs[8]; } kq_block_q2_g32;   /* 32 codes x 2 bit */
typedef struct { uint16_t s, m; uint8_t qs[16]; } kq_block_q2_g64;
typedef struct { uint16_t s, m; uint8_t qs[32]; } kq_block_q2_g128;
typedef struct { uint16_t s, m; uint8_t qs[16]; } kq_block_q4_g32;  /* 32 codes x 4 bit */
typedef struct { uint16_t s, m; uint8_t qs[32]; } kq_block_q4_g64;
typedef struct { uint16_t s, m; uint8_t qs[64]; } kq_block_q4_g128;

_Static_assert(sizeof(kq_block_q2_g32) == 12, "q2_g32 block size");
_Static_assert(sizeof(kq_block_q2_g64) == 20, "q2_g64 block size");
_Static_assert(sizeof(kq_block_q2_g128) == 36, "q2_g128 block size");
_Static_assert(sizeof(kq_block_q4_g32) == 20, "q4_g32 block size");
_Static_assert(sizeof(kq_block_q4_g64) == 36, "q4_g64 block size");
_Static_assert(sizeof(kq_block_q4_g128) == 68, "q4_g128 block size");

enum { KQ_HDR_BYTES = 4,      /* s, m (fp16 each) at the start of every block */
       KQ_GROUP_CHANNEL = 0,  /* per-channel: one (s, m) per row, stored as 128-blocks */
       KQ_CHANNEL_BLOCK = 128 };

/* Quantizers of the reference: how (s, m) are chosen for a group. */
typedef enum {
    KQ_Q_MINMAX = 0,  /* asymmetric, free fp16 offset: m <= min, m + qmax*s >= max */
    KQ_Q_ZEROPOINT,   /* GPTQ/RTN: integer zero point z, m = -s*z (REFERENCE.md "RTN") */
    KQ_Q_STRETCH,     /* symmetric without a zero level: levels (q - qmax/2)*s */
} kq_qmode;

/* A packed (N, K) weight matrix, row-major blocks: row n is nb consecutive blocks.
 * Caller owns data (kq_qmat_bytes(...) bytes); the struct only describes it. */
typedef struct {
    int64_t N, K;       /* outputs (rows), inputs (columns) */
    int bits;           /* 2, 3, 4 or 8 (kernels: 2 or 4) */
    int group;          /* 32, 64, 128, or KQ_GROUP_CHANNEL */
    int grid;           /* how a quantizer chose the codes (0 asym, 1 seq: quant.h's
                           QUANT_GRID_*); kq_qmat_init sets 0, dequantization ignores it */
    int bg;             /* stored block size in codes (group, or 128 per channel) */
    int qbytes;         /* code bytes per block = bg*bits/8 (bits 2/4), bg (bits 3/8) */
    int block_bytes;    /* KQ_HDR_BYTES + qbytes */
    int64_t nb;         /* blocks per row = ceil(K / bg) */
    uint8_t *data;      /* (N, nb, block_bytes) */
    uint8_t *rp;        /* optional run-time repacked copy of data (kq_repack), NULL if none;
                           never stored, owned by whoever called kq_repack */
} kq_qmat;

/* Run-time repacked layout "rp16" for the GEMV (docs/packed-format.md, "Repacked copy"):
 * INT2 g64 and INT4 g128. Rows in groups of KQ_RP_ROWS = 16 (N padded with zero rows);
 * per group G and block b one unit of 16 * block_bytes bytes (INT2 g64: 320, INT4 g128:
 * 1088) at rp + (G*nb + b)*unit: B/4 64-byte vectors j (B = code bytes per block) whose
 * 32-bit lane r is row r's code bytes 4j..4j+3 (planes unchanged: byte i holds codes
 * i + B*p), then s of rows 0..15 (fp16, 32 bytes), then m of rows 0..15 (32 bytes). Same
 * bytes per weight as the stored layout. One masked vector is the u8 operand of
 * vpdpbusd for 16 rows against 4 broadcast activations. kq_repack_bytes is 0 for
 * formats without a repacked layout. */
enum { KQ_RP_ROWS = 16 };
size_t kq_repack_bytes(const kq_qmat *q);
/* Writes the repacked copy of q->data into dst (kq_repack_bytes bytes) and sets q->rp =
 * dst. Call again after q->data changes. No-op (rp stays NULL) for other formats. */
void kq_repack(kq_qmat *q, void *dst);

/* 1 when (bits, group) is a format of the fast kernels (bits 2/4, group 32/64/128/0). */
int kq_format_valid(int bits, int group);
/* 1 when a kq_qmat can hold (bits, group): bits 2/3/4/8, group 32/64/128/0. */
int kq_qmat_valid(int bits, int group);
size_t kq_qmat_bytes(int bits, int group, int64_t N, int64_t K);
/* Describes data (which must hold kq_qmat_bytes bytes); asserts kq_qmat_valid. */
void kq_qmat_init(kq_qmat *q, int bits, int group, int64_t N, int64_t K, void *data);

static inline uint8_t *kq_qmat_block(const kq_qmat *q, int64_t n, int64_t b)
{
    return q->data + ((size_t)n * (size_t)q->nb + (size_t)b) * (size_t)q->block_bytes;
}

/* Accessors for the quantizers, which edit codes and (s, m) in place. Code k of row n
 * (0 <= k < K); (s, m) of block b of row n (fp16 bits). Per-channel matrices repeat the
 * row's (s, m) in every block: the setters write one block, the caller writes them all. */
static inline int kq_code_get(const kq_qmat *q, int64_t n, int64_t k)
{
    int64_t i = k % q->bg;
    const uint8_t *qs = kq_qmat_block(q, n, k / q->bg) + KQ_HDR_BYTES;
    return (qs[i % q->qbytes] >> (q->bits * (int)(i / q->qbytes))) & ((1 << q->bits) - 1);
}

static inline void kq_code_set(const kq_qmat *q, int64_t n, int64_t k, int code)
{
    int64_t i = k % q->bg;
    uint8_t *qs = kq_qmat_block(q, n, k / q->bg) + KQ_HDR_BYTES;
    int sh = q->bits * (int)(i / q->qbytes), mask = ((1 << q->bits) - 1) << sh;
    qs[i % q->qbytes] = (uint8_t)((qs[i % q->qbytes] & ~mask) | ((code << sh) & mask));
}

static inline uint16_t kq_scale_get(const kq_qmat *q, int64_t n, int64_t b)
{
    uint16_t v;
    memcpy(&v, kq_qmat_block(q, n, b), 2);
    return v;
}

static inline uint16_t kq_offset_get(const kq_qmat *q, int64_t n, int64_t b)
{
    uint16_t v;
    memcpy(&v, kq_qmat_block(q, n, b) + 2, 2);
    return v;
}

static inline void kq_params_set(const kq_qmat *q, int64_t n, int64_t b, uint16_t s, uint16_t m)
{
    uint8_t *blk = kq_qmat_block(q, n, b);
    memcpy(blk, &s, 2);
    memcpy(blk + 2, &m, 2);
}

/* Row n's codes <-> codes[K] (one per byte); pack keeps (s, m) and the zero padding. */
void kq_row_unpack(const kq_qmat *q, int64_t n, uint8_t *restrict codes);
void kq_row_pack(const kq_qmat *q, int64_t n, const uint8_t *restrict codes);

/* Bit-exact packing of one block: codes[bg] (each < 2^bits) <-> block bytes. */
void kq_block_pack(const kq_qmat *q, uint8_t *restrict blk, const uint8_t *restrict codes,
                   uint16_t s, uint16_t m);
void kq_block_unpack(const kq_qmat *q, const uint8_t *restrict blk, uint8_t *restrict codes,
                     uint16_t *s, uint16_t *m);

/* Where quantization failed: kernels record no messages (they sit below the error
 * module); the caller names its tensor and these coordinates in its own message. */
typedef struct {
    int64_t row, col0, col1;  /* the group: row, columns [col0, col1] */
    float lo, hi;             /* its range (or the offending value in both) */
    int nonfinite;            /* 1: a NaN/Inf weight; 0: scale/offset beyond fp16 */
} kq_where;

/* W (N, K) row-major with row stride ldw -> q. Returns KQ_EINPUT (and fills *where
 * when non-NULL) on a non-finite weight or a scale/offset that does not fit fp16.
 * For KQ_Q_MINMAX the dequantization error is at most s/2 per weight. */
int kq_quantize_ref(kq_qmat *q, const float *W, int64_t ldw, kq_qmode mode, kq_where *where);
/* q -> W (N, K), w = s*q + m in fp32. */
void kq_dequantize_ref(const kq_qmat *q, float *W, int64_t ldw);
/* Dequantize columns [k0, k0+kc) of row n into out[kc]. */
void kq_dequant_row_ref(const kq_qmat *q, int64_t n, int64_t k0, int64_t kc, float *restrict out);

#endif
