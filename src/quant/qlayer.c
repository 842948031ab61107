/* qlayer.c - the quantized linear layer as data (qlayer.h): allocation, dequantization,
 * the container's code storage and the kernels' packed matrix. Not the quantizers
 * (quant.c, gptq.c, tesseraq.c). */
#include "qlayer.h"

#include <stdlib.h>
#include <string.h>

#include "f16.h"
#include "kq_format.h"
#include "upq_err.h"

int quant_format_valid(int bits, int group)
{
    int b = bits == 2 || bits == 3 || bits == 4 || bits == 8;
    int g = group == 0 || group == 32 || group == 64 || group == 128;
    return b && g;
}

int quant_layer_init(quant_layer *q, int bits, int group, int64_t N, int64_t K)
{
    memset(q, 0, sizeof *q);
    if (!quant_format_valid(bits, group) || N < 1 || K < 1)
        return UPQ_FAIL(UPQ_EINPUT, "unsupported quantization: bits %d group %d (bits 2/3/4/8, group 0/32/64/128)",
                        bits, group);
    q->bits = bits;
    q->group = group;
    q->bg = group ? group : QUANT_CHANNEL_BLOCK;
    q->N = N;
    q->K = K;
    q->nb = (K + q->bg - 1) / q->bg;
    q->codes = upq_calloc((size_t)(N * K), 1, "quantized codes");
    q->scales = upq_calloc((size_t)(N * q->nb), sizeof(uint16_t), "quantization scales");
    q->offsets = upq_calloc((size_t)(N * q->nb), sizeof(uint16_t), "quantization offsets");
    if (!q->codes || !q->scales || !q->offsets) {
        quant_layer_free(q);
        return UPQ_EIO;
    }
    return UPQ_OK;
}

void quant_layer_free(quant_layer *q)
{
    free(q->codes);
    free(q->scales);
    free(q->offsets);
    memset(q, 0, sizeof *q);
}

void quant_dequant(const quant_layer *q, float *W, int64_t ldw)
{
#pragma omp parallel for schedule(static) if (q->N * q->K >= (1 << 18))
    for (int64_t n = 0; n < q->N; n++) {
        for (int64_t k = 0; k < q->K; k++) {
            int64_t b = n * q->nb + k / q->bg;
            float s = kq_f16_to_f32(q->scales[b]), m = kq_f16_to_f32(q->offsets[b]);
            W[n * ldw + k] = s * (float)q->codes[n * q->K + k] + m;
        }
    }
}

int64_t quant_code_bytes_per_row(const quant_layer *q)
{
    int packed = q->bits == 2 || q->bits == 4;
    return q->nb * (packed ? (int64_t)q->bg * q->bits / 8 : q->bg);
}

/* Codes of block b of row n, zero-padded to bg. */
static void block_codes(const quant_layer *q, int64_t n, int64_t b, uint8_t *out)
{
    int64_t k0 = b * q->bg, len = q->K - k0 < q->bg ? q->K - k0 : q->bg;
    memset(out, 0, (size_t)q->bg);
    memcpy(out, q->codes + n * q->K + k0, (size_t)len);
}

void quant_codes_pack(const quant_layer *q, uint8_t *out)
{
    int64_t rb = quant_code_bytes_per_row(q);
    int packed = q->bits == 2 || q->bits == 4;
    kq_qmat km;
    if (packed) kq_qmat_init(&km, q->bits, q->group, 1, q->K, NULL);
    for (int64_t n = 0; n < q->N; n++) {
        for (int64_t b = 0; b < q->nb; b++) {
            uint8_t codes[QUANT_CHANNEL_BLOCK], blk[KQ_HDR_BYTES + QUANT_CHANNEL_BLOCK];
            block_codes(q, n, b, codes);
            if (!packed) {
                memcpy(out + n * rb + b * q->bg, codes, (size_t)q->bg);
                continue;
            }
            kq_block_pack(&km, blk, codes, 0, 0);
            memcpy(out + n * rb + b * km.qbytes, blk + KQ_HDR_BYTES, (size_t)km.qbytes);
        }
    }
}

void quant_codes_unpack(quant_layer *q, const uint8_t *in)
{
    int64_t rb = quant_code_bytes_per_row(q);
    int packed = q->bits == 2 || q->bits == 4;
    kq_qmat km;
    if (packed) kq_qmat_init(&km, q->bits, q->group, 1, q->K, NULL);
    for (int64_t n = 0; n < q->N; n++) {
        for (int64_t b = 0; b < q->nb; b++) {
            uint8_t codes[QUANT_CHANNEL_BLOCK], blk[KQ_HDR_BYTES + QUANT_CHANNEL_BLOCK];
            int64_t k0 = b * q->bg, len = q->K - k0 < q->bg ? q->K - k0 : q->bg;
            uint16_t s, m;
            if (packed) {
                memset(blk, 0, KQ_HDR_BYTES);
                memcpy(blk + KQ_HDR_BYTES, in + n * rb + b * km.qbytes, (size_t)km.qbytes);
                kq_block_unpack(&km, blk, codes, &s, &m);
            } else {
                memcpy(codes, in + n * rb + b * q->bg, (size_t)q->bg);
            }
            memcpy(q->codes + n * q->K + k0, codes, (size_t)len);
        }
    }
}

void quant_to_kq(const quant_layer *q, void *data)
{
    UPQ_ASSERT(q->bits == 2 || q->bits == 4);
    kq_qmat km;
    kq_qmat_init(&km, q->bits, q->group, q->N, q->K, data);
    for (int64_t n = 0; n < q->N; n++) {
        for (int64_t b = 0; b < q->nb; b++) {
            uint8_t codes[QUANT_CHANNEL_BLOCK];
            block_codes(q, n, b, codes);
            kq_block_pack(&km, kq_qmat_block(&km, n, b), codes, q->scales[n * q->nb + b],
                          q->offsets[n * q->nb + b]);
        }
    }
}
