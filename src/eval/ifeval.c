/* ifeval.c - the instruction checks of ifeval.h, transcribed from the reference checker
 * in ../shared/data/instruct-eval/CHECKS.md: format instructions are checked and
 * peeled off in the fixed order end_with, json_answer, quotes, then the content
 * instruction is compared byte for byte with expected(type, kwargs). Strings are
 * (pointer, length) pairs: a response may hold any byte, a JSON payload even NUL.
 * Not the JSONL reader of whole files and not generation (cmd_eval.c). */
#include "ifeval.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upq_err.h"

static const char *const TYPE_NAMES[IFE_NTYPES] = {
    "repeat",        "uppercase",     "lowercase",     "reverse_words", "first_n_words", "last_word",
    "count_words",   "remove_commas", "number_words",  "end_with",      "json_answer",   "quotes"};

const char *ife_type_name(ife_type t) { return t >= 0 && t < IFE_NTYPES ? TYPE_NAMES[t] : "?"; }

int ife_type_from_name(const char *s)
{
    for (int t = 0; t < IFE_NTYPES; t++)
        if (!strcmp(s, TYPE_NAMES[t])) return t;
    return -1;
}

int ife_type_is_content(ife_type t) { return t < IFE_END_WITH; }

/* ---- strings ---------------------------------------------------------------------- */

/* CHECKS.md's WS: the six ASCII whitespace characters, nothing else. */
static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

static size_t rstrip_len(const char *s, size_t n)
{
    while (n > 0 && is_ws(s[n - 1])) n--;
    return n;
}

/* strip: *s advanced past leading WS, the length without leading and trailing WS returned. */
static size_t strip(const char **s, size_t n)
{
    while (n > 0 && is_ws(**s)) {
        (*s)++;
        n--;
    }
    return rstrip_len(*s, n);
}

static int is_ascii_alnum(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* ---- expected(type, kwargs) ------------------------------------------------------- */

/* words(S) = S split on every single space (Python's s.split(" ")): k words, word i is
 * S[start[i], start[i] + len[i]). Returns k; start/len (may be NULL) need k entries. */
static int64_t split_words(const char *s, size_t n, size_t *start, size_t *len)
{
    int64_t k = 0;
    size_t b = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && s[i] != ' ') continue;
        if (start) {
            start[k] = b;
            len[k] = i - b;
        }
        k++;
        b = i + 1;
    }
    return k;
}

/* Appends s[0..n) at *o. */
static void put(char **o, const char *s, size_t n)
{
    memcpy(*o, s, n);
    *o += n;
}

static void put_joined(char **o, const char *s, const size_t *st, const size_t *ln, int64_t i0, int64_t i1,
                       int64_t step)
{
    for (int64_t i = i0, first = 1; i != i1; i += step, first = 0) {
        if (!first) put(o, " ", 1);
        put(o, s + st[i], ln[i]);
    }
}

/* The payload of a content type into out (room enough: see ife_expected); returns its end. */
static char *expected_into(char *o, const ife_inst *in, const char *s, size_t n, const size_t *st,
                           const size_t *ln, int64_t k)
{
    switch (in->type) {
    case IFE_REPEAT: put(&o, s, n); break;
    case IFE_UPPERCASE:
        for (size_t i = 0; i < n; i++) *o++ = s[i] >= 'a' && s[i] <= 'z' ? (char)(s[i] - 'a' + 'A') : s[i];
        break;
    case IFE_LOWERCASE:
        for (size_t i = 0; i < n; i++) *o++ = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
        break;
    case IFE_REVERSE_WORDS: put_joined(&o, s, st, ln, k - 1, -1, -1); break;
    case IFE_FIRST_N_WORDS: { /* Python's w[:n], negative n included */
        int64_t m = in->n < 0 ? k + in->n : in->n;
        m = m < 0 ? 0 : m > k ? k : m;
        put_joined(&o, s, st, ln, 0, m, 1);
        break;
    }
    case IFE_LAST_WORD: {
        const char *x = s + st[k - 1];
        size_t i = 0, j = ln[k - 1];
        while (i < j && !is_ascii_alnum(x[i])) i++;
        while (j > i && !is_ascii_alnum(x[j - 1])) j--;
        put(&o, x + i, j - i);
        break;
    }
    case IFE_COUNT_WORDS: o += sprintf(o, "%lld", (long long)k); break;
    case IFE_REMOVE_COMMAS:
        for (size_t i = 0; i < n; i++)
            if (s[i] != ',') *o++ = s[i];
        break;
    case IFE_NUMBER_WORDS:
        for (int64_t i = 0; i < k; i++) {
            o += sprintf(o, i ? "\n%lld. " : "%lld. ", (long long)(i + 1));
            put(&o, s + st[i], ln[i]);
        }
        break;
    default: UPQ_ASSERT(!"not a content type");
    }
    return o;
}

