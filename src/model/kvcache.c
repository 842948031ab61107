/* kvcache.c - the KV-cached incremental forward (kvcache.h): per layer RMSNorm,
 * q/k/v projections over all new rows (BLIS), RoPE at each row's own position
 * (rope.c), attention of each new row over its slot's cached keys (plain loops: one
 * query row per (row, head)), o_proj, SwiGLU MLP; then the final norm and LM head.
 * The block is block.c's block_forward with this file's attention plug (only the
 * attention over the cache differs from the batched forward); not training. */
#include "kvcache.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "block.h"
#include "layers.h"
#include "upq_err.h"

typedef struct {
    float **ptr;
    int64_t n;
} kv_slot;

int tfm_kv_init(tfm_kv *kv, const tfm_config *c, int64_t Bmax, int64_t Tmax, int64_t Rmax)
{
    memset(kv, 0, sizeof *kv);
    if (Bmax <= 0 || Tmax <= 0 || Rmax <= 0)
        return UPQ_FAIL(UPQ_EINPUT, "kv cache: %lld slots x %lld positions (%lld rows) must be positive",
                        (long long)Bmax, (long long)Tmax, (long long)Rmax);
    if (Tmax > c->max_T)
        return UPQ_FAIL(UPQ_EINPUT, "kv cache: %lld positions exceed max_position_embeddings %lld",
                        (long long)Tmax, (long long)c->max_T);
    kv->cfg = *c;
    kv->Bmax = Bmax;
    kv->Tmax = Tmax;
    kv->Rmax = Rmax;
    int64_t KD = c->KV * c->D, HD = c->H * c->D, cache = c->L * Bmax * Tmax * KD;
    int64_t nth = omp_get_max_threads();
    kv_slot slots[] = {
        {&kv->kc, cache}, {&kv->vc, cache},
        {&kv->rope_cos, Tmax * c->D / 2}, {&kv->rope_sin, Tmax * c->D / 2},
        {&kv->x, Rmax * c->C}, {&kv->ln, Rmax * c->C}, {&kv->rstd, Rmax},
        {&kv->q, Rmax * HD}, {&kv->k, Rmax * KD}, {&kv->v, Rmax * KD}, {&kv->atty, Rmax * HD},
        {&kv->gate, Rmax * c->F}, {&kv->up, Rmax * c->F}, {&kv->scores, nth * Tmax},
        {&kv->logits, Rmax * c->V},
    };
    int64_t total = 0, ns = (int64_t)(sizeof slots / sizeof slots[0]);
    for (int64_t i = 0; i < ns; i++) total += (slots[i].n + 15) & ~(int64_t)15;
    kv->mem = upq_malloc((size_t)total * sizeof(float), "kv cache");
    kv->len = upq_calloc((size_t)Bmax, sizeof(int64_t), "kv cache lengths");
    if (!kv->mem || !kv->len) {
        tfm_kv_free(kv);
        return UPQ_EIO;
    }
    float *p = kv->mem;
    for (int64_t i = 0; i < ns; i++) {
        *slots[i].ptr = p;
        p += (slots[i].n + 15) & ~(int64_t)15;
    }
    rope_tables(kv->rope_cos, kv->rope_sin, c, Tmax);
    return UPQ_OK;
}

int tfm_kv_init_model(tfm_kv *kv, const tfm_model *m, int64_t Bmax, int64_t Tmax, int64_t Rmax)
{
    TRY(tfm_kv_init(kv, &m->cfg, Bmax, Tmax, Rmax));
    int rc = tfm_pws_alloc(&kv->pws, m, Rmax);
    if (rc) tfm_kv_free(kv);
    return rc;
}

void tfm_kv_free(tfm_kv *kv)
{
    tfm_pws_free(&kv->pws);
    free(kv->mem);
    free(kv->len);
    memset(kv, 0, sizeof *kv);
}

void tfm_kv_reset(tfm_kv *kv, int64_t b)
{
    UPQ_ASSERT(b >= 0 && b < kv->Bmax);
    kv->len[b] = 0;
}

