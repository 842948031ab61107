/* ggml_quant.c - ggml's F32/F16/Q4_0/Q4_1/Q2_K blocks (layout of ggml-common.h): encoders of
 * one row from our weights and their grid, and the decoder (the operations of ggml-quants.c's
 * dequantize_row_*). Written from the block definitions, not copied from ggml. */
#include <math.h>
#include <string.h>

#include "f16.h"
#include "ggml_quant.h"

enum { QK4 = 32, QKK = 256 };
/* block_q4_0: fp16 d, 16 bytes of nibbles (element j low nibble of qs[j], j+16 high)
 * block_q4_1: fp16 d, fp16 m, the same 16 bytes
 * block_q2_K: 16 bytes scales (low nibble scale, high nibble min, one per 16 weights),
 *             64 bytes codes (weight e at bits 2*((e%128)/32) of qs[32*(e/128) + e%32]),
 *             fp16 d, fp16 dmin: w = d*sc*q - dmin*mn */
enum { Q4_0_BYTES = 2 + 16, Q4_1_BYTES = 4 + 16, Q2_K_BYTES = 16 + 64 + 4 };

int gq_block_size(int type)
{
    switch (type) {
    case GQ_F32: case GQ_F16: return 1;
    case GQ_Q4_0: case GQ_Q4_1: return QK4;
    case GQ_Q2_K: return QKK;
    default: return 0;
    }
}

size_t gq_block_bytes(int type)
{
    switch (type) {
    case GQ_F32: return 4;
    case GQ_F16: return 2;
    case GQ_Q4_0: return Q4_0_BYTES;
    case GQ_Q4_1: return Q4_1_BYTES;
    case GQ_Q2_K: return Q2_K_BYTES;
    default: return 0;
    }
}

const char *gq_type_name(int type)
{
    switch (type) {
    case GQ_F32: return "F32";
    case GQ_F16: return "F16";
    case GQ_Q4_0: return "Q4_0";
    case GQ_Q4_1: return "Q4_1";
    case GQ_Q2_K: return "Q2_K";
    default: return "?";
    }
}

size_t gq_row_bytes(int type, int64_t K)
{
    int bs = gq_block_size(type);
    return bs ? (size_t)(K / bs) * gq_block_bytes(type) : 0;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static float h2f(const uint8_t *p) { return kq_f16_to_f32(get16(p)); }

static void nibbles(uint8_t *qs, const int *q)
{
    for (int j = 0; j < 16; j++) qs[j] = (uint8_t)(q[j] | q[j + 16] << 4);
}

/* Q4_0: ggml's reference rule (d = the largest-magnitude weight / -8). */
static void enc_q4_0(const float *x, uint8_t *b)
{
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < QK4; j++)
        if (fabsf(x[j]) > amax) amax = fabsf(x[j]), max = x[j];
    float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
    int q[QK4];
    for (int j = 0; j < QK4; j++) {
        int v = (int)(x[j] * id + 8.5f);
        q[j] = v < 0 ? 0 : v > 15 ? 15 : v;
    }
    put16(b, kq_f32_to_f16(d));
    nibbles(b + 2, q);
}

/* Q4_1: the grid (s, m) itself when the block has one (then every code is ours and the block
 * is exact), else min-max over the block. */
static void enc_q4_1(const float *x, const float *hs, const float *hm, uint8_t *b)
{
    float d, m;
    if (hs && hs[0] == hs[1] && hm[0] == hm[1] && hs[0] > 0.0f) {
        d = hs[0], m = hm[0];
    } else {
        float lo = x[0], hi = x[0];
        for (int j = 1; j < QK4; j++) lo = x[j] < lo ? x[j] : lo, hi = x[j] > hi ? x[j] : hi;
        d = (hi - lo) / 15.0f, m = lo;
    }
    uint16_t d16 = kq_f32_to_f16(d), m16 = kq_f32_to_f16(m);
    float df = kq_f16_to_f32(d16), mf = kq_f16_to_f32(m16);
    int q[QK4];
    for (int j = 0; j < QK4; j++) {
        long v = df > 0.0f ? lrintf((x[j] - mf) / df) : 0;
        q[j] = v < 0 ? 0 : v > 15 ? 15 : (int)v;
    }
    put16(b, d16);
    put16(b + 2, m16);
    nibbles(b + 4, q);
}

/* Best codes of 16 weights for (dl, ml) (w ~ dl*q - ml, q in 0..3) and their squared error. */
static float q2_codes(const float *x, float dl, float ml, int *q)
{
    float e = 0.0f;
    for (int l = 0; l < 16; l++) {
        long v = dl > 0.0f ? lrintf((x[l] + ml) / dl) : 0;
        q[l] = v < 0 ? 0 : v > 3 ? 3 : (int)v;
        float y = dl * (float)q[l] - ml, r = y - x[l];
        e += r * r;
    }
    return e;
}

/* One sub-block for the super-block scales (d, dmin): the 4-bit (sc, mn) nearest the targets
 * (ts, tm), floor or ceil each, whichever codes give the least error. */
static float q2_sub(const float *x, float ts, float tm, float d, float dmin, int *sc, int *mn, int *q)
{
    float fs = d > 0.0f ? ts / d : 0.0f, fm = dmin > 0.0f ? tm / dmin : 0.0f, best = INFINITY;
    int s0 = (int)floorf(fs), m0 = (int)floorf(fm);
    for (int a = s0; a <= s0 + 1; a++)
        for (int c = m0; c <= m0 + 1; c++) {
            int sa = a < 0 ? 0 : a > 15 ? 15 : a, mc = c < 0 ? 0 : c > 15 ? 15 : c, qq[16];
            float e = q2_codes(x, d * (float)sa, dmin * (float)mc, qq);
            if (e < best) {
                best = e, *sc = sa, *mn = mc;
                memcpy(q, qq, sizeof qq);
            }
        }
    return best;
}

