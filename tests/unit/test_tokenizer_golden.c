/* test_tokenizer_golden.c - the C tokenizer against HF `tokenizers` 0.23 outputs stored
 * in ../shared/models/<model>/golden.h5: every tokenizer/<case> (ids without specials,
 * ids_with_special, decoded), the prompt with and without specials, and the whole
 * wikitext-2 test text (REFERENCE.md join) and tiny shakespeare streams; decode(encode(x))
 * == x on those texts where HF's decode round-trips (checked against HF's own decoded). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h5arrays.h"
#include "test_util.h"
#include "tokenizer.h"
#include "upq_err.h"

/* NULL when absent (the caller's CHECK names the case). */
static char *attr_str(const char *h5, const char *obj, const char *name)
{
    char *v = NULL;
    return h5a_read_attr_str(h5, obj, name, &v) ? NULL : v;
}

static int32_t *attr_ids(const char *h5, const char *obj, const char *name, int64_t *n)
{
    int32_t *v = NULL;
    return h5a_read_attr_i32(h5, obj, name, &v, n) ? NULL : v;
}

static int32_t *dset_ids(const char *h5, const char *path, int64_t *n)
{
    int32_t *v = NULL;
    return h5a_read_i32(h5, path, &v, n) ? NULL : v;
}

/* Compares ids; prints the first difference. Returns 1 when equal. */
static int same_ids(const char *what, const int32_t *got, int64_t ng, const int32_t *want, int64_t nw)
{
    int64_t i = 0;
    while (i < ng && i < nw && got[i] == want[i]) i++;
    if (i == ng && i == nw) return 1;
    fprintf(stderr, "FAIL %s: %lld ids vs %lld expected; first difference at %lld: got %d want %d\n", what,
            (long long)ng, (long long)nw, (long long)i, i < ng ? got[i] : -1, i < nw ? want[i] : -1);
    return 0;
}

static void check_text(tok_tokenizer *t, const char *label, const char *text, const int32_t *want,
                       int64_t nw, const int32_t *want_sp, int64_t nws, const char *decoded)
{
    tok_ids ids = {0};
    CHECK_OK(tok_encode(t, text, (int64_t)strlen(text), 0, &ids));
    if (!same_ids(label, ids.ids, ids.n, want, nw)) tu_failures++;
    if (want_sp) {
        tok_ids sp = {0};
        CHECK_OK(tok_encode(t, text, (int64_t)strlen(text), 1, &sp));
        char l2[300];
        snprintf(l2, sizeof l2, "%s (with specials)", label);
        if (!same_ids(l2, sp.ids, sp.n, want_sp, nws)) tu_failures++;
        tok_ids_free(&sp);
    }
    if (decoded) {
        char *d = NULL;
        int64_t dl = 0;
        CHECK_OK(tok_decode(t, want, nw, 0, &d, &dl));
        CHECK_MSG(d && !strcmp(d, decoded), "%s: decode gives '%s', HF '%s'", label, d ? d : "(null)", decoded);
        /* round trip exactly where HF's does */
        if (!strcmp(decoded, text)) CHECK_MSG(d && !strcmp(d, text), "%s: decode(encode(x)) != x", label);
        else fprintf(stderr, "%s: HF's decode does not round-trip either: '%s' -> '%s'\n", label, text, decoded);
        free(d);
    }
    tok_ids_free(&ids);
}

static void each_case(tok_tokenizer *t, const char *h5, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "/tokenizer/%s", name);
    char *text = attr_str(h5, path, "text"), *dec = attr_str(h5, path, "decoded");
    int64_t nws = 0, nw = 0;
    int32_t *ws = attr_ids(h5, path, "ids_with_special", &nws);
    int32_t *w = dset_ids(h5, path, &nw);
    CHECK_MSG(text && dec && ws && w, "%s: golden case incomplete", path);
    if (text && dec && ws && w) check_text(t, path, text, w, nw, ws, nws, dec);
    free(text), free(dec), free(ws), free(w);
}

