/* kvcache.c - the KV-cached incremental forward (kvcache.h): per layer RMSNorm,
 * q/k/v projections over all new rows (BLIS), RoPE at each row's own position
 * (rope.c), attention of each new row over its slot's cached keys (plain loops: one
 * query row per (row, head)), o_proj, SwiGLU MLP; then the final norm and LM head.
 * Reuses the layer kernels of layers.h; not the batched training forward (forward.c). */
#include "kvcache.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#include "layers.h"
#include "matmul.h"
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
 * (about 10 ms of one core) a plain single-threaded loop is used: a threaded BLIS call
 * waits at its barrier for every thread, which costs a scheduler slice when the cores
 * are shared (a batch of 4 prompts on tinyllama-15m: 13.7 s wall on the loaded 2-core
 * machine with BLIS threads, 3.1 s with BLIS_NUM_THREADS=1). */
#define KV_PAR_MIN ((int64_t)1 << 26)

/* y (N, out) = x (N, in) W^T + beta y. */
static void kv_gemm(float *y, const float *x, const float *w, int64_t N, int64_t in, int64_t out,
                    float beta)
{
    if (N * in * out >= KV_PAR_MIN) {
        kq_sgemm_nt(N, out, in, x, in, w, in, y, out, beta);
        return;
    }
    for (int64_t i = 0; i < N; i++) {
        const float *xi = x + i * in;
        for (int64_t o = 0; o < out; o++) {
            const float *wo = w + o * in;
            float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
            for (int64_t k = 0; k < in; k++) acc += xi[k] * wo[k];
            y[i * out + o] = beta == 0.0f ? acc : acc + beta * y[i * out + o];
        }
    }
}

/* y (N, out) = x (N, in) W^T + bias + beta y (bias may be NULL, then beta 0 or 1):
 * FP32 w, or the packed pq when set. */
static void kv_linear(tfm_kv *kv, float *y, const float *x, const float *w, const kq_qmat *pq,
                      const float *bias, int64_t N, int64_t in, int64_t out, float beta)
{
    if (pq) {
        tfm_linear_packed(y, x, N, pq, bias, beta, &kv->pws);
        return;
    }
    if (bias)
        for (int64_t i = 0; i < N; i++) memcpy(y + i * out, bias, (size_t)out * sizeof(float));
    kv_gemm(y, x, w, N, in, out, bias ? 1.0f : beta);
}

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

/* Attention of the nb*S new rows of layer l (their k/v already in the cache). */
static void kv_attention(tfm_kv *kv, int64_t l, const int64_t *slots, int64_t nb, int64_t S)
{
    const tfm_config *c = &kv->cfg;
    int64_t H = c->H, D = c->D, KD = c->KV * D, HD = H * D, grp = c->H / c->KV;
    float scale = 1.0f / sqrtf((float)D);
    int64_t work = nb * S * H;
#pragma omp parallel for schedule(dynamic, 1) if (work * kv->Tmax * D >= KV_PAR_MIN)
    for (int64_t w = 0; w < work; w++) {
        int64_t r = w / H, h = w % H, i = r / S, t = r % S, b = slots[i];
        int64_t pos = kv->len[b] + t; /* len not yet advanced */
        const float *kc = kv->kc + ((l * kv->Bmax + b) * kv->Tmax) * KD + (h / grp) * D;
        const float *vc = kv->vc + ((l * kv->Bmax + b) * kv->Tmax) * KD + (h / grp) * D;
        float *s = kv->scores + (int64_t)omp_get_thread_num() * kv->Tmax;
        kv_attend(kv->atty + r * HD + h * D, s, kv->q + r * HD + h * D, kc, vc, pos + 1, KD, D,
                  scale);
    }
}

/* q/k/v of the new rows, RoPE at each slot's positions, k/v appended to the cache. */
static void kv_qkv(tfm_kv *kv, const tfm_layer *w, int64_t l, const int64_t *slots, int64_t nb,
                   int64_t S)
{
    const tfm_config *c = &kv->cfg;
    int64_t R = nb * S, C = c->C, HD = c->H * c->D, KD = c->KV * c->D, half = c->D / 2;
    kv_linear(kv, kv->q, kv->ln, w->wq, w->pq[TFM_Q], w->bq, R, C, HD, 0.0f);
    kv_linear(kv, kv->k, kv->ln, w->wk, w->pq[TFM_K], w->bk, R, C, KD, 0.0f);
    kv_linear(kv, kv->v, kv->ln, w->wv, w->pq[TFM_V], w->bv, R, C, KD, 0.0f);
    for (int64_t i = 0; i < nb; i++) {
        int64_t b = slots[i], p0 = kv->len[b];
        const float *cs = kv->rope_cos + p0 * half, *sn = kv->rope_sin + p0 * half;
        rope_forward(kv->q + i * S * HD, cs, sn, 1, S, c->H, c->D);
        rope_forward(kv->k + i * S * KD, cs, sn, 1, S, c->KV, c->D);
        float *kc = kv->kc + ((l * kv->Bmax + b) * kv->Tmax + p0) * KD;
        float *vc = kv->vc + ((l * kv->Bmax + b) * kv->Tmax + p0) * KD;
        memcpy(kc, kv->k + i * S * KD, (size_t)(S * KD) * sizeof(float));
        memcpy(vc, kv->v + i * S * KD, (size_t)(S * KD) * sizeof(float));
    }
}

static void kv_block(const tfm_model *m, tfm_kv *kv, int64_t l, const int64_t *slots,
                     int64_t nb, int64_t S)
{
    const tfm_config *c = &m->cfg;
    const tfm_layer *w = &m->layers[l];
    int64_t R = nb * S, C = c->C, F = c->F, HD = c->H * c->D;
    rmsnorm_forward(kv->ln, kv->rstd, kv->x, w->attn_norm, R, C, (float)c->norm_eps);
    kv_qkv(kv, w, l, slots, nb, S);
    kv_attention(kv, l, slots, nb, S);
    kv_linear(kv, kv->x, kv->atty, w->wo, w->pq[TFM_O], NULL, R, HD, C, 1.0f);
    rmsnorm_forward(kv->ln, kv->rstd, kv->x, w->mlp_norm, R, C, (float)c->norm_eps);
    kv_linear(kv, kv->gate, kv->ln, w->w_gate, w->pq[TFM_GATE], NULL, R, C, F, 0.0f);
    kv_linear(kv, kv->up, kv->ln, w->w_up, w->pq[TFM_UP], NULL, R, C, F, 0.0f);
    swiglu_forward(kv->gate, kv->gate, kv->up, R * F);
    kv_linear(kv, kv->x, kv->gate, w->w_down, w->pq[TFM_DOWN], NULL, R, F, C, 1.0f);
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
    kv_gemm(kv->logits, kv->ln, m->lm_head, R, C, c->V, 0.0f);
    return UPQ_OK;
}
