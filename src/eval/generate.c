/* generate.c - the decode loop (generate.h): prompts are taken in groups of o->batch;
 * each prompt of a group is prefilled into its own cache slot, then all unfinished
 * slots advance one token per tfm_kv_forward call. Sampling follows HF's warpers
 * (temperature, top-k, top-p) with one xoshiro256** stream per prompt. */
#include "generate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kvcache.h"
#include "rng.h"
#include "upq_err.h"

gen_opts gen_opts_default(void)
{
    gen_opts o;
    memset(&o, 0, sizeof o);
    o.max_new_tokens = 128;
    o.top_p = 1.0f;
    o.eos = -1;
    o.batch = 8;
    return o;
}

const char *gen_finish_name(gen_finish f)
{
    return f == GEN_EOS ? "eos" : f == GEN_STOP ? "stop" : "length";
}

void gen_result_free(gen_result *r)
{
    tok_ids_free(&r->ids);
    free(r->text);
    memset(r, 0, sizeof *r);
}

void gen_rng_seed(gen_rng *r, uint64_t seed) { upq_rng_seed(r->s, seed); }

double gen_rng_uniform(gen_rng *r) { return upq_rng_uniform(r->s); }

static int cmp_desc(const void *a, const void *b)
{
    float x = ((const gen_pair *)a)->v, y = ((const gen_pair *)b)->v;
    if (x != y) return x > y ? -1 : 1;
    return ((const gen_pair *)a)->i - ((const gen_pair *)b)->i;
}

void gen_probs(float *probs, gen_pair *sc, const float *logits, int64_t V, const gen_opts *o)
{
    UPQ_ASSERT(o->temperature > 0);
    for (int64_t i = 0; i < V; i++) {
        sc[i].v = logits[i] / o->temperature;
        sc[i].i = (int32_t)i;
    }
    qsort(sc, (size_t)V, sizeof *sc, cmp_desc);
    int64_t keep = V;
    if (o->top_k > 0 && o->top_k < V) { /* HF removes scores < the k-th largest */
        keep = o->top_k;
        while (keep < V && sc[keep].v == sc[o->top_k - 1].v) keep++;
    }
    double mx = sc[0].v, sum = 0;
    for (int64_t j = 0; j < keep; j++) sum += exp((double)sc[j].v - mx);
    if (o->top_p < 1.0f) { /* from the least likely up: drop while cumulative <= 1 - p */
        double cum = 0;
        int64_t drop = 0;
        for (int64_t j = keep - 1; j > 0; j--) {
            cum += exp((double)sc[j].v - mx) / sum;
            if (cum > 1.0 - o->top_p) break;
            drop++;
        }
        keep -= drop;
        sum = 0;
        for (int64_t j = 0; j < keep; j++) sum += exp((double)sc[j].v - mx);
    }
    memset(probs, 0, (size_t)V * sizeof *probs);
    for (int64_t j = 0; j < keep; j++) probs[sc[j].i] = (float)(exp((double)sc[j].v - mx) / sum);
}

int32_t gen_sample(const float *logits, int64_t V, const gen_opts *o, gen_rng *r, float *probs,
                   gen_pair *sc)
{
    if (o->temperature <= 0) {
        int64_t best = 0;
        for (int64_t i = 1; i < V; i++)
            if (logits[i] > logits[best]) best = i;
        return (int32_t)best;
    }
    gen_probs(probs, sc, logits, V, o);
    double u = gen_rng_uniform(r), cum = 0;
    int64_t last = 0;
    for (int64_t i = 0; i < V; i++) {
        if (probs[i] <= 0) continue;
        last = i;
        cum += probs[i];
        if (u < cum) return (int32_t)i;
    }
    return (int32_t)last; /* rounding left u above the total */
}

/* One slot of a group: its prompt index, generator and state. */
typedef struct {
    int64_t prompt;
    gen_rng rng;
    int done;
} gen_slot;

/* Decodes the generated ids; a stop string ends the text where it starts. */
static int gen_update_text(const tok_tokenizer *tok, const gen_opts *o, gen_result *r, int *stopped)
{
    free(r->text);
    r->text = NULL;
    int64_t len = 0;
    TRY(tok_decode(tok, r->ids.ids, r->ids.n, 1, &r->text, &len));
    *stopped = 0;
    for (int s = 0; s < o->nstop; s++) {
        char *at = o->stop[s][0] ? strstr(r->text, o->stop[s]) : NULL;
        if (at) {
            *at = 0;
            *stopped = 1;
        }
    }
    return UPQ_OK;
}

static int gen_append(tok_ids *v, int32_t id)
{
    if (v->n == v->cap) {
        int64_t cap = v->cap ? 2 * v->cap : 64;
        int32_t *p = realloc(v->ids, (size_t)cap * sizeof *p);
        if (!p) return UPQ_FAIL(UPQ_EIO, "generate: out of memory");
        v->ids = p;
        v->cap = cap;
    }
    v->ids[v->n++] = id;
    return UPQ_OK;
}

/* Takes the sampled token of slot s; marks it done on EOS, a stop string or the length. */
static int gen_take(const tok_tokenizer *tok, const gen_opts *o, gen_slot *s, gen_result *r,
                    int32_t id, int64_t room)
{
    TRY(gen_append(&r->ids, id));
    if (o->on_token) o->on_token(o->on_token_ctx, s->prompt, r);
    int stopped = 0;
    if (id == o->eos) r->finish = GEN_EOS;
    if (o->nstop || id == o->eos || r->ids.n >= room) TRY(gen_update_text(tok, o, r, &stopped));
    if (stopped) r->finish = GEN_STOP;
    s->done = r->finish != GEN_LENGTH || r->ids.n >= room;
    return UPQ_OK;
}

