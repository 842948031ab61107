/* mc.c - multiple-choice items, k-shot contexts, the harness's tokenization and batched
 * log-likelihood scoring (mc.h). Not the rank split or the built-in task (src/stages/). */
#include "mc.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "sha256.h"
#include "records.h"
#include "upq_err.h"

static char *dup_str(const char *s, size_t n)
{
    char *p = upq_malloc(n + 1, "mc string");
    if (p) memcpy(p, s, n), p[n] = 0;
    return p;
}

static int parse_fields(json_t *o, const char *label, mc_item *it)
{
    json_t *c = json_object_get(o, "context"), *ch = json_object_get(o, "choices"), *a = json_object_get(o, "answer");
    if (!json_is_string(c)) return UPQ_FAIL(UPQ_EINPUT, "%s: \"context\" must be a string", label);
    if (!json_is_array(ch)) return UPQ_FAIL(UPQ_EINPUT, "%s: \"choices\" must be an array of strings", label);
    size_t nc = json_array_size(ch);
    if (nc < 2 || nc > MC_MAX_CHOICES)
        return UPQ_FAIL(UPQ_EINPUT, "%s: \"choices\" has %zu entries, need 2 to %d", label, nc, MC_MAX_CHOICES);
    if (!json_is_integer(a)) return UPQ_FAIL(UPQ_EINPUT, "%s: \"answer\" must be an integer index", label);
    json_int_t ans = json_integer_value(a);
    if (ans < 0 || ans >= (json_int_t)nc)
        return UPQ_FAIL(UPQ_EINPUT, "%s: \"answer\" %lld is outside [0, %zu)", label, (long long)ans, nc);
    it->context = dup_str(json_string_value(c), json_string_length(c));
    it->choices = upq_calloc(nc, sizeof *it->choices, "mc choices");
    if (!it->context || !it->choices) return UPQ_EIO;
    it->nchoice = (int32_t)nc;
    it->answer = (int32_t)ans;
    for (size_t k = 0; k < nc; k++) {
        json_t *s = json_array_get(ch, k);
        if (!json_is_string(s)) return UPQ_FAIL(UPQ_EINPUT, "%s: choice %zu is not a string", label, k);
        if (json_string_length(s) == 0) return UPQ_FAIL(UPQ_EINPUT, "%s: choice %zu is empty", label, k);
        if (!(it->choices[k] = dup_str(json_string_value(s), json_string_length(s)))) return UPQ_EIO;
    }
    return UPQ_OK;
}

int mc_item_parse(const char *line, size_t len, const char *label, mc_item *it)
{
    memset(it, 0, sizeof *it);
    json_error_t err;
    json_t *o = json_loadb(line, len, 0, &err);
    if (!o) return UPQ_FAIL(UPQ_EINPUT, "%s: invalid JSON: %s (column %d)", label, err.text, err.column);
    int rc = json_is_object(o) ? parse_fields(o, label, it) : UPQ_FAIL(UPQ_EINPUT, "%s: not a JSON object", label);
    json_decref(o);
    if (rc) mc_item_free(it);
    return rc;
}

void mc_item_free(mc_item *it)
{
    for (int32_t k = 0; it->choices && k < it->nchoice; k++) free(it->choices[k]);
    free(it->choices);
    free(it->context);
    memset(it, 0, sizeof *it);
}

void mc_items_free(mc_item *items, int64_t n)
{
    for (int64_t i = 0; items && i < n; i++) mc_item_free(&items[i]);
    free(items);
}

static int parse_one(const char *line, size_t len, const char *label, void *item)
{
    return mc_item_parse(line, len, label, item);
}

static void free_all(void *items, int64_t n) { mc_items_free(items, n); }

int mc_read_file(const char *path, mc_item **items, int64_t *n)
{
    void *v = NULL;
    int rc = rec_read_lines(path, "multiple-choice", sizeof(mc_item), parse_one, free_all, &v, n);
    *items = v;
    return rc;
}

void mc_items_sha256(const mc_item *items, int64_t n, char hex[65])
{
    sha256_ctx c;
    uint8_t d[32];
    sha256_init(&c);
    for (int64_t i = 0; i < n; i++) {
        const mc_item *it = &items[i];
        sha256_update(&c, it->context, strlen(it->context) + 1);
        for (int32_t k = 0; k < it->nchoice; k++) sha256_update(&c, it->choices[k], strlen(it->choices[k]) + 1);
        char a[32];
        int la = snprintf(a, sizeof a, "%d\n", (int)it->answer);
        sha256_update(&c, a, (size_t)la);
    }
    sha256_final(&c, d);
    sha256_hex(d, hex);
}

