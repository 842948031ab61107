/* demo_train.c - training the demo llama: defaults and architecture, deterministic
 * init, the AdamW loop over random windows (warmup + cosine), held-out evaluation and
 * the unigram baseline. Uses forward/backward/loss/AdamW from src/; no I/O here
 * (demo_model.c writes the folder). Not a general trainer: one process, no resume. */
#include "demo_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "adamw.h"
#include "backward.h"
#include "corpus.h"
#include "f16.h"
#include "forward.h"
#include "loss.h"
#include "progress.h"
#include "upq_err.h"

void demo_opts_default(demo_opts *o)
{
    memset(o, 0, sizeof *o);
    o->seed = 1;
    o->steps = 600;
    o->batch = 16;
    o->ctx = 128;
    o->corpus_bytes = 2000000;
    o->heldout_bytes = 100000;
    o->vocab = 512;
    o->lr = 3e-3;
    o->min_lr_frac = 0.1;
    o->warmup = 30;
    o->weight_decay = 0.1;
    o->clip = 1.0;
    o->log_every = 25;
}

void demo_config(tfm_config *c, int64_t V)
{
    memset(c, 0, sizeof *c);
    snprintf(c->arch, sizeof c->arch, "LlamaForCausalLM");
    c->V = V;
    c->C = 128;
    c->F = 344;
    c->L = 4;
    c->H = 4;
    c->KV = 2;
    c->D = 32;
    c->max_T = 512;
    c->rope_theta = 10000.0;
    c->norm_eps = 1e-5;
    c->rope_type = TFM_ROPE_DEFAULT;
    c->tie_embeddings = 0;
    c->qkv_bias = 0;
    c->bos_id = 1;
    c->eos_id = 2;
    c->pad_id = 0;
}

void demo_opts_key(const demo_opts *o, char *buf, size_t cap)
{
    snprintf(buf, cap,
             "seed=%llu steps=%lld batch=%lld ctx=%lld corpus_bytes=%lld heldout_bytes=%lld "
             "vocab=%lld lr=%g min_lr_frac=%g warmup=%lld weight_decay=%g clip=%g",
             (unsigned long long)o->seed, (long long)o->steps, (long long)o->batch, (long long)o->ctx,
             (long long)o->corpus_bytes, (long long)o->heldout_bytes, (long long)o->vocab, o->lr,
             o->min_lr_frac, (long long)o->warmup, o->weight_decay, o->clip);
    if (o->max_seconds > 0) { /* only then: default keys stay as they were */
        size_t l = strlen(buf);
        snprintf(buf + l, cap > l ? cap - l : 0, " max_seconds=%g", o->max_seconds);
    }
}

/* ---- init ---------------------------------------------------------------------- */

typedef struct {
    corpus_rng rng;
    double resid_std;
} init_ctx;

static int init_param(void *vctx, const char *name, float *data, int ndim, const int64_t shape[2])
{
    init_ctx *c = vctx;
    int64_t n = ndim == 2 ? shape[0] * shape[1] : shape[0];
    if (ndim == 1) {
        for (int64_t i = 0; i < n; i++) data[i] = 1.0f;
        return UPQ_OK;
    }
    int resid = strstr(name, "o_proj") || strstr(name, "down_proj");
    double std = resid ? c->resid_std : 0.02;
    for (int64_t i = 0; i < n; i++) data[i] = (float)(std * corpus_rng_normal(&c->rng));
    return UPQ_OK;
}

void demo_init_weights(tfm_model *m, uint64_t seed)
{
    init_ctx c;
    corpus_rng_seed(&c.rng, seed ^ 0x1417a11e5eedULL);
    c.resid_std = 0.02 / sqrt(2.0 * (double)m->cfg.L);
    int rc = tfm_params_foreach(m, init_param, &c);
    UPQ_ASSERT(rc == UPQ_OK);
}

/* ---- training ------------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Linear warmup to o->lr, then cosine to o->lr * min_lr_frac at the last step. The
 * warmup is at most a tenth of the run, so short runs (tests) still train. With a time
 * budget, xt (>= 0: elapsed / budget) moves the cosine along when time runs faster
 * than steps; xt < 0 keeps the schedule purely step-based (deterministic). */
