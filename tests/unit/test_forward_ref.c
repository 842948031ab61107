/* test_forward_ref.c - tfm_forward against a plain double-precision reference
 * forward written from the HF LlamaForCausalLM definition (naive loops, per-token
 * attention, RoPE angles in double, llama3 rope_scaling as transformers writes it),
 * on small random models that cover what the golden models do not: q/k/v biases,
 * GQA, tied embeddings, llama3 RoPE, batches with several sequences.
 * Metric: max|ours - ref| / max|ref| <= 1e-4 for logits and every hidden state. */
#include <math.h>
#ifndef M_PI /* XSI, not C11: -std=c11 hides it */
#define M_PI 3.14159265358979323846
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "rand_model.h"
#include "test_util.h"
#include "upq_err.h"

#define TOL 1e-4

static void ref_rms(double *y, const double *x, const float *w, int64_t C, double eps)
{
    double ss = 0;
    for (int64_t j = 0; j < C; j++) ss += x[j] * x[j];
    double r = 1.0 / sqrt(ss / C + eps);
    for (int64_t j = 0; j < C; j++) y[j] = w[j] * x[j] * r;
}

/* y (out) = W (out,in) x + b */
static void ref_lin(double *y, const double *x, const float *W, const float *b, int64_t in,
                    int64_t out)
{
    for (int64_t o = 0; o < out; o++) {
        double s = b ? b[o] : 0.0;
        for (int64_t i = 0; i < in; i++) s += (double)W[o * in + i] * x[i];
        y[o] = s;
    }
}

static double ref_inv_freq(const tfm_config *c, int64_t i)
{
    double inv = 1.0 / pow(c->rope_theta, (double)(2 * i) / (double)c->D);
    if (c->rope_type != TFM_ROPE_LLAMA3) return inv;
    double lw = c->rope_orig_max_T / c->rope_low_freq, hw = c->rope_orig_max_T / c->rope_high_freq;
    double wl = 2 * M_PI / inv;
    if (wl < hw) return inv;                        /* high frequency: kept */
    if (wl > lw) return inv / c->rope_factor;       /* low frequency: scaled */
    double sm = (c->rope_orig_max_T / wl - c->rope_low_freq) / (c->rope_high_freq - c->rope_low_freq);
    return (1 - sm) * inv / c->rope_factor + sm * inv;
}

/* Rotate-half RoPE on one head vector at position t. */
static void ref_rope(double *x, const tfm_config *c, int64_t t)
{
    int64_t h = c->D / 2;
    for (int64_t i = 0; i < h; i++) {
        double a = t * ref_inv_freq(c, i), x1 = x[i], x2 = x[i + h];
        x[i] = x1 * cos(a) - x2 * sin(a);
        x[i + h] = x2 * cos(a) + x1 * sin(a);
    }
}

/* One sequence: logits (T,V), hidden (L+1,T,C) as transformers. */
static void ref_forward(const tfm_model *m, const int32_t *tok, int64_t T, double *logits,
                        double *hidden)
{
    const tfm_config *c = &m->cfg;
    int64_t C = c->C, D = c->D, HD = c->H * D, KD = c->KV * D, F = c->F;
    double *x = calloc(T * C, sizeof(double)), *h = calloc(C, sizeof(double));
    double *q = calloc(T * HD, sizeof(double)), *k = calloc(T * KD, sizeof(double));
    double *v = calloc(T * KD, sizeof(double)), *o = calloc(HD, sizeof(double));
    double *g = calloc(F, sizeof(double)), *u = calloc(F, sizeof(double)), *p = calloc(T, sizeof(double));
    double *tmp = calloc(C, sizeof(double));
    for (int64_t t = 0; t < T; t++)
        for (int64_t j = 0; j < C; j++) x[t * C + j] = m->tok_emb[tok[t] * C + j];
    for (int64_t l = 0; l < c->L; l++) {
        const tfm_layer *w = &m->layers[l];
        memcpy(hidden + l * T * C, x, T * C * sizeof(double));
        for (int64_t t = 0; t < T; t++) {
            ref_rms(h, x + t * C, w->attn_norm, C, c->norm_eps);
            ref_lin(q + t * HD, h, w->wq, w->bq, C, HD);
            ref_lin(k + t * KD, h, w->wk, w->bk, C, KD);
            ref_lin(v + t * KD, h, w->wv, w->bv, C, KD);
            for (int64_t hh = 0; hh < c->H; hh++) ref_rope(q + t * HD + hh * D, c, t);
            for (int64_t hh = 0; hh < c->KV; hh++) ref_rope(k + t * KD + hh * D, c, t);
        }
        for (int64_t t = 0; t < T; t++) {
            for (int64_t hh = 0; hh < c->H; hh++) {
                int64_t kv = hh / (c->H / c->KV);
                double mx = -INFINITY, sum = 0;
                for (int64_t s = 0; s <= t; s++) {
                    double d = 0;
                    for (int64_t i = 0; i < D; i++) d += q[t * HD + hh * D + i] * k[s * KD + kv * D + i];
                    p[s] = d / sqrt((double)D);
                    mx = fmax(mx, p[s]);
                }
                for (int64_t s = 0; s <= t; s++) sum += (p[s] = exp(p[s] - mx));
                for (int64_t i = 0; i < D; i++) {
                    double y = 0;
                    for (int64_t s = 0; s <= t; s++) y += p[s] / sum * v[s * KD + kv * D + i];
                    o[hh * D + i] = y;
                }
            }
            ref_lin(tmp, o, w->wo, NULL, HD, C);
            for (int64_t j = 0; j < C; j++) x[t * C + j] += tmp[j];
            ref_rms(h, x + t * C, w->mlp_norm, C, c->norm_eps);
            ref_lin(g, h, w->w_gate, NULL, C, F);
            ref_lin(u, h, w->w_up, NULL, C, F);
            for (int64_t j = 0; j < F; j++) g[j] = g[j] / (1 + exp(-g[j])) * u[j];
            ref_lin(tmp, g, w->w_down, NULL, F, C);
            for (int64_t j = 0; j < C; j++) x[t * C + j] += tmp[j];
        }
    }
    for (int64_t t = 0; t < T; t++) {
        ref_rms(hidden + (c->L * T + t) * C, x + t * C, m->final_norm, C, c->norm_eps);
        ref_lin(logits + t * c->V, hidden + (c->L * T + t) * C, m->lm_head, NULL, C, c->V);
    }
    free(x); free(h); free(q); free(k); free(v); free(o); free(g); free(u); free(p); free(tmp);
}

