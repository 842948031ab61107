/* kq_format.c - packed formats (bits 2/3/4/8): descriptor, bit-exact block packing and the
 * plain-C quantize/dequantize references. Scalar on purpose: this is the specification
 * the SIMD kernels are tested against, and it runs once per matrix. */
#include "kq_format.h"

#include <math.h>
#include <string.h>

#include "f16.h"
#include "kq_err.h"

int kq_format_valid(int bits, int group)
{
    return (bits == 2 || bits == 4) &&
           (group == 32 || group == 64 || group == 128 || group == KQ_GROUP_CHANNEL);
}

int kq_qmat_valid(int bits, int group)
{
    return (bits == 2 || bits == 3 || bits == 4 || bits == 8) &&
           (group == 32 || group == 64 || group == 128 || group == KQ_GROUP_CHANNEL);
}

static int kq_bg(int group) { return group == KQ_GROUP_CHANNEL ? KQ_CHANNEL_BLOCK : group; }

/* Bits 3 (and 8) keep one code per byte: planes of 3 bits would straddle bytes. */
static int kq_qbytes(int bits, int bg) { return bits == 2 || bits == 4 ? bg * bits / 8 : bg; }

size_t kq_qmat_bytes(int bits, int group, int64_t N, int64_t K)
{
    int bg = kq_bg(group);
    int64_t nb = (K + bg - 1) / bg;
    return (size_t)N * (size_t)nb * (size_t)(KQ_HDR_BYTES + kq_qbytes(bits, bg));
}

void kq_qmat_init(kq_qmat *q, int bits, int group, int64_t N, int64_t K, void *data)
{
    KQ_ASSERT(kq_qmat_valid(bits, group) && N >= 0 && K >= 0);
    q->N = N;
    q->K = K;
    q->bits = bits;
    q->group = group;
    q->grid = 0;
    q->bg = kq_bg(group);
    q->qbytes = kq_qbytes(bits, q->bg);
    q->block_bytes = KQ_HDR_BYTES + q->qbytes;
    q->nb = (K + q->bg - 1) / q->bg;
    q->data = data;
    q->rp = NULL;
}

void kq_block_pack(const kq_qmat *q, uint8_t *restrict blk, const uint8_t *restrict codes,
                   uint16_t s, uint16_t m)
{
    const int B = q->qbytes, bits = q->bits;
    memcpy(blk, &s, 2);
    memcpy(blk + 2, &m, 2);
    uint8_t *qs = blk + KQ_HDR_BYTES;
    memset(qs, 0, (size_t)B);
    for (int k = 0; k < q->bg; k++) {
        KQ_ASSERT(codes[k] < (1u << bits));
        qs[k % B] |= (uint8_t)(codes[k] << (bits * (k / B)));
    }
}

void kq_block_unpack(const kq_qmat *q, const uint8_t *restrict blk, uint8_t *restrict codes,
                     uint16_t *s, uint16_t *m)
{
    const int B = q->qbytes, bits = q->bits, qmax = (1 << bits) - 1;
    memcpy(s, blk, 2);
    memcpy(m, blk + 2, 2);
    const uint8_t *qs = blk + KQ_HDR_BYTES;
    for (int k = 0; k < q->bg; k++) codes[k] = (uint8_t)((qs[k % B] >> (bits * (k / B))) & qmax);
}

void kq_row_unpack(const kq_qmat *q, int64_t n, uint8_t *restrict codes)
{
    uint8_t blk[KQ_CHANNEL_BLOCK];
    uint16_t s, m;
    for (int64_t b = 0; b < q->nb; b++) {
        int64_t k0 = b * q->bg, len = q->K - k0 < q->bg ? q->K - k0 : q->bg;
        kq_block_unpack(q, kq_qmat_block(q, n, b), blk, &s, &m);
        memcpy(codes + k0, blk, (size_t)len);
    }
}

void kq_row_pack(const kq_qmat *q, int64_t n, const uint8_t *restrict codes)
{
    uint8_t blk[KQ_CHANNEL_BLOCK];
    for (int64_t b = 0; b < q->nb; b++) {
        int64_t k0 = b * q->bg, len = q->K - k0 < q->bg ? q->K - k0 : q->bg;
        memset(blk, 0, sizeof blk);
        memcpy(blk, codes + k0, (size_t)len);
        uint8_t *p = kq_qmat_block(q, n, b);
        kq_block_pack(q, p, blk, kq_scale_get(q, n, b), kq_offset_get(q, n, b));
    }
}

/* Neighbouring fp16 values (sign-magnitude encoding). */
static uint16_t f16_next_up(uint16_t h)
{
    if (h == 0x8000 || h == 0) return 1;
    return (h & 0x8000) ? (uint16_t)(h - 1) : (uint16_t)(h + 1);
}

static uint16_t f16_next_down(uint16_t h)
{
    if (h == 0 || h == 0x8000) return 0x8001;
    return (h & 0x8000) ? (uint16_t)(h + 1) : (uint16_t)(h - 1);
}

static uint16_t f16_round_down(float x)
{
    uint16_t h = kq_f32_to_f16(x);
    return kq_f16_to_f32(h) > x ? f16_next_down(h) : h;
}

static uint16_t f16_round_up(float x)
{
    uint16_t h = kq_f32_to_f16(x);
    return kq_f16_to_f32(h) < x ? f16_next_up(h) : h;
}