/* A growable string. */
typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static int sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = 2 * (b->n + n + 1);
        char *p = realloc(b->p, cap);
        if (!p) return UPQ_FAIL(UPQ_EIO, "out of memory building an mc context (%zu bytes)", cap);
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
    return UPQ_OK;
}

int mc_context(const mc_item *items, int64_t n, int64_t i, int64_t shots, uint64_t seed, char **out)
{
    *out = NULL;
    if (shots < 0 || shots > n - 1)
        return UPQ_FAIL(UPQ_EINPUT, "--shots %lld needs more than %lld items in the task (it has %lld)",
                        (long long)shots, (long long)shots, (long long)n);
    int64_t *pick = shots ? upq_malloc((size_t)shots * sizeof *pick, "mc shots") : NULL;
    if (shots && !pick) return UPQ_EIO;
    uint64_t s[4];
    upq_rng_seed(s, seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1)));
    for (int64_t k = 0; k < shots;) {
        int64_t j = (int64_t)(upq_rng_next(s) % (uint64_t)(n - 1));
        j += j >= i; /* never the item itself */
        int dup = 0;
        for (int64_t q = 0; q < k; q++) dup |= pick[q] == j;
        if (!dup) pick[k++] = j;
    }
    sbuf b = {0};
    int rc = sb_add(&b, "", 0);
    for (int64_t k = 0; !rc && k < shots; k++) {
        const mc_item *e = &items[pick[k]];
        rc = sb_add(&b, e->context, strlen(e->context));
        if (!rc) rc = sb_add(&b, " ", 1);
        if (!rc) rc = sb_add(&b, e->choices[e->answer], strlen(e->choices[e->answer]));
        if (!rc) rc = sb_add(&b, "\n\n", 2);
    }
    if (!rc) rc = sb_add(&b, items[i].context, strlen(items[i].context));
    free(pick);
    if (rc) free(b.p);
    else *out = b.p;
    return rc;
}

/* Python's str.isspace for ASCII (what rstrip removes); other code points are kept. */
static int py_space(unsigned char c) { return c == ' ' || (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x1f); }

static int append_ids(tok_ids *dst, const int32_t *src, int64_t n)
{
    for (int64_t j = 0; j < n; j++) {
        if (dst->n == dst->cap) {
            int64_t cap = dst->cap ? 2 * dst->cap : 64;
            int32_t *p = realloc(dst->ids, (size_t)cap * sizeof *p);
            if (!p) return UPQ_FAIL(UPQ_EIO, "out of memory for token ids");
            dst->ids = p, dst->cap = cap;
        }
        dst->ids[dst->n++] = src[j];
    }
    return UPQ_OK;
}

/* context_enc and continuation_enc as the harness's loglikelihood() makes them. */
static int encode_pair(tok_tokenizer *tok, const char *context, const char *choice, int32_t prefix_id,
                       tok_ids *ctx, tok_ids *cont)
{
    size_t lc = strlen(context), lch = strlen(choice), cut = lc;
    char *whole = upq_malloc(lc + lch + 2, "mc request text");
    if (!whole) return UPQ_EIO;
    snprintf(whole, lc + lch + 2, "%s %s", context, choice);
    int rc = UPQ_OK;
    if (lc == 0) {
        rc = append_ids(ctx, &prefix_id, 1);
        if (!rc) rc = tok_encode(tok, whole, (int64_t)(lch + 1), 0, cont);
    } else {
        while (cut > 0 && py_space((unsigned char)context[cut - 1])) cut--;
        tok_ids all = {0};
        rc = tok_encode(tok, whole, (int64_t)(lc + lch + 1), 0, &all);
        if (!rc) rc = tok_encode(tok, context, (int64_t)cut, 0, ctx);
        if (!rc && all.n > ctx->n) rc = append_ids(cont, all.ids + ctx->n, all.n - ctx->n);
        tok_ids_free(&all);
    }
    free(whole);
    return rc;
}