static void run_case(int tied, int llama3, int64_t B, int64_t T)
{
    tfm_config c = rm_config(tied, llama3);
    tfm_model m;
    CHECK_OK(tfm_model_alloc(&m, &c));
    rm_model_init(&m);
    int32_t *tok = malloc(B * T * sizeof *tok);
    for (int64_t i = 0; i < B * T; i++) tok[i] = (int32_t)((rm_uniform() + 1.0f) * 0.5f * (float)c.V) % (int32_t)c.V;
    int64_t BTC = B * T * c.C;
    float *hid = malloc((c.L + 1) * BTC * sizeof(float));
    double *rl = malloc(T * c.V * sizeof(double)), *rh = malloc((c.L + 1) * T * c.C * sizeof(double));
    tfm_acts a;
    CHECK_OK(tfm_acts_alloc(&a, &c, B + 1, T + 3, 0)); /* larger than used: packed layout */
    CHECK_OK(tfm_forward(&m, &a, tok, B, T, hid));
    double worst = 0;
    for (int64_t b = 0; b < B; b++) {
        ref_forward(&m, tok + b * T, T, rl, rh);
        worst = tu_max(worst, tu_rel_err_d(a.logits + b * T * c.V, rl, T * c.V));
        for (int64_t l = 0; l <= c.L; l++)
            worst = tu_max(worst, tu_rel_err_d(hid + l * BTC + b * T * c.C, rh + l * T * c.C, T * c.C));
    }
    printf("  tied=%d llama3=%d B=%lld T=%lld: max rel err %.3g\n", tied, llama3, (long long)B,
           (long long)T, worst);
    EXPECT_CLOSE(worst, TOL, "%.3g", worst);
    tfm_acts_free(&a);
    tfm_model_free(&m);
    free(tok); free(hid); free(rl); free(rh);
}

/* Token ids outside [0, V) are an input error naming the position, not a crash. */
static void bad_token(void)
{
    tfm_config c = rm_config(0, 0);
    tfm_model m;
    CHECK_OK(tfm_model_alloc(&m, &c));
    tfm_acts a;
    CHECK_OK(tfm_acts_alloc(&a, &c, 1, 4, 0));
    int32_t tok[4] = {1, 2, (int32_t)c.V, 3};
    CHECK(tfm_forward(&m, &a, tok, 1, 4, NULL) == UPQ_EINPUT);
    CHECK(strstr(upq_errmsg(), "37") != NULL && strstr(upq_errmsg(), "position 2") != NULL);
    tfm_acts_free(&a);
    CHECK(tfm_acts_alloc(&a, &c, 1, c.max_T + 1, 0) == UPQ_EINPUT);
    tfm_acts_free(&a);
    tfm_model_free(&m);
}

int main(void)
{
    run_case(0, 0, 1, 9);
    run_case(1, 0, 3, 17);
    run_case(0, 1, 2, 33);
    run_case(1, 1, 2, 61);
    bad_token();
    return tu_finish("test_forward_ref");
}