int ife_expected(const ife_inst *in, char **out, size_t *len)
{
    UPQ_ASSERT(ife_type_is_content(in->type) && in->sentence);
    const char *s = in->sentence;
    size_t n = strlen(s);
    int64_t k = split_words(s, n, NULL, NULL);
    size_t *st = upq_malloc(2 * (size_t)k * sizeof *st, "ifeval words");
    /* the longest payload: number_words, each word with at most 20 digits, ". " and "\n" */
    char *buf = upq_malloc(n + (size_t)k * 24 + 32, "ifeval expected answer");
    if (!st || !buf) {
        free(st);
        free(buf);
        return UPQ_EIO;
    }
    split_words(s, n, st, st + k);
    char *end = expected_into(buf, in, s, n, st, st + k, k);
    *end = 0;
    *len = (size_t)(end - buf);
    *out = buf;
    free(st);
    return UPQ_OK;
}

/* ---- the json_answer grammar ------------------------------------------------------ */

typedef struct {
    const char *p, *end;
} jcur;

static void jws(jcur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int hex4(jcur *c, unsigned *v)
{
    if (c->end - c->p < 4) return 0;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char h = *c->p++;
        int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
        if (d < 0) return 0;
        *v = *v * 16 + (unsigned)d;
    }
    return 1;
}

static char *put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | cp >> 12);
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | cp >> 18);
        *o++ = (char)(0x80 | (cp >> 12 & 0x3F));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* \u escape after the 'u': one code point, a surrogate pair taken whole. */
static int jescape_u(jcur *c, char **o)
{
    unsigned v, lo;
    if (!hex4(c, &v)) return 0;
    if (v >= 0xDC00 && v <= 0xDFFF) return 0; /* lone low surrogate */
    if (v >= 0xD800 && v <= 0xDBFF) {
        if (c->end - c->p < 2 || c->p[0] != '\\' || c->p[1] != 'u') return 0;
        c->p += 2;
        if (!hex4(c, &lo) || lo < 0xDC00 || lo > 0xDFFF) return 0;
        v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
    }
    *o = put_utf8(*o, v);
    return 1;
}

/* A JSON string at c (starting at '"'), decoded into o; *oend its end. Decoding never
 * makes a string longer than its source text. */
static int jstring(jcur *c, char *o, char **oend)
{
    if (c->p >= c->end || *c->p != '"') return 0;
    c->p++;
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p++;
        if (ch == '"') {
            *oend = o;
            return 1;
        }
        if (ch < 0x20) return 0;
        if (ch != '\\') {
            *o++ = (char)ch;
            continue;
        }
        if (c->p >= c->end) return 0;
        char e = *c->p++;
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t", *at = e ? strchr(from, e) : NULL;
        if (at) *o++ = to[at - from];
        else if (e != 'u' || !jescape_u(c, &o)) return 0;
    }
    return 0;
}

/* integer := '-'? ('0' | [1-9][0-9]*), copied as written. */
static int jinteger(jcur *c, char *o, char **oend)
{
    const char *b = c->p;
    if (c->p < c->end && *c->p == '-') c->p++;
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') return 0;
    if (*c->p++ != '0')
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') c->p++;
    if (c->p < c->end && (*c->p == '.' || *c->p == 'e' || *c->p == 'E')) return 0;
    memcpy(o, b, (size_t)(c->p - b));
    *oend = o + (c->p - b);
    return 1;
}

int ife_json_answer(const char *t, size_t n, char *payload, size_t *plen)
{
    jcur c = {t, t + n};
    char *end = payload;
    if (n == 0 || *c.p++ != '{') return 0;
    jws(&c);
    /* the member name is decoded into payload first: it is never longer than n */
    if (!jstring(&c, payload, &end) || end - payload != 6 || memcmp(payload, "answer", 6)) return 0;
    jws(&c);
    if (c.p >= c.end || *c.p++ != ':') return 0;
    jws(&c);
    int ok = c.p < c.end && *c.p == '"' ? jstring(&c, payload, &end) : jinteger(&c, payload, &end);
    if (!ok) return 0;
    jws(&c);
    if (c.p >= c.end || *c.p++ != '}' || c.p != c.end) return 0;
    *plen = (size_t)(end - payload);
    return 1;
}

/* ---- checking a response ---------------------------------------------------------- */

static int find_type(const ife_item *it, ife_type t)
{
    for (int i = 0; i < it->ninst; i++)
        if (it->inst[i].type == t) return i;
    return -1;
}

