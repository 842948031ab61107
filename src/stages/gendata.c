/* gendata.c - upq gen-data (gendata.h). Items (prompt i, sample s) are numbered
 * j = i * K + s and taken in chunks; each rank decodes a contiguous share of a chunk with
 * gen_run (index0 = j of its first item, so the generator of item j is seeded from
 * (seed, j) whatever the split), the generated ids of the chunk are summed over ranks
 * (zeros elsewhere) and rank 0 decodes and appends the chunk's records to a temporary
 * file, renamed over the output at the end. */
#include "gendata.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "par.h"
#include "progress.h"
#include "upq_err.h"

void gendata_prompts_free(gd_prompt *p, int64_t n)
{
    for (int64_t i = 0; p && i < n; i++) {
        free(p[i].text);
        for (int k = 0; k < p[i].nmsg; k++) {
            free((char *)p[i].msg[k].role);
            free((char *)p[i].msg[k].content);
        }
        free(p[i].msg);
    }
    free(p);
}

static int grow(gd_prompt **p, int64_t n, int64_t *cap)
{
    if (n < *cap) return UPQ_OK;
    int64_t c = *cap ? 2 * *cap : 256;
    gd_prompt *q = realloc(*p, (size_t)c * sizeof *q);
    if (!q) return UPQ_FAIL(UPQ_EIO, "out of memory (prompts)");
    memset(q + *cap, 0, (size_t)(c - *cap) * sizeof *q);
    *p = q;
    *cap = c;
    return UPQ_OK;
}

static int add_msg(gd_prompt *p, const char *role, const char *content)
{
    chat_msg *m = realloc(p->msg, (size_t)(p->nmsg + 1) * sizeof *m);
    if (!m) return UPQ_FAIL(UPQ_EIO, "out of memory (prompts)");
    p->msg = m;
    m[p->nmsg].role = strdup(role);
    m[p->nmsg].content = strdup(content);
    p->nmsg++;
    return m[p->nmsg - 1].role && m[p->nmsg - 1].content ? UPQ_OK : UPQ_FAIL(UPQ_EIO, "out of memory (prompts)");
}

/* One JSONL record into p. */
static int parse_record(const char *line, const char *label, int chat, const char *system, gd_prompt *p)
{
    json_error_t err;
    json_t *o = json_loads(line, 0, &err);
    if (!o) return UPQ_FAIL(UPQ_EINPUT, "%s: invalid JSON: %s (column %d)", label, err.text, err.column);
    const json_t *ms = json_object_get(o, "messages"), *tx = json_object_get(o, "text");
    if (!tx) tx = json_object_get(o, "prompt");
    int rc = UPQ_OK;
    if (json_is_array(ms) && json_array_size(ms) > 0) {
        for (size_t i = 0; !rc && i < json_array_size(ms); i++) {
            const char *role = json_string_value(json_object_get(json_array_get(ms, i), "role"));
            const char *content = json_string_value(json_object_get(json_array_get(ms, i), "content"));
            if (!role || !content)
                rc = UPQ_FAIL(UPQ_EINPUT, "%s: message %zu needs string \"role\" and \"content\"", label, i);
            else rc = add_msg(p, role, content);
        }
    } else if (json_is_string(tx)) {
        if (chat && system) rc = add_msg(p, "system", system);
        if (!rc && chat) rc = add_msg(p, "user", json_string_value(tx));
        else if (!rc && !(p->text = strdup(json_string_value(tx)))) rc = UPQ_FAIL(UPQ_EIO, "out of memory");
    } else {
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: needs a string \"text\" or \"prompt\", or a non-empty \"messages\" array",
                      label);
    }
    json_decref(o);
    return rc;
}

/* The first nchar UTF-8 code points of s[0, len) (continuation bytes follow their lead). */
static int64_t utf8_prefix(const char *s, int64_t len, int64_t nchar)
{
    int64_t i = 0, k = 0;
    while (i < len) {
        if (((unsigned char)s[i] & 0xC0) != 0x80 && k++ == nchar) break;
        i++;
    }
    return i;
}

static int add_paragraph(gd_prompt **p, int64_t *n, int64_t *cap, const char *buf, int64_t len, int64_t C,
                         int64_t line)
{
    if (len == 0) return UPQ_OK;
    TRY(grow(p, *n, cap));
    (*p)[*n].line = line;
    int64_t k = utf8_prefix(buf, len, C);
    (*p)[*n].text = strndup(buf, (size_t)k);
    if (!(*p)[*n].text) return UPQ_FAIL(UPQ_EIO, "out of memory (prompts)");
    (*n)++;
    return UPQ_OK;
}

