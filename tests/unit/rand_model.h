/* rand_model.h - small random models for B's forward/backward tests: a config with
 * GQA, q/k/v biases and optionally llama3 RoPE and tied embeddings, filled from a
 * fixed-seed generator. Test helper only (not a test itself). */
#ifndef UPQ_TEST_RAND_MODEL_H
#define UPQ_TEST_RAND_MODEL_H

#include <stdint.h>
#include <string.h>

#include "model.h"

static uint64_t rm_state = 0x9E3779B97F4A7C15ull;

/* Uniform in [-1, 1). xorshift64*: reproducible across platforms. */
static inline float rm_uniform(void)
{
    rm_state ^= rm_state >> 12;
    rm_state ^= rm_state << 25;
    rm_state ^= rm_state >> 27;
    uint64_t r = rm_state * 2685821657736338717ull;
    return (float)((double)(r >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static inline void rm_fill(float *p, int64_t n, float scale, float offset)
{
    for (int64_t i = 0; i < n; i++) p[i] = offset + scale * rm_uniform();
}

static inline tfm_config rm_config(int tied, int llama3)
{
    tfm_config c;
    memset(&c, 0, sizeof c);
    c.V = 37; c.C = 24; c.F = 40; c.L = 2; c.H = 4; c.KV = 2; c.D = 6; c.max_T = 64;
    c.rope_theta = 10000.0;
    c.norm_eps = 1e-5;
    c.qkv_bias = 1;
    c.tie_embeddings = tied;
    if (llama3) {
        /* Frequencies that straddle the low/medium/high bands with this small D and ctx. */
        c.rope_type = TFM_ROPE_LLAMA3;
        c.rope_theta = 500000.0;
        c.rope_factor = 8.0;
        c.rope_low_freq = 1.0;
        c.rope_high_freq = 4.0;
        c.rope_orig_max_T = 1000; /* D=6: wavelengths 6.3 (high), 499 (medium), 39500 (low) */
    }
    c.bos_id = c.eos_id = c.pad_id = -1;
    return c;
}

static inline int rm_init_param(void *ctx, const char *name, float *data, int ndim,
                         const int64_t shape[2])
{
    (void)ctx;
    int64_t n = ndim == 2 ? shape[0] * shape[1] : shape[0];
    if (strstr(name, "norm")) rm_fill(data, n, 0.3f, 1.0f);
    else rm_fill(data, n, ndim == 2 ? 0.5f : 0.2f, 0.0f);
    return 0;
}

static inline void rm_model_init(tfm_model *m) { tfm_params_foreach(m, rm_init_param, NULL); }

#endif