int mc_encode(tok_tokenizer *tok, const char *context, const char *choice, int32_t prefix_id, int64_t max_T,
              const char *label, mc_request *r)
{
    memset(r, 0, sizeof *r);
    tok_ids ctx = {0}, cont = {0};
    int rc = encode_pair(tok, context, choice, prefix_id, &ctx, &cont);
    if (!rc && cont.n == 0) rc = UPQ_FAIL(UPQ_EINPUT, "%s: the choice adds no token after the context", label);
    if (!rc && ctx.n == 0) rc = UPQ_FAIL(UPQ_EINPUT, "%s: the context has no token (only whitespace)", label);
    if (!rc && cont.n > max_T)
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: the choice has %lld tokens, more than the model's %lld positions", label,
                      (long long)cont.n, (long long)max_T);
    if (!rc) {
        int64_t total = ctx.n + cont.n, keep = total < max_T + 1 ? total : max_T + 1, skip = total - keep;
        r->ids = upq_malloc((size_t)keep * sizeof *r->ids, "mc request ids");
        if (!r->ids) rc = UPQ_EIO;
        for (int64_t j = skip; !rc && j < total; j++)
            r->ids[j - skip] = j < ctx.n ? ctx.ids[j] : cont.ids[j - ctx.n];
        r->n = keep;
        r->n_cont = cont.n;
        r->n_cut = skip;
    }
    tok_ids_free(&ctx);
    tok_ids_free(&cont);
    if (rc) mc_request_free(r);
    return rc;
}

void mc_request_free(mc_request *r)
{
    free(r->ids);
    memset(r, 0, sizeof *r);
}

/* log softmax(x)[target] in double. */
static double row_logprob(const float *x, int64_t V, int32_t target)
{
    float mx = x[0];
    for (int64_t j = 1; j < V; j++) mx = x[j] > mx ? x[j] : mx;
    double s = 0;
    for (int64_t j = 0; j < V; j++) s += exp((double)x[j] - (double)mx);
    return (double)x[target] - (double)mx - log(s);
}

int mc_score(const tfm_model *m, tfm_acts *a, const mc_request *req, int64_t nreq, int64_t batch, double *ll,
             int64_t *fed)
{
    int64_t V = m->cfg.V, T = 0;
    int32_t *tok = upq_calloc((size_t)(batch * a->Tmax), sizeof *tok, "mc batch tokens");
    int rc = tok ? UPQ_OK : UPQ_EIO;
    for (int64_t r0 = 0; !rc && r0 < nreq; r0 += batch) {
        int64_t nb = nreq - r0 < batch ? nreq - r0 : batch;
        T = 0;
        for (int64_t b = 0; b < nb; b++) T = req[r0 + b].n - 1 > T ? req[r0 + b].n - 1 : T;
        UPQ_ASSERT(T >= 1 && T <= a->Tmax && nb <= a->Bmax && nb <= batch);
        memset(tok, 0, (size_t)(nb * T) * sizeof *tok);
        for (int64_t b = 0; b < nb; b++) {
            const mc_request *q = &req[r0 + b];
            for (int64_t t = 0; t < q->n - 1; t++) {
                if (q->ids[t] < 0 || q->ids[t] >= V)
                    rc = UPQ_FAIL(UPQ_EINPUT, "token id %d is outside the vocabulary [0, %lld)", q->ids[t],
                                  (long long)V);
                tok[b * T + t] = q->ids[t];
            }
            *fed += q->n - 1;
        }
        if (!rc) rc = tfm_forward(m, a, tok, nb, T, NULL);
        if (rc) break;
#pragma omp parallel for schedule(dynamic)
        for (int64_t b = 0; b < nb; b++) {
            const mc_request *q = &req[r0 + b];
            double s = 0;
            for (int64_t p = q->n - q->n_cont; p < q->n; p++)
                s += row_logprob(a->logits + (b * T + p - 1) * V, V, q->ids[p]);
            ll[r0 + b] = s;
        }
    }
    free(tok);
    return rc;
}

int64_t mc_utf8_len(const char *s)
{
    int64_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

void mc_pick(const double *ll, char *const *choices, int32_t n, int32_t *acc, int32_t *acc_norm)
{
    int32_t a = 0, b = 0;
    double bn = ll[0] / (double)mc_utf8_len(choices[0]);
    for (int32_t k = 1; k < n; k++) {
        double v = ll[k] / (double)mc_utf8_len(choices[k]);
        if (ll[k] > ll[a]) a = k;
        if (v > bn) b = k, bn = v;
    }
    *acc = a;
    *acc_norm = b;
}