int ife_check(const ife_item *it, const char *r, size_t n, uint8_t *pass)
{
    int none = 0, i;
    char *buf = NULL;
    memset(pass, 0, (size_t)it->ninst);
    if ((i = find_type(it, IFE_END_WITH)) >= 0) {
        size_t t = rstrip_len(r, n), pl = strlen(it->inst[i].phrase);
        pass[i] = t >= pl && !memcmp(r + t - pl, it->inst[i].phrase, pl);
        if (pass[i]) n = t - pl;
    }
    if ((i = find_type(it, IFE_JSON_ANSWER)) >= 0) {
        const char *s = r;
        size_t m = strip(&s, n), pl = 0;
        if (!(buf = upq_malloc(m + 1, "ifeval json payload"))) return UPQ_EIO;
        pass[i] = (uint8_t)ife_json_answer(s, m, buf, &pl);
        none = !pass[i];
        r = buf;
        n = pl;
    }
    if ((i = find_type(it, IFE_QUOTES)) >= 0 && !none) {
        const char *s = r;
        size_t m = strip(&s, n);
        pass[i] = m >= 2 && s[0] == '"' && s[m - 1] == '"';
        if (pass[i]) {
            r = s + 1;
            n = m - 2;
        }
    }
    const char *s = r;
    size_t m = strip(&s, n);
    for (i = 0; i < it->ninst && !none; i++) {
        if (!ife_type_is_content(it->inst[i].type)) continue;
        char *want = NULL;
        size_t wl = 0;
        if (ife_expected(&it->inst[i], &want, &wl)) {
            free(buf);
            return UPQ_EIO;
        }
        pass[i] = wl == m && !memcmp(want, s, m);
        free(want);
    }
    free(buf);
    return UPQ_OK;
}

/* IFEval's variant v of r (bit 0: drop the first line, bit 1: the last line, bit 2: drop
 * every '*') into o; returns its length. */
static size_t loose_variant(const char *r, size_t n, int v, char *o)
{
    const char *b = r, *e = r + n;
    if (v & 3) {
        const char *nl1 = memchr(r, '\n', n), *nl2 = nl1;
        for (const char *p = nl1; p; p = memchr(p + 1, '\n', (size_t)(r + n - p - 1))) nl2 = p;
        if (!nl1) e = b; /* a single line: "\n".join of nothing */
        if (nl1 && (v & 1)) b = nl1 + 1;
        if (nl1 && (v & 2)) e = nl2;
        if (e < b) e = b;
        size_t m = strip(&b, (size_t)(e - b));
        e = b + m;
    }
    size_t k = 0;
    for (const char *p = b; p < e; p++)
        if (!(v & 4) || *p != '*') o[k++] = *p;
    return k;
}

int ife_check_loose(const ife_item *it, const char *r, size_t n, uint8_t *pass)
{
    static const int order[8] = {0, 4, 1, 2, 3, 5, 6, 7}; /* IFEval's list order */
    char *v = upq_malloc(n + 1, "ifeval loose variant");
    if (!v) return UPQ_EIO;
    uint8_t one[IFE_MAX_INST];
    memset(pass, 0, (size_t)it->ninst);
    int rc = UPQ_OK;
    for (int k = 0; k < 8 && !rc; k++) {
        size_t m = loose_variant(r, n, order[k], v);
        const char *s = v;
        if (strip(&s, m) == 0) continue;
        rc = ife_check(it, v, m, one);
        for (int i = 0; !rc && i < it->ninst; i++) pass[i] |= one[i];
    }
    free(v);
    return rc;
}

void ife_stats_add(ife_stats *s, const ife_item *it, const uint8_t *strict, const uint8_t *loose)
{
    const uint8_t *v[2] = {strict, loose};
    s->prompts++;
    s->insts += it->ninst;
    for (int m = 0; m < 2; m++) {
        int all = 1;
        for (int i = 0; i < it->ninst; i++) {
            all &= v[m][i] != 0;
            s->inst_pass[m] += v[m][i] != 0;
            s->type_pass[m][it->inst[i].type] += v[m][i] != 0;
        }
        s->prompt_pass[m] += all;
    }
    for (int i = 0; i < it->ninst; i++) s->type_n[it->inst[i].type]++;
}

/* ---- parsing an eval item --------------------------------------------------------- */

static char *dup_str(const json_t *j)
{
    const char *s = json_string_value(j);
    return s ? strdup(s) : NULL;
}