static double lr_at(const demo_opts *o, int64_t step, double xt)
{
    int64_t wu = o->warmup < o->steps / 10 ? o->warmup : o->steps / 10;
    if (wu < 1) wu = 1;
    if (step < wu) return o->lr * (double)(step + 1) / (double)wu;
    double span = (double)(o->steps - wu);
    double x = span > 0 ? (double)(step - wu) / span : 1.0;
    if (xt > x) x = xt < 1.0 ? xt : 1.0;
    double lo = o->lr * o->min_lr_frac;
    return lo + 0.5 * (o->lr - lo) * (1.0 + cos(3.141592653589793 * x));
}

typedef struct {
    tfm_acts a;
    tfm_model g;
    adamw_state opt;
    int32_t *tok, *tgt;
} train_bufs;

static int bufs_alloc(train_bufs *b, tfm_model *m, const demo_opts *o)
{
    memset(b, 0, sizeof *b);
    TRY(tfm_acts_alloc(&b->a, &m->cfg, o->batch, o->ctx, 1));
    TRY(tfm_model_alloc(&b->g, &m->cfg));
    TRY(adamw_init(&b->opt, m->n_params, (float)o->lr, 0.9f, 0.95f, 1e-8f, (float)o->weight_decay));
    TRY(adamw_decay_matrices(&b->opt, m));
    b->tok = upq_malloc((size_t)(o->batch * o->ctx) * sizeof(int32_t), "training batch");
    b->tgt = upq_malloc((size_t)(o->batch * o->ctx) * sizeof(int32_t), "training targets");
    return b->tok && b->tgt ? UPQ_OK : UPQ_EIO;
}

static void bufs_free(train_bufs *b)
{
    tfm_acts_free(&b->a);
    tfm_model_free(&b->g);
    adamw_free(&b->opt);
    free(b->tok);
    free(b->tgt);
}

/* One optimizer step on a batch of random windows; returns the batch loss via *loss. */
static int train_step(tfm_model *m, train_bufs *b, corpus_rng *rng, const int32_t *tokens, int64_t n,
                      const demo_opts *o, int64_t step, double lr, double *loss)
{
    int64_t B = o->batch, T = o->ctx;
    for (int64_t i = 0; i < B; i++) {
        int64_t start = (int64_t)corpus_rng_below(rng, (uint64_t)(n - T + 1));
        memcpy(b->tok + i * T, tokens + start, (size_t)T * sizeof(int32_t));
    }
    TRY(tfm_forward(m, &b->a, b->tok, B, T, NULL));
    tfm_next_token_targets(b->tgt, b->tok, NULL, B, T);
    *loss = tfm_ce_loss(b->a.dlogits, b->a.logits, b->tgt, B * T, m->cfg.V, NULL);
    if (!isfinite(*loss))
        return UPQ_FAIL(UPQ_EIO, "demo training diverged at step %lld (loss %g)", (long long)step, *loss);
    memset(b->g.mem, 0, (size_t)b->g.n_params * sizeof(float));
    TRY(tfm_backward(m, &b->g, &b->a, b->tok, B, T));
    adamw_clip_grad_norm(b->g.mem, b->g.n_params, (float)o->clip);
    adamw_step(&b->opt, m->mem, b->g.mem, (float)lr);
    return UPQ_OK;
}

/* Every log_every steps: one progress line (progress.h) with the loss and the rate. */
static void progress(prog *p, int64_t step, double loss, double lr)
{
    char extra[64];
    snprintf(extra, sizeof extra, "loss %.4f  lr %.2e", loss, lr);
    prog_event(p, step, extra);
}