int gendata_read_prompts(const char *path, int64_t prefix_chars, int chat, const char *system, gd_prompt **p,
                         int64_t *n)
{
    *p = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) return UPQ_FAIL(UPQ_EINPUT, "%s: cannot open the prompt file", path);
    char *line = NULL, *para = NULL, label[4200];
    size_t lcap = 0;
    int64_t cap = 0, plen = 0, pcap = 0, pline = 0;
    ssize_t got;
    int rc = UPQ_OK;
    for (int64_t ln = 1; !rc && (got = getline(&line, &lcap, f)) > 0; ln++) {
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        int blank = 1;
        for (ssize_t i = 0; i < got && blank; i++) blank = line[i] == ' ' || line[i] == '\t';
        if (prefix_chars > 0) { /* paragraphs: lines joined with '\n' */
            if (blank) {
                rc = add_paragraph(p, n, &cap, para, plen, prefix_chars, pline);
                plen = 0;
                continue;
            }
            if (plen + got + 2 > pcap) {
                pcap = 2 * (plen + got + 2);
                char *q = realloc(para, (size_t)pcap);
                if (!q) {
                    rc = UPQ_FAIL(UPQ_EIO, "%s: out of memory", path);
                    break;
                }
                para = q;
            }
            if (plen) para[plen++] = '\n';
            else pline = ln;
            memcpy(para + plen, line, (size_t)got);
            plen += got;
            continue;
        }
        if (blank) continue;
        rc = grow(p, *n, &cap);
        snprintf(label, sizeof label, "%s:%lld", path, (long long)ln);
        if (!rc) (*p)[*n].line = ln;
        if (!rc) rc = parse_record(line, label, chat, system, &(*p)[*n]);
        (*n)++; /* freed with the others on failure */
    }
    if (!rc && prefix_chars > 0) rc = add_paragraph(p, n, &cap, para, plen, prefix_chars, pline);
    if (!rc && ferror(f)) rc = UPQ_FAIL(UPQ_EIO, "%s: read error", path);
    if (!rc && *n == 0) rc = UPQ_FAIL(UPQ_EINPUT, "%s: no prompts", path);
    for (int64_t i = 0; !rc && i < *n; i++)
        if ((*p)[i].nmsg == 0 && chat && prefix_chars > 0) {
            gd_prompt *q = &(*p)[i]; /* --chat on a text file: each prefix a user message */
            if (system) rc = add_msg(q, "system", system);
            if (!rc) rc = add_msg(q, "user", q->text);
            free(q->text);
            q->text = NULL;
        }
    free(line);
    free(para);
    fclose(f);
    if (rc) {
        gendata_prompts_free(*p, *n);
        *p = NULL;
        *n = 0;
    }
    return rc;
}

/* Prompt i as ids: the chat template with the generation prompt (no added specials) or
 * the tokenizer's BOS and the text. */
static int encode(tok_tokenizer *tok, const chat_template *t, const gd_prompt *p, int64_t i, tok_ids *ids)
{
    ids->n = 0;
    if (p->nmsg == 0) {
        if (tok_adds_bos(tok) && tok_bos(tok) >= 0) {
            ids->ids = malloc(64 * sizeof *ids->ids);
            if (!ids->ids) return UPQ_FAIL(UPQ_EIO, "out of memory");
            ids->cap = 64;
            ids->ids[ids->n++] = tok_bos(tok);
        }
        return tok_encode(tok, p->text, (int64_t)strlen(p->text), 0, ids);
    }
    if (!t)
        return UPQ_FAIL(UPQ_EINPUT, "prompt %lld (line %lld) is a conversation but the model has no chat template",
                        (long long)i, (long long)p->line);
    char *s = NULL;
    int64_t len = 0;
    int rc = chat_render(t, p->msg, p->nmsg, 1, &s, &len, NULL, NULL);
    if (!rc) rc = tok_encode(tok, s, len, 0, ids);
    free(s);
    if (rc) {
        char why[1024];
        snprintf(why, sizeof why, "%s", upq_errmsg());
        upq_fail_at(rc, __FILE__, __LINE__, "prompt %lld (line %lld): %s", (long long)i, (long long)p->line, why);
    }
    return rc;
}