/* Decode steps and short prefills are small products. Below this many multiply-adds
 * (about 10 ms of one core) a plain single-threaded loop is used (lin_ctx.loop_below): a
 * threaded BLIS call waits at its barrier for every thread, which costs a scheduler
 * slice when the cores are shared (a batch of 4 prompts on tinyllama-15m: 13.7 s wall on
 * the loaded 2-core machine with BLIS threads, 3.1 s with BLIS_NUM_THREADS=1). */
#define KV_PAR_MIN ((int64_t)1 << 26)

/* One query row q (D) over keys/values 0..n-1 of a slot's cache (row stride KD). */
static void kv_attend(float *y, float *s, const float *q, const float *kc, const float *vc,
                      int64_t n, int64_t KD, int64_t D, float scale)
{
    float mx = -INFINITY;
    for (int64_t j = 0; j < n; j++) {
        const float *kj = kc + j * KD;
        float dot = 0.0f;
        for (int64_t d = 0; d < D; d++) dot += q[d] * kj[d];
        s[j] = dot * scale;
        mx = s[j] > mx ? s[j] : mx;
    }
    double sum = 0.0;
    for (int64_t j = 0; j < n; j++) {
        s[j] = expf(s[j] - mx);
        sum += s[j];
    }
    float inv = (float)(1.0 / sum);
    for (int64_t d = 0; d < D; d++) y[d] = 0.0f;
    for (int64_t j = 0; j < n; j++) {
        const float *vj = vc + j * KD;
        float p = s[j] * inv;
        for (int64_t d = 0; d < D; d++) y[d] += p * vj[d];
    }
}

/* The attention plug of block_forward (block.h) for one call: layer l of the cache and
 * the slots being fed. */
typedef struct {
    tfm_kv *kv;
    int64_t l;
    const int64_t *slots;
} kv_plug;

/* RoPE of the nb*S new rows at each slot's positions, their k/v appended to the cache,
 * then each row's attention over its slot's cache (len not yet advanced). B = nb, T = S. */
static void kv_attn_forward(const blk_attn *at, float *y, float *stats, float *q, float *k,
                            const float *v, int64_t nb, int64_t S)
{
    const kv_plug *pl = at->ctx;
    tfm_kv *kv = pl->kv;
    int64_t l = pl->l, H = at->H, D = at->D, KD = at->KV * D, HD = H * D, half = D / 2;
    int64_t grp = H / at->KV;
    (void)stats;
    for (int64_t i = 0; i < nb; i++) {
        int64_t b = pl->slots[i], p0 = kv->len[b];
        const float *cs = at->rope_cos + p0 * half, *sn = at->rope_sin + p0 * half;
        rope_forward(q + i * S * HD, cs, sn, 1, S, H, D);
        rope_forward(k + i * S * KD, cs, sn, 1, S, at->KV, D);
        float *kc = kv->kc + ((l * kv->Bmax + b) * kv->Tmax + p0) * KD;
        float *vc = kv->vc + ((l * kv->Bmax + b) * kv->Tmax + p0) * KD;
        memcpy(kc, k + i * S * KD, (size_t)(S * KD) * sizeof(float));
        memcpy(vc, v + i * S * KD, (size_t)(S * KD) * sizeof(float));
    }
    float scale = 1.0f / sqrtf((float)D);
    int64_t work = nb * S * H;
#pragma omp parallel for schedule(dynamic, 1) if (work * kv->Tmax * D >= KV_PAR_MIN)
    for (int64_t w = 0; w < work; w++) {
        int64_t r = w / H, h = w % H, i = r / S, t = r % S, b = pl->slots[i];
        int64_t pos = kv->len[b] + t;
        const float *kc = kv->kc + ((l * kv->Bmax + b) * kv->Tmax) * KD + (h / grp) * D;
        const float *vc = kv->vc + ((l * kv->Bmax + b) * kv->Tmax) * KD + (h / grp) * D;
        float *s = kv->scores + (int64_t)omp_get_thread_num() * kv->Tmax;
        kv_attend(y + r * HD + h * D, s, q + r * HD + h * D, kc, vc, pos + 1, KD, D, scale);
    }
}

