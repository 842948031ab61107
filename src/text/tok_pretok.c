/* tok_pretok.c - pre-tokenizers as HF `tokenizers` applies them: Split (regex through
 * PCRE2 with Unicode properties, or a literal; the five delimiter behaviors; invert),
 * ByteLevel (optional prefix space, the GPT-2 split regex, byte -> unicode alphabet),
 * Metaspace (' ' -> '▁', prepend scheme, optional split); Digits is a Split on \p{N}
 * (tok_pipeline.c); a Sequence is the list of steps. Pieces flow through the steps in a tok_pieces buffer.
 * Not the added-token split or the normalizer (tok_encode.c), not BPE (tok_bpe.c). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "tok_internal.h"
#include "upq_err.h"

/* ---- spans: a piece cut into (start, end, is_match) runs, as Pattern::find_matches ---- */
typedef struct {
    int64_t s, e;
    int m;
} span;

typedef struct {
    span *v;
    int64_t n, cap;
} spans;

static int span_push(spans *sp, int64_t s, int64_t e, int m)
{
    if (sp->n == sp->cap) {
        int64_t nc = sp->cap ? 2 * sp->cap : 64;
        span *q = realloc(sp->v, (size_t)nc * sizeof *q);
        if (!q) return UPQ_FAIL(UPQ_EIO, "out of memory in the tokenizer's split");
        sp->v = q;
        sp->cap = nc;
    }
    sp->v[sp->n++] = (span){s, e, m};
    return UPQ_OK;
}

/* Regex matches of s (n bytes). An empty match is kept (as onig's find_iter yields it)
 * and the search resumes one character later. */
static int find_regex(const pcre2_code *re, pcre2_match_data *md, const char *s, int64_t n, spans *sp)
{
    int64_t prev = 0, at = 0;
    while (at <= n) {
        int rc = pcre2_match(re, (PCRE2_SPTR)s, (PCRE2_SIZE)n, (PCRE2_SIZE)at, 0, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) return UPQ_FAIL(UPQ_EINPUT, "tokenizer split regex failed (PCRE2 error %d)", rc);
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        int64_t ms = (int64_t)ov[0], me = (int64_t)ov[1];
        if (prev != ms) TRY(span_push(sp, prev, ms, 0));
        TRY(span_push(sp, ms, me, 1));
        prev = me;
        if (me > ms) {
            at = me;
        } else {
            if (me >= n) break;
            uint32_t cp;
            at = me + tok_utf8_next(s + me, n - me, &cp);
        }
    }
    if (prev != n) TRY(span_push(sp, prev, n, 0));
    return UPQ_OK;
}

static int find_literal(const char *lit, const char *s, int64_t n, spans *sp)
{
    int64_t L = (int64_t)strlen(lit), prev = 0;
    if (L > 0)
        for (int64_t i = 0; i + L <= n;) {
            if (!memcmp(s + i, lit, (size_t)L)) {
                if (prev != i) TRY(span_push(sp, prev, i, 0));
                TRY(span_push(sp, i, i + L, 1));
                i += L;
                prev = i;
            } else {
                i++;
            }
        }
    if (prev != n) TRY(span_push(sp, prev, n, 0));
    return UPQ_OK;
}

/* Applies a delimiter behavior in place: afterwards v[0..n) are the pieces to keep
 * (m = 1 marks a removed one). Mirrors NormalizedString::split. */
static void apply_behavior(spans *sp, int behavior)
{
    int64_t k = 0;
    int prev_match = 0;
    if (behavior == TOK_SPLIT_ISOLATED) {
        for (int64_t i = 0; i < sp->n; i++) sp->v[i].m = 0;
        return;
    }
    if (behavior == TOK_SPLIT_REMOVED) return;
    if (behavior == TOK_SPLIT_MERGED_NEXT) {
        /* right to left: a match joins the piece after it unless that one was a match */
        k = sp->n;
        for (int64_t i = sp->n - 1; i >= 0; i--) {
            span c = sp->v[i];
            if (c.m && !prev_match && k < sp->n)
                sp->v[k].s = c.s;
            else
                sp->v[--k] = (span){c.s, c.e, 0};
            prev_match = c.m;
        }
        memmove(sp->v, sp->v + k, (size_t)(sp->n - k) * sizeof *sp->v);
        sp->n -= k;
        return;
    }
    for (int64_t i = 0; i < sp->n; i++) {
        span c = sp->v[i];
        int join = behavior == TOK_SPLIT_CONTIGUOUS ? c.m == prev_match : c.m && !prev_match;
        if (join && k > 0)
            sp->v[k - 1].e = c.e;
        else
            sp->v[k++] = (span){c.s, c.e, 0};
        prev_match = c.m;
    }
    sp->n = k;
}