/* (s, m) for one group of n weights, by mode. Fails when they do not fit fp16. */
static int kq_group_params(const float *w, int n, int qmax, kq_qmode mode, uint16_t *s16,
                           uint16_t *m16, kq_where *where)
{
    float lo = w[0], hi = w[0], amax = 0.0f;
    for (int i = 0; i < n; i++) {
        if (!isfinite(w[i])) {
            where->col0 = where->col1 = where->col0 + i;
            where->lo = where->hi = w[i];
            where->nonfinite = 1;
            return KQ_EINPUT;
        }
        lo = fminf(lo, w[i]);
        hi = fmaxf(hi, w[i]);
        amax = fmaxf(amax, fabsf(w[i]));
    }
    if (mode == KQ_Q_MINMAX) {
        *m16 = f16_round_down(lo);
        float m = kq_f16_to_f32(*m16);
        *s16 = f16_round_up((hi - m) / (float)qmax);
        while (isfinite(kq_f16_to_f32(*s16)) && m + (float)qmax * kq_f16_to_f32(*s16) < hi)
            *s16 = f16_next_up(*s16);
    } else if (mode == KQ_Q_ZEROPOINT) {
        float scale = fmaxf(hi - lo, 1e-5f) / (float)qmax;
        *s16 = kq_f32_to_f16(scale);
        float z = fminf(fmaxf(-rintf(lo / kq_f16_to_f32(*s16)), 0.0f), (float)qmax);
        *m16 = kq_f32_to_f16(-kq_f16_to_f32(*s16) * z);
    } else {
        *s16 = f16_round_up(amax / (0.5f * (float)qmax));
        *m16 = kq_f32_to_f16(-0.5f * (float)qmax * kq_f16_to_f32(*s16));
    }
    if (!isfinite(kq_f16_to_f32(*s16)) || !isfinite(kq_f16_to_f32(*m16))) {
        where->lo = lo;
        where->hi = hi;
        return KQ_EINPUT;
    }
    return 0;
}

int kq_quantize_ref(kq_qmat *q, const float *W, int64_t ldw, kq_qmode mode, kq_where *where)
{
    const int qmax = (1 << q->bits) - 1, bg = q->bg;
    uint8_t codes[KQ_CHANNEL_BLOCK];
    kq_where scratch;
    if (!where) where = &scratch;
    for (int64_t n = 0; n < q->N; n++) {
        const float *wr = W + n * ldw;
        uint16_t s16 = 0, m16 = 0;
        *where = (kq_where){.row = n, .col0 = 0, .col1 = q->K - 1};
        if (q->group == KQ_GROUP_CHANNEL && q->K > 0)
            KQ_TRY(kq_group_params(wr, (int)q->K, qmax, mode, &s16, &m16, where));
        for (int64_t b = 0; b < q->nb; b++) {
            int64_t k0 = b * bg;
            int len = (int)(q->K - k0 < bg ? q->K - k0 : bg);
            *where = (kq_where){.row = n, .col0 = k0, .col1 = k0 + len - 1};
            if (q->group != KQ_GROUP_CHANNEL)
                KQ_TRY(kq_group_params(wr + k0, len, qmax, mode, &s16, &m16, where));
            float s = kq_f16_to_f32(s16), m = kq_f16_to_f32(m16);
            for (int i = 0; i < bg; i++) {
                float c = (i < len && s > 0.0f) ? rintf((wr[k0 + i] - m) / s) : 0.0f;
                codes[i] = (uint8_t)fminf(fmaxf(c, 0.0f), (float)qmax);
            }
            kq_block_pack(q, kq_qmat_block(q, n, b), codes, s16, m16);
        }
    }
    return 0;
}

void kq_dequant_row_ref(const kq_qmat *q, int64_t n, int64_t k0, int64_t kc, float *restrict out)
{
    uint8_t codes[KQ_CHANNEL_BLOCK];
    uint16_t s16, m16;
    int64_t k = k0;
    while (k < k0 + kc) {
        int64_t b = k / q->bg, kb = b * q->bg;
        kq_block_unpack(q, kq_qmat_block(q, n, b), codes, &s16, &m16);
        float s = kq_f16_to_f32(s16), m = kq_f16_to_f32(m16);
        int64_t end = kb + q->bg < k0 + kc ? kb + q->bg : k0 + kc;
        for (; k < end; k++) out[k - k0] = s * (float)codes[k - kb] + m;
    }
}

void kq_dequantize_ref(const kq_qmat *q, float *W, int64_t ldw)
{
    for (int64_t n = 0; n < q->N; n++) kq_dequant_row_ref(q, n, 0, q->K, W + n * ldw);
}

size_t kq_repack_bytes(const kq_qmat *q)
{
    if (!((q->bits == 2 && q->group == 64) || (q->bits == 4 && q->group == 128))) return 0;
    return (size_t)((q->N + KQ_RP_ROWS - 1) / KQ_RP_ROWS) * (size_t)q->nb * KQ_RP_ROWS *
           (size_t)q->block_bytes;
}

void kq_repack(kq_qmat *q, void *dst)
{
    const size_t bytes = kq_repack_bytes(q);
    if (!bytes) return;
    uint8_t *rp = dst;
    const int64_t nb = q->nb, B = q->qbytes, unit = KQ_RP_ROWS * q->block_bytes;
    memset(rp, 0, bytes);
    for (int64_t n = 0; n < q->N; n++)
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk = kq_qmat_block(q, n, b);
            const int64_t r = n % KQ_RP_ROWS;
            uint8_t *u = rp + (size_t)((n / KQ_RP_ROWS) * nb + b) * (size_t)unit;
            for (int64_t j = 0; j < B / 4; j++) memcpy(u + 64 * j + 4 * r, blk + KQ_HDR_BYTES + 4 * j, 4);
            memcpy(u + 16 * B + 2 * r, blk, 2);
            memcpy(u + 16 * B + 32 + 2 * r, blk + 2, 2);
        }
    q->rp = rp;
}