static void check_stream(tok_tokenizer *t, const char *f, const char *model, const char *dataset, const char *text,
                         int64_t n, int strip_lead)
{
    int64_t nw = 0;
    int32_t *want = dset_ids(f, dataset, &nw);
    CHECK_MSG(want, "%s: %s missing", model, dataset);
    if (!want) return;
    tok_ids ids = {0};
    CHECK_OK(tok_encode(t, text, n, 0, &ids));
    char label[300];
    snprintf(label, sizeof label, "%s %s", model, dataset);
    if (!same_ids(label, ids.ids, ids.n, want, nw)) tu_failures++;
    char *d = NULL;
    int64_t dl = 0;
    CHECK_OK(tok_decode(t, ids.ids, ids.n, 0, &d, &dl));
    int rt = d && dl == n && !memcmp(d, text, (size_t)n);
    /* stories260k: Metaspace prepends '▁' and the decoder's Strip removes one leading
     * space, so a text that starts with a space (every wikitext row does) comes back
     * without it, in HF as here (golden tokenizer/leading_space 'decoded' shows it). */
    int strip1 = !rt && strip_lead && d && n > 0 && text[0] == ' ' && dl == n - 1 && !memcmp(d, text + 1, (size_t)dl);
    fprintf(stderr, "%s: %lld ids match; decode(encode(x)) %s\n", label, (long long)nw,
            rt ? "== x" : strip1 ? "== x without its first space (as HF)" : "!= x");
    CHECK_MSG(rt || strip1, "%s: decode(encode(text)) differs from the text", label);
    free(d);
    free(want);
    tok_ids_free(&ids);
}

static void check_model(const char *shared, const char *model, int strip_lead)
{
    char dir[4096], h5[4200], wt[4200], ts[4200];
    snprintf(dir, sizeof dir, "%s/models/%s", shared, model);
    snprintf(h5, sizeof h5, "%s/golden.h5", dir);
    snprintf(wt, sizeof wt, "%s/data/wikitext-2-raw/wiki.test.raw", shared);
    snprintf(ts, sizeof ts, "%s/data/tinyshakespeare/input.txt", shared);
    tok_tokenizer *t = NULL;
    CHECK_OK(tok_create(dir, &t));
    char **names = NULL;
    int64_t ncase = 0;
    CHECK_OK(h5a_list(h5, "/tokenizer", &names, &ncase));
    CHECK_MSG(t && names && ncase > 0, "%s: tokenizer or golden.h5 /tokenizer", model);
    if (!t || !names) {
        free(names);
        tok_destroy(t);
        return;
    }
    for (int64_t i = 0; i < ncase; i++) each_case(t, h5, names[i]);
    free(names);
    char *prompt = attr_str(h5, "/", "prompt");
    int64_t nn = 0, ns = 0;
    int32_t *no = dset_ids(h5, "/prompt_ids_no_special", &nn), *ws = dset_ids(h5, "/prompt_ids_with_special", &ns);
    CHECK(prompt && no && ws);
    if (prompt && no && ws) check_text(t, "prompt", prompt, no, nn, ws, ns, NULL);
    free(prompt), free(no), free(ws);
    char *raw = NULL, *txt = NULL;
    int64_t nraw = 0, ntxt = 0;
    CHECK_OK(tok_read_file(wt, &raw, &nraw));
    CHECK_OK(tok_wikitext_join(raw, nraw, &txt, &ntxt));
    if (txt) check_stream(t, h5, model, "/eval/wikitext2_test_token_ids", txt, ntxt, strip_lead);
    free(raw), free(txt);
    CHECK_OK(tok_read_file(ts, &raw, &nraw));
    if (raw) check_stream(t, h5, model, "/eval/tinyshakespeare_token_ids", raw, nraw, strip_lead);
    free(raw);
    tok_destroy(t);
}

int main(void)
{
    const char *shared = tu_shared_dir();
    check_model(shared, "stories260k", 1);
    check_model(shared, "tinyllama-15m", 0);
    check_model(shared, "tinyllama-15m-instruct", 0);
    return tu_finish("test_tokenizer_golden");
}