/* s[0, len) as valid UTF-8 (malloc'ed): an invalid or cut sequence becomes U+FFFD. */
static char *utf8_clean(const char *s, int64_t len)
{
    char *o = malloc((size_t)(3 * len + 1));
    if (!o) return NULL;
    int64_t k = 0;
    for (int64_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        int ok = n > 0 && i + n <= len && !(n == 1 && c == 0);
        for (int j = 1; ok && j < n; j++) ok = ((unsigned char)s[i + j] & 0xC0) == 0x80;
        if (ok && n > 1) { /* overlong, surrogates, > U+10FFFF */
            uint32_t cp = c & (0x7F >> n);
            for (int j = 1; j < n; j++) cp = (cp << 6) | ((unsigned char)s[i + j] & 0x3F);
            ok = cp >= (n == 2 ? 0x80u : n == 3 ? 0x800u : 0x10000u) && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
        }
        if (ok) {
            memcpy(o + k, s + i, (size_t)n);
            k += n;
            i += n;
        } else {
            memcpy(o + k, "\xEF\xBF\xBD", 3);
            k += 3;
            i++;
        }
    }
    o[k] = 0;
    return o;
}

static json_t *jstr(const char *s, int64_t len)
{
    char *c = utf8_clean(s, len);
    json_t *j = c ? json_string(c) : NULL;
    free(c);
    return j;
}

/* One output line for prompt p and the generated text. */
static int write_record(FILE *f, const char *tmp, const gd_prompt *p, const char *gen, int64_t glen)
{
    json_t *o = json_object();
    if (p->nmsg == 0) {
        json_object_set_new(o, "prompt", jstr(p->text, (int64_t)strlen(p->text)));
        json_object_set_new(o, "completion", jstr(gen, glen));
    } else {
        json_t *a = json_array();
        for (int k = 0; k < p->nmsg; k++) {
            json_t *m = json_object();
            json_object_set_new(m, "role", jstr(p->msg[k].role, (int64_t)strlen(p->msg[k].role)));
            json_object_set_new(m, "content", jstr(p->msg[k].content, (int64_t)strlen(p->msg[k].content)));
            json_array_append_new(a, m);
        }
        json_t *m = json_object();
        json_object_set_new(m, "role", json_string("assistant"));
        json_object_set_new(m, "content", jstr(gen, glen));
        json_array_append_new(a, m);
        json_object_set_new(o, "messages", a);
    }
    char *s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT);
    json_decref(o);
    int rc = s && fprintf(f, "%s\n", s) >= 0 ? UPQ_OK : UPQ_FAIL(UPQ_EIO, "%s: cannot write", tmp);
    free(s);
    return rc;
}

/* Items [j0, j1) of this rank: generated ids into flat[(j - c0) * Kmax ..], counts cnt[j - c0]. */
static int decode_share(const tfm_model *m, const tok_tokenizer *tok, const tok_ids *prompts, int64_t K,
                        int64_t c0, int64_t j0, int64_t j1, const gen_opts *g0, int64_t *cnt, int64_t *flat)
{
    if (j1 <= j0) return UPQ_OK;
    int64_t nj = j1 - j0, L = g0->max_new_tokens;
    tok_ids *view = upq_calloc((size_t)nj, sizeof *view, "gen-data prompts");
    gen_result *res = upq_calloc((size_t)nj, sizeof *res, "gen-data results");
    int rc = view && res ? UPQ_OK : UPQ_EIO;
    for (int64_t j = j0; !rc && j < j1; j++) view[j - j0] = prompts[j / K];
    gen_opts g = *g0;
    g.index0 = j0;
    if (!rc) rc = gen_run(m, tok, view, nj, &g, res);
    for (int64_t j = j0; !rc && j < j1; j++) {
        const tok_ids *v = &res[j - j0].ids;
        UPQ_ASSERT(v->n <= L);
        cnt[j - c0] = v->n;
        for (int64_t t = 0; t < v->n; t++) flat[(j - c0) * L + t] = v->ids[t];
    }
    for (int64_t i = 0; res && i < nj; i++) gen_result_free(&res[i]);
    free(res);
    free(view);
    return rc;
}