/* The group's decode loop after the prefills: all unfinished slots step together. */
static int gen_group_loop(const tfm_model *m, const tok_tokenizer *tok, tfm_kv *kv,
                          const gen_opts *o, gen_slot *sl, int64_t ns, gen_result *res,
                          const int64_t *room, float *probs, gen_pair *sc)
{
    int64_t V = m->cfg.V, slots[ns];
    int32_t in[ns];
    for (;;) {
        int64_t nb = 0;
        for (int64_t s = 0; s < ns; s++) {
            if (sl[s].done) continue;
            gen_result *r = &res[sl[s].prompt];
            slots[nb] = s;
            in[nb++] = r->ids.ids[r->ids.n - 1];
        }
        if (!nb) return UPQ_OK;
        TRY(tfm_kv_forward(m, kv, slots, nb, in, 1, 0));
        for (int64_t j = 0; j < nb; j++) {
            gen_slot *s = &sl[slots[j]];
            int32_t id = gen_sample(kv->logits + j * V, V, o, &s->rng, probs, sc);
            TRY(gen_take(tok, o, s, &res[s->prompt], id, room[slots[j]]));
        }
    }
}

static int gen_group(const tfm_model *m, const tok_tokenizer *tok, tfm_kv *kv,
                     const tok_ids *prompts, int64_t p0, int64_t ns, const gen_opts *o,
                     gen_result *res, float *probs, gen_pair *sc)
{
    int64_t V = m->cfg.V, room[ns];
    gen_slot sl[ns];
    for (int64_t s = 0; s < ns; s++) {
        const tok_ids *p = &prompts[p0 + s];
        sl[s].prompt = p0 + s;
        sl[s].done = 0;
        gen_rng_seed(&sl[s].rng, o->seed + 0x5851F42D4C957F2Dull * (uint64_t)(o->index0 + p0 + s));
        int64_t left = kv->Tmax - p->n;
        room[s] = o->max_new_tokens < left ? o->max_new_tokens : left;
        tfm_kv_reset(kv, s);
        TRY(tfm_kv_forward(m, kv, &s, 1, p->ids, p->n, 0));
        int32_t id = gen_sample(kv->logits, V, o, &sl[s].rng, probs, sc);
        TRY(gen_take(tok, o, &sl[s], &res[p0 + s], id, room[s]));
    }
    return gen_group_loop(m, tok, kv, o, sl, ns, res, room, probs, sc);
}

static int gen_check(const tfm_model *m, const tok_ids *prompts, int64_t n, const gen_opts *o,
                     int64_t *Tneed, int64_t *Pmax)
{
    UPQ_ASSERT(o->max_new_tokens > 0 && o->batch >= 1);
    *Tneed = 1;
    *Pmax = 1;
    for (int64_t i = 0; i < n; i++) {
        if (prompts[i].n < 1) return UPQ_FAIL(UPQ_EINPUT, "generate: prompt %lld has no tokens", (long long)i);
        if (prompts[i].n >= m->cfg.max_T)
            return UPQ_FAIL(UPQ_EINPUT, "generate: prompt %lld has %lld tokens, the model's context is %lld",
                            (long long)i, (long long)prompts[i].n, (long long)m->cfg.max_T);
        int64_t need = prompts[i].n + o->max_new_tokens;
        *Tneed = need > *Tneed ? need : *Tneed;
        *Pmax = prompts[i].n > *Pmax ? prompts[i].n : *Pmax;
    }
    if (*Tneed > m->cfg.max_T) *Tneed = m->cfg.max_T; /* generation stops at the context end */
    return UPQ_OK;
}

int gen_run(const tfm_model *m, const tok_tokenizer *tok, const tok_ids *prompts, int64_t n,
            const gen_opts *o, gen_result *res)
{
    memset(res, 0, (size_t)n * sizeof *res);
    int64_t Tneed, Pmax, V = m->cfg.V;
    TRY(gen_check(m, prompts, n, o, &Tneed, &Pmax));
    int64_t B = o->batch < n ? o->batch : n;
    tfm_kv kv;
    TRY(tfm_kv_init_model(&kv, m, B, Tneed, Pmax > B ? Pmax : B));
    float *probs = upq_malloc((size_t)V * sizeof *probs, "sampling probabilities");
    gen_pair *sc = upq_malloc((size_t)V * sizeof *sc, "sampling scratch");
    int rc = probs && sc ? UPQ_OK : UPQ_EIO;
    for (int64_t p0 = 0; !rc && p0 < n; p0 += B)
        rc = gen_group(m, tok, &kv, prompts, p0, n - p0 < B ? n - p0 : B, o, res, probs, sc);
    for (int64_t i = 0; !rc && i < n; i++)
        if (!res[i].text) rc = tok_decode(tok, res[i].ids.ids, res[i].ids.n, 1, &res[i].text, NULL);
    free(probs);
    free(sc);
    tfm_kv_free(&kv);
    if (rc)
        for (int64_t i = 0; i < n; i++) gen_result_free(&res[i]);
    return rc;
}