static int emit_spans(tok_pieces *out, const spans *sp, const char *s, int first)
{
    for (int64_t i = 0; i < sp->n; i++)
        if (!sp->v[i].m && sp->v[i].e > sp->v[i].s)
            TRY(tok_pieces_add(out, s + sp->v[i].s, sp->v[i].e - sp->v[i].s, first && sp->v[i].s == 0));
    return UPQ_OK;
}

static int split_piece(tok_tokenizer *t, const tok_pre_step *st, const char *s, int64_t n, int first,
                       int behavior, spans *sp, tok_pieces *out)
{
    sp->n = 0;
    if (st->re)
        TRY(find_regex(st->re, t->md, s, n, sp));
    else
        TRY(find_literal(st->literal, s, n, sp));
    if (st->invert)
        for (int64_t i = 0; i < sp->n; i++) sp->v[i].m = !sp->v[i].m;
    apply_behavior(sp, behavior);
    return emit_spans(out, sp, s, first);
}

static int bytelevel_piece(tok_tokenizer *t, const tok_pre_step *st, const char *s, int64_t n,
                           int first, spans *sp, tok_pieces *out)
{
    char *tmp = NULL;
    if (st->add_prefix_space && (n == 0 || s[0] != ' ')) {
        tmp = malloc((size_t)n + 1);
        if (!tmp) return UPQ_FAIL(UPQ_EIO, "out of memory in the tokenizer");
        tmp[0] = ' ';
        memcpy(tmp + 1, s, (size_t)n);
        s = tmp;
        n++;
    }
    int rc = UPQ_OK;
    sp->n = 0;
    if (st->re) {
        rc = find_regex(st->re, t->md, s, n, sp);
        if (!rc) apply_behavior(sp, TOK_SPLIT_ISOLATED);
    } else if (n > 0) {
        rc = span_push(sp, 0, n, 0);
    }
    for (int64_t i = 0; !rc && i < sp->n; i++)
        if (sp->v[i].e > sp->v[i].s)
            rc = tok_bytelevel_map(out, s + sp->v[i].s, sp->v[i].e - sp->v[i].s, first && sp->v[i].s == 0);
    free(tmp);
    return rc;
}

static int metaspace_piece(const tok_pre_step *st, const char *s, int64_t n, int first, spans *sp,
                           tok_pieces *out)
{
    int64_t R = (int64_t)strlen(st->repl), spaces = 0;
    for (int64_t i = 0; i < n; i++) spaces += s[i] == ' ';
    char *w = malloc((size_t)(n + spaces * R + R + 1));
    if (!w) return UPQ_FAIL(UPQ_EIO, "out of memory in the tokenizer (%lld bytes)", (long long)n);
    int64_t wn = 0;
    int prepend = st->prepend_scheme == TOK_PREPEND_ALWAYS || (st->prepend_scheme == TOK_PREPEND_FIRST && first);
    /* HF tests the replaced string: it may start with ' ' (now the replacement) or with
     * the replacement itself. */
    int starts = n > 0 && (s[0] == ' ' || (n >= R && !memcmp(s, st->repl, (size_t)R)));
    if (prepend && !starts && n > 0) {
        memcpy(w, st->repl, (size_t)R);
        wn = R;
    }
    for (int64_t i = 0; i < n; i++) {
        if (s[i] == ' ') {
            memcpy(w + wn, st->repl, (size_t)R);
            wn += R;
        } else {
            w[wn++] = s[i];
        }
    }
    int rc = UPQ_OK;
    if (!st->split) {
        if (wn) rc = tok_pieces_add(out, w, wn, first);
    } else {
        sp->n = 0;
        rc = find_literal(st->repl, w, wn, sp);
        if (!rc) {
            apply_behavior(sp, TOK_SPLIT_MERGED_NEXT);
            rc = emit_spans(out, sp, w, first);
        }
    }
    free(w);
    return rc;
}

int tok_pretokenize(tok_tokenizer *t, const char *s, int64_t n, int first, tok_pieces **out)
{
    tok_pieces *a = &t->pa, *b = &t->pb;
    tok_pieces_clear(a);
    TRY(tok_pieces_add(a, s, n, first));
    spans sp = {0};
    int rc = UPQ_OK;
    for (int k = 0; !rc && k < t->n_pre; k++) {
        const tok_pre_step *st = &t->pre[k];
        tok_pieces_clear(b);
        for (int64_t i = 0; !rc && i < a->n; i++) {
            const char *ps = a->buf + a->off[i];
            int64_t pn = a->len[i];
            int pf = a->first[i];
            switch (st->kind) {
            case TOK_PRE_SPLIT: rc = split_piece(t, st, ps, pn, pf, st->behavior, &sp, b); break;
            case TOK_PRE_BYTELEVEL: rc = bytelevel_piece(t, st, ps, pn, pf, &sp, b); break;
            default: rc = metaspace_piece(st, ps, pn, pf, &sp, b); break;
            }
        }
        tok_pieces *x = a;
        a = b;
        b = x;
    }
    free(sp.v);
    *out = a;
    return rc;
}