/* Q2_K: per 16 weights a target scale ts = s and min tm = max(0, -m) (from the grid, or
 * min-max of the 16 weights); the super-block's d and dmin are tried at max/t for
 * t in {15, 14, 13, 12} each and the pair with the least squared error is kept. */
static void enc_q2_k(const float *x, const float *hs, const float *hm, uint8_t *b)
{
    float ts[16], tm[16], maxs = 0.0f, maxm = 0.0f;
    for (int i = 0; i < 16; i++) {
        if (hs) {
            ts[i] = hs[i], tm[i] = -hm[i];
        } else {
            float lo = x[16 * i], hi = lo;
            for (int l = 1; l < 16; l++) lo = fminf(lo, x[16 * i + l]), hi = fmaxf(hi, x[16 * i + l]);
            ts[i] = (hi - fminf(lo, 0.0f)) / 3.0f, tm[i] = -lo;
        }
        tm[i] = tm[i] > 0.0f ? tm[i] : 0.0f;
        ts[i] = ts[i] > 0.0f ? ts[i] : 0.0f;
        maxs = fmaxf(maxs, ts[i]), maxm = fmaxf(maxm, tm[i]);
    }
    static const float T[4] = {15.0f, 14.0f, 13.0f, 12.0f};
    float best = INFINITY;
    uint16_t bd = 0, bm = 0;
    for (int a = 0; a < 4; a++)
        for (int c = 0; c < 4; c++) {
            uint16_t d16 = kq_f32_to_f16(maxs / T[a]), m16 = kq_f32_to_f16(maxm / T[c]);
            float d = kq_f16_to_f32(d16), dmin = kq_f16_to_f32(m16), e = 0.0f;
            for (int i = 0; i < 16 && e < best; i++) {
                int sc, mn, q[16];
                e += q2_sub(x + 16 * i, ts[i], tm[i], d, dmin, &sc, &mn, q);
            }
            if (e < best) best = e, bd = d16, bm = m16;
        }
    float d = kq_f16_to_f32(bd), dmin = kq_f16_to_f32(bm);
    memset(b, 0, Q2_K_BYTES);
    for (int i = 0; i < 16; i++) {
        int sc, mn, q[16];
        q2_sub(x + 16 * i, ts[i], tm[i], d, dmin, &sc, &mn, q);
        b[i] = (uint8_t)(sc | mn << 4);
        for (int l = 0; l < 16; l++) {
            int e = 16 * i + l;
            b[16 + 32 * (e / 128) + e % 32] |= (uint8_t)(q[l] << (2 * ((e % 128) / 32)));
        }
    }
    put16(b + 80, bd);
    put16(b + 82, bm);
}

void gq_encode_row(int type, const float *w, const float *hs, const float *hm, int maxq, int64_t K, void *out)
{
    uint8_t *o = out;
    (void)maxq;
    int bs = gq_block_size(type);
    size_t bb = gq_block_bytes(type);
    for (int64_t i = 0; i < K / bs; i++) {
        const float *x = w + i * bs;
        const float *s = hs ? hs + i * bs / 16 : NULL, *m = hm ? hm + i * bs / 16 : NULL;
        uint8_t *b = o + (size_t)i * bb;
        switch (type) {
        case GQ_F32: memcpy(b, x, 4); break;
        case GQ_F16: put16(b, kq_f32_to_f16(*x)); break;
        case GQ_Q4_0: enc_q4_0(x, b); break;
        case GQ_Q4_1: enc_q4_1(x, s, m, b); break;
        case GQ_Q2_K: enc_q2_k(x, s, m, b); break;
        default: break;
        }
    }
}

void gq_decode_row(int type, const void *in, float *y, int64_t K)
{
    const uint8_t *p = in;
    switch (type) {
    case GQ_F32: memcpy(y, p, (size_t)K * 4); return;
    case GQ_F16:
        for (int64_t k = 0; k < K; k++) y[k] = h2f(p + 2 * k);
        return;
    case GQ_Q4_0:
    case GQ_Q4_1:
        for (int64_t i = 0; i < K / QK4; i++, y += QK4) {
            const uint8_t *b = p + (size_t)i * gq_block_bytes(type);
            float d = h2f(b);
            if (type == GQ_Q4_0) {
                for (int j = 0; j < 16; j++) {
                    y[j] = (float)((b[2 + j] & 15) - 8) * d;
                    y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
                }
            } else {
                float m = h2f(b + 2);
                for (int j = 0; j < 16; j++) {
                    y[j] = (float)(b[4 + j] & 15) * d + m;
                    y[j + 16] = (float)(b[4 + j] >> 4) * d + m;
                }
            }
        }
        return;
    case GQ_Q2_K:
        for (int64_t i = 0; i < K / QKK; i++) {
            const uint8_t *b = p + (size_t)i * Q2_K_BYTES;
            float d = h2f(b + 80), dmin = h2f(b + 82);
            for (int e = 0; e < QKK; e++) {
                int sc = b[e / 16];
                float dl = d * (float)(sc & 15), ml = dmin * (float)(sc >> 4);
                int q = (b[16 + 32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
                y[e] = dl * (float)q - ml;
            }
            y += QKK;
        }
        return;
    default: return;
    }
}