/* Layer l on the new rows in kv->x, in place: block_forward with the cache's attention,
 * keeping nothing (ln1 = ln2, act = gate, mid = x). */
static void kv_block(const tfm_model *m, tfm_kv *kv, int64_t l, const int64_t *slots,
                     int64_t nb, int64_t S)
{
    const tfm_config *c = &m->cfg;
    kv_plug pl = {kv, l, slots};
    blk_attn at = {.forward = kv_attn_forward, .rope_cos = kv->rope_cos, .rope_sin = kv->rope_sin,
                   .nthreads = 1, .H = c->H, .KV = c->KV, .D = c->D, .ctx = &pl};
    blk_acts a = {.ln1 = kv->ln, .ln1_rstd = kv->rstd, .q = kv->q, .k = kv->k, .v = kv->v,
                  .atty = kv->atty, .mid = kv->x, .ln2 = kv->ln, .ln2_rstd = kv->rstd,
                  .gate = kv->gate, .up = kv->up, .act = kv->gate};
    blk_weights bw;
    blk_weights_from_layer(&bw, c, &m->layers[l]);
    lin_ctx lc = {kv->pws.mem ? &kv->pws : NULL, KV_PAR_MIN};
    block_forward(kv->x, &a, kv->x, &bw, &at, &lc, c, nb, S);
}

static int kv_check(const tfm_kv *kv, const int64_t *slots, int64_t nb, const int32_t *tokens,
                    int64_t S)
{
    UPQ_ASSERT(nb >= 1 && S >= 1 && nb * S <= kv->Rmax);
    for (int64_t i = 0; i < nb; i++) {
        UPQ_ASSERT(slots[i] >= 0 && slots[i] < kv->Bmax);
        if (kv->len[slots[i]] + S > kv->Tmax)
            return UPQ_FAIL(UPQ_EINPUT, "kv cache: sequence %lld would reach %lld tokens, more than the %lld the cache holds",
                            (long long)slots[i], (long long)(kv->len[slots[i]] + S), (long long)kv->Tmax);
    }
    for (int64_t r = 0; r < nb * S; r++)
        if (tokens[r] < 0 || tokens[r] >= kv->cfg.V)
            return UPQ_FAIL(UPQ_EINPUT, "token id %d (sequence %lld, new token %lld) is outside the vocabulary [0, %lld)",
                            tokens[r], (long long)slots[r / S], (long long)(r % S), (long long)kv->cfg.V);
    return UPQ_OK;
}

int tfm_kv_forward(const tfm_model *m, tfm_kv *kv, const int64_t *slots, int64_t nb,
                   const int32_t *tokens, int64_t S, int all_rows)
{
    const tfm_config *c = &m->cfg;
    UPQ_ASSERT(kv->cfg.C == c->C && kv->cfg.L == c->L && kv->cfg.V == c->V);
    UPQ_ASSERT(!m->n_packed || kv->pws.mem); /* tfm_kv_init_model */
    TRY(kv_check(kv, slots, nb, tokens, S));
    int64_t R = nb * S, C = c->C;
    for (int64_t r = 0; r < R; r++)
        memcpy(kv->x + r * C, m->tok_emb + (int64_t)tokens[r] * C, (size_t)C * sizeof(float));
    for (int64_t l = 0; l < c->L; l++) kv_block(m, kv, l, slots, nb, S);
    for (int64_t i = 0; i < nb; i++) kv->len[slots[i]] += S;
    if (!all_rows) { /* only the last new row of each slot goes through the LM head */
        for (int64_t i = 0; i < nb; i++)
            memmove(kv->x + i * C, kv->x + (i * S + S - 1) * C, (size_t)C * sizeof(float));
        R = nb;
    }
    rmsnorm_forward(kv->ln, kv->rstd, kv->x, m->final_norm, R, C, (float)c->norm_eps);
    lin_layer head = lin_layer_dense(m->lm_head, NULL, NULL, C, c->V);
    lin_ctx lc = {NULL, KV_PAR_MIN};
    lin_forward(&head, &lc, kv->logits, kv->ln, R, 0.0f);
    return UPQ_OK;
}