static int parse_inst(const json_t *o, const char *label, int i, ife_inst *in)
{
    const char *tn = json_string_value(json_object_get(o, "type"));
    const json_t *kw = json_object_get(o, "kwargs");
    int t = tn ? ife_type_from_name(tn) : -1;
    if (t < 0)
        return UPQ_FAIL(UPQ_EINPUT, "%s: instructions[%d]: unknown or missing \"type\" '%s'", label, i, tn ? tn : "");
    in->type = (ife_type)t;
    if (ife_type_is_content(in->type)) {
        const json_t *s = json_object_get(kw, "sentence");
        if (!json_is_string(s) || json_string_length(s) == 0 || json_string_length(s) != strlen(json_string_value(s)))
            return UPQ_FAIL(UPQ_EINPUT, "%s: instructions[%d] (%s): kwargs.sentence must be a non-empty string", label, i, tn);
        if (!(in->sentence = dup_str(s))) return UPQ_FAIL(UPQ_EIO, "out of memory");
    }
    if (in->type == IFE_FIRST_N_WORDS) {
        const json_t *n = json_object_get(kw, "n");
        if (!json_is_integer(n)) return UPQ_FAIL(UPQ_EINPUT, "%s: instructions[%d] (first_n_words): kwargs.n must be an integer", label, i);
        in->n = (int64_t)json_integer_value(n);
    }
    if (in->type == IFE_END_WITH) {
        const json_t *p = json_object_get(kw, "phrase");
        if (!json_is_string(p) || json_string_length(p) != strlen(json_string_value(p)))
            return UPQ_FAIL(UPQ_EINPUT, "%s: instructions[%d] (end_with): kwargs.phrase must be a string", label, i);
        if (!(in->phrase = dup_str(p))) return UPQ_FAIL(UPQ_EIO, "out of memory");
    }
    return UPQ_OK;
}

static int parse_fields(const json_t *o, const char *label, ife_item *it)
{
    const json_t *ms = json_object_get(o, "messages"), *is = json_object_get(o, "instructions");
    const json_t *ref = json_object_get(o, "reference");
    if (!json_is_string(json_object_get(o, "id"))) return UPQ_FAIL(UPQ_EINPUT, "%s: needs a string \"id\"", label);
    if (!(it->id = dup_str(json_object_get(o, "id")))) return UPQ_FAIL(UPQ_EIO, "out of memory");
    if (!json_is_array(ms) || json_array_size(ms) < 1 || json_array_size(ms) > IFE_MAX_MSG)
        return UPQ_FAIL(UPQ_EINPUT, "%s: \"messages\" must be an array of 1..%d messages", label, IFE_MAX_MSG);
    for (size_t i = 0; i < json_array_size(ms); i++, it->nmsg++) {
        const json_t *m = json_array_get(ms, i);
        it->msg[i].role = dup_str(json_object_get(m, "role"));
        it->msg[i].content = dup_str(json_object_get(m, "content"));
        if (!it->msg[i].role || !it->msg[i].content)
            return UPQ_FAIL(UPQ_EINPUT, "%s: messages[%zu] needs string \"role\" and \"content\"", label, i);
    }
    if (!json_is_array(is) || json_array_size(is) < 1 || json_array_size(is) > IFE_MAX_INST)
        return UPQ_FAIL(UPQ_EINPUT, "%s: \"instructions\" must be an array of 1..%d instructions", label, IFE_MAX_INST);
    for (size_t i = 0; i < json_array_size(is); i++) {
        TRY(parse_inst(json_array_get(is, i), label, (int)i, &it->inst[i]));
        if (find_type(it, it->inst[i].type) >= 0)
            return UPQ_FAIL(UPQ_EINPUT, "%s: two instructions of type %s", label, ife_type_name(it->inst[i].type));
        it->ninst++;
    }
    if (json_is_string(ref)) {
        it->reference_len = json_string_length(ref);
        if (!(it->reference = malloc(it->reference_len + 1))) return UPQ_FAIL(UPQ_EIO, "out of memory");
        memcpy(it->reference, json_string_value(ref), it->reference_len + 1);
    }
    return UPQ_OK;
}

int ife_item_parse(const char *line, size_t len, const char *label, ife_item *it)
{
    memset(it, 0, sizeof *it);
    json_error_t err;
    json_t *o = json_loadb(line, len, JSON_ALLOW_NUL, &err);
    if (!o) return UPQ_FAIL(UPQ_EINPUT, "%s: invalid JSON: %s (column %d)", label, err.text, err.column);
    int rc = json_is_object(o) ? parse_fields(o, label, it) : UPQ_FAIL(UPQ_EINPUT, "%s: not a JSON object", label);
    json_decref(o);
    if (rc) ife_item_free(it);
    return rc;
}

void ife_item_free(ife_item *it)
{
    free(it->id);
    for (int i = 0; i < IFE_MAX_MSG; i++) {
        free(it->msg[i].role);
        free(it->msg[i].content);
    }
    for (int i = 0; i < IFE_MAX_INST; i++) {
        free(it->inst[i].sentence);
        free(it->inst[i].phrase);
    }
    free(it->reference);
    memset(it, 0, sizeof *it);
}