/* Rank 0: the chunk's records, decoded from the summed ids. */
static int write_chunk(FILE *f, const char *tmp, const tok_tokenizer *tok, const gd_prompt *p, int64_t K,
                       int64_t c0, int64_t c1, const int64_t *cnt, const int64_t *flat, int64_t L, int64_t *ntok)
{
    int32_t *ids = upq_malloc((size_t)L * sizeof *ids, "gen-data ids");
    if (!ids) return UPQ_EIO;
    int rc = UPQ_OK;
    for (int64_t j = c0; !rc && j < c1; j++) {
        int64_t k = cnt[j - c0], len = 0;
        for (int64_t t = 0; t < k; t++) ids[t] = (int32_t)flat[(j - c0) * L + t];
        char *text = NULL;
        rc = tok_decode(tok, ids, k, 1, &text, &len);
        if (!rc) rc = write_record(f, tmp, &p[j / K], text, len);
        free(text);
        *ntok += k;
    }
    free(ids);
    return rc;
}

int gendata_run(const tfm_model *m, tok_tokenizer *tok, const chat_template *tmpl, const gd_prompt *p, int64_t n,
                const gendata_opts *o, const char *out)
{
    UPQ_ASSERT(o->n_samples >= 1 && o->g.max_new_tokens > 0 && o->g.batch >= 1);
    int64_t P = par_size(), r = par_rank(), K = o->n_samples, N = n * K, L = o->g.max_new_tokens;
    int64_t C = 4 * o->g.batch * P; /* items per chunk */
    if (C > N) C = N;
    tok_ids *prompts = upq_calloc((size_t)n, sizeof *prompts, "gen-data prompts");
    int64_t *cnt = upq_calloc((size_t)C, sizeof *cnt, "gen-data counts");
    int64_t *flat = upq_calloc((size_t)(C * L), sizeof *flat, "gen-data ids");
    int rc = prompts && cnt && flat ? UPQ_OK : UPQ_EIO;
    for (int64_t i = 0; !rc && i < n; i++) {
        rc = encode(tok, tmpl, &p[i], i, &prompts[i]);
        if (!rc && (prompts[i].n < 1 || prompts[i].n >= m->cfg.max_T))
            rc = UPQ_FAIL(UPQ_EINPUT, "prompt %lld (line %lld) has %lld tokens; want 1 to %lld (the model's context)",
                          (long long)i, (long long)p[i].line, (long long)prompts[i].n, (long long)m->cfg.max_T - 1);
    }
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    FILE *f = NULL;
    if (!rc && r == 0 && !(f = fopen(tmp, "w"))) rc = UPQ_FAIL(UPQ_EIO, "%s: cannot create", tmp);
    rc = par_agree(rc);
    prog pg;
    prog_init(&pg, o->progress && r == 0 ? stderr : NULL, "gen-data", "sample", N);
    int64_t ntok = 0;
    char extra[64];
    for (int64_t c0 = 0; !rc && c0 < N; c0 += C) {
        int64_t c1 = c0 + C < N ? c0 + C : N, nc = c1 - c0;
        memset(cnt, 0, (size_t)nc * sizeof *cnt);
        memset(flat, 0, (size_t)(nc * L) * sizeof *flat);
        rc = decode_share(m, tok, prompts, K, c0, c0 + nc * r / P, c0 + nc * (r + 1) / P, &o->g, cnt, flat);
        rc = par_agree(rc);
        if (!rc) rc = par_sum_i64(cnt, nc);
        if (!rc) rc = par_sum_i64(flat, nc * L);
        if (!rc && r == 0) rc = write_chunk(f, tmp, tok, p, K, c0, c1, cnt, flat, L, &ntok);
        rc = par_agree(rc);
        snprintf(extra, sizeof extra, "%lld tokens", (long long)ntok);
        if (!rc) prog_update(&pg, c1, extra);
    }
    prog_end(&pg);
    if (f && fclose(f) && !rc) rc = UPQ_FAIL(UPQ_EIO, "%s: cannot write", tmp);
    if (!rc && r == 0 && rename(tmp, out)) rc = UPQ_FAIL(UPQ_EIO, "%s: cannot rename to %s", tmp, out);
    if (rc && r == 0 && f) remove(tmp);
    rc = par_agree(rc);
    for (int64_t i = 0; prompts && i < n; i++) tok_ids_free(&prompts[i]);
    free(prompts);
    free(cnt);
    free(flat);
    return rc;
}