int demo_train(tfm_model *m, const int32_t *tokens, int64_t n, const demo_opts *o, demo_result *r)
{
    if (n < o->ctx + 1)
        return UPQ_FAIL(UPQ_EINPUT, "demo training text has %lld tokens, fewer than one window of %lld",
                        (long long)n, (long long)o->ctx);
    int64_t cap = o->steps / 10 > 0 ? o->steps / 10 : 1, done = 0;
    double *hist = upq_malloc((size_t)cap * sizeof *hist, "loss history"); /* ring of recent losses */
    if (!hist) return UPQ_EIO;
    train_bufs b;
    int rc = bufs_alloc(&b, m, o);
    corpus_rng rng;
    corpus_rng_seed(&rng, o->seed ^ 0xba7c4e5ULL);
    double t0 = now_s(), loss = 0;
    prog pg;
    prog_init(&pg, o->progress, "demo-model", "step", o->steps);
    prog_set_rate(&pg, "tok/s", (double)(o->batch * o->ctx));
    pg.time_limit = o->max_seconds;
    pg.t0 = t0; /* now_s and progress.c both read CLOCK_MONOTONIC */
    for (int64_t s = 0; s < o->steps && rc == UPQ_OK; s++) {
        double el = now_s() - t0, xt = o->max_seconds > 0 ? el / o->max_seconds : -1.0;
        if (s > 0 && xt >= 1.0) break; /* time budget spent */
        double lr = lr_at(o, s, xt);
        rc = train_step(m, &b, &rng, tokens, n, o, s, lr, &loss);
        if (rc) break;
        if (s == 0) r->first_loss = loss;
        hist[s % cap] = loss;
        done = s + 1;
        if (o->progress && o->log_every > 0 && ((s + 1) % o->log_every == 0 || s + 1 == o->steps))
            progress(&pg, s + 1, loss, lr);
    }
    bufs_free(&b);
    /* mean of the last tenth of the steps taken */
    int64_t k = done / 10 > 0 ? done / 10 : 1, cnt = 0;
    if (k > cap) k = cap;
    double sum = 0;
    for (int64_t s = done - k > 0 ? done - k : 0; s < done; s++, cnt++) sum += hist[s % cap];
    free(hist);
    r->steps = done;
    r->final_loss = cnt ? sum / (double)cnt : loss;
    r->train_seconds = now_s() - t0;
    r->tokens_per_s = (double)(done * o->batch * o->ctx) / (r->train_seconds > 0 ? r->train_seconds : 1e-9);
    return rc;
}

/* ---- evaluation ---------------------------------------------------------------- */

int demo_eval(const tfm_model *m, const int32_t *tokens, int64_t n, int64_t ctx, double *mean_nll,
              int64_t *predicted)
{
    const int64_t Bmax = 8, windows = n / ctx;
    tfm_acts a;
    TRY(tfm_acts_alloc(&a, &m->cfg, Bmax, ctx, 0));
    int32_t *tgt = upq_malloc((size_t)(Bmax * ctx) * sizeof *tgt, "evaluation targets");
    int rc = tgt ? UPQ_OK : UPQ_EIO;
    double nll = 0;
    int64_t count = 0;
    for (int64_t w = 0; w < windows && rc == UPQ_OK; w += Bmax) {
        int64_t B = windows - w < Bmax ? windows - w : Bmax, k = 0;
        const int32_t *tok = tokens + w * ctx;
        rc = tfm_forward(m, &a, tok, B, ctx, NULL);
        if (rc) break;
        tfm_next_token_targets(tgt, tok, NULL, B, ctx);
        nll += tfm_ce_nll_sum(a.logits, tgt, B * ctx, m->cfg.V, &k);
        count += k;
    }
    free(tgt);
    tfm_acts_free(&a);
    *mean_nll = count ? nll / (double)count : 0;
    *predicted = count;
    return rc;
}

int demo_unigram_nll(const int32_t *train, int64_t n_train, const int32_t *eval, int64_t n_eval,
                     int64_t ctx, int64_t V, double *mean_nll)
{
    double *cnt = upq_calloc((size_t)V, sizeof *cnt, "unigram counts");
    if (!cnt) return UPQ_EIO;
    for (int64_t i = 0; i < n_train; i++) cnt[train[i]] += 1.0;
    double nll = 0, denom = (double)n_train + (double)V;
    int64_t count = 0, windows = n_eval / ctx;
    for (int64_t w = 0; w < windows; w++)
        for (int64_t t = 1; t < ctx; t++, count++) nll -= log((cnt[eval[w * ctx + t]] + 1.0) / denom);
    free(cnt);
    *mean_nll = count ? nll / (double)count : 0;
    return UPQ_OK;
}

void demo_round_f16(tfm_model *m)
{
    for (int64_t i = 0; i < m->n_params; i++) m->mem[i] = kq_f16_to_f32(kq_f32_to_f16(m->mem[i]));
}
