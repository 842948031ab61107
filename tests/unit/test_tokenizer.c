/* test_tokenizer.c - the C tokenizer on synthetic tokenizer.json files: BPE against a
 * plain-C reference (repeatedly merge the lowest-rank adjacent pair, leftmost first) on
 * random merge tables and random long words; "a b" string merges equal ["a","b"] pairs;
 * the seed tokenizers of tests/fuzz/corpus (SentencePiece-style, GPT-2, Llama-3 split,
 * legacy Llama-2 normalizer, assorted steps) on hand-checked texts; tokenizer_config
 * add_bos/add_eos; NFC accepted only where it is the identity; the accessors. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "tokenizer.h"
#include "upq_err.h"

/* ---- random BPE vs the reference ---- */
enum { NA = 5, NM = 80, MAXTOK = 96 };

typedef struct {
    char tok[NA + NM][24];
    int ntok;
    int ma[NM], mb[NM], mo[NM], nm;
} rbpe;

static uint64_t rng = 88172645463325252ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static int find_tok(const rbpe *r, const char *s)
{
    for (int i = 0; i < r->ntok; i++)
        if (!strcmp(r->tok[i], s)) return i;
    return -1;
}

static void make_rbpe(rbpe *r)
{
    memset(r, 0, sizeof *r);
    for (int i = 0; i < NA; i++) r->tok[r->ntok++][0] = (char)('a' + i);
    while (r->nm < NM) {
        int a = (int)(rnd() % (uint32_t)r->ntok), b = (int)(rnd() % (uint32_t)r->ntok);
        if (strlen(r->tok[a]) + strlen(r->tok[b]) >= 20) continue;
        char cat[48];
        snprintf(cat, sizeof cat, "%s%s", r->tok[a], r->tok[b]);
        int dup = 0;
        for (int k = 0; k < r->nm; k++) dup |= r->ma[k] == a && r->mb[k] == b;
        if (dup) continue;
        int o = find_tok(r, cat);
        if (o < 0) {
            o = r->ntok;
            strcpy(r->tok[r->ntok++], cat);
        }
        r->ma[r->nm] = a, r->mb[r->nm] = b, r->mo[r->nm] = o, r->nm++;
    }
}

static char *rbpe_json(const rbpe *r, int pairs)
{
    static char buf[1 << 16];
    int k = snprintf(buf, sizeof buf, "{\"model\": {\"type\": \"BPE\", \"vocab\": {");
    for (int i = 0; i < r->ntok; i++) k += snprintf(buf + k, sizeof buf - k, "%s\"%s\": %d", i ? ", " : "", r->tok[i], i);
    k += snprintf(buf + k, sizeof buf - k, "}, \"merges\": [");
    for (int m = 0; m < r->nm; m++)
        k += pairs ? snprintf(buf + k, sizeof buf - k, "%s[\"%s\", \"%s\"]", m ? ", " : "", r->tok[r->ma[m]], r->tok[r->mb[m]])
                   : snprintf(buf + k, sizeof buf - k, "%s\"%s %s\"", m ? ", " : "", r->tok[r->ma[m]], r->tok[r->mb[m]]);
    snprintf(buf + k, sizeof buf - k, "]}}");
    return buf;
}

/* The reference: lowest rank first, leftmost among equal ranks, until nothing merges. */
static int ref_bpe(const rbpe *r, const char *w, int32_t *ids)
{
    int n = (int)strlen(w);
    for (int i = 0; i < n; i++) ids[i] = w[i] - 'a';
    for (;;) {
        int best = -1, at = -1;
        for (int i = 0; i + 1 < n; i++)
            for (int m = 0; m < r->nm; m++)
                if (r->ma[m] == ids[i] && r->mb[m] == ids[i + 1] && (best < 0 || m < best)) best = m, at = i;
        if (best < 0) return n;
        ids[at] = r->mo[best];
        memmove(ids + at + 1, ids + at + 2, (size_t)(n - at - 2) * sizeof *ids);
        n--;
    }
}

static void test_random_bpe(void)
{
    int words = 0, bad = 0;
    for (int table = 0; table < 8; table++) {
        rbpe r;
        make_rbpe(&r);
        tok_tokenizer *ts = NULL, *tp = NULL;
        const char *js = rbpe_json(&r, 0);
        CHECK_OK(tok_create_json(js, strlen(js), "random-strings", &ts));
        const char *jp = rbpe_json(&r, 1);
        CHECK_OK(tok_create_json(jp, strlen(jp), "random-pairs", &tp));
        if (!ts || !tp) return;
        for (int w = 0; w < 300; w++) {
            char word[MAXTOK + 1];
            int len = 1 + (int)(rnd() % MAXTOK);
            for (int i = 0; i < len; i++) word[i] = (char)('a' + (w % 3 ? rnd() % 2 : rnd() % NA));
            word[len] = 0;
            int32_t want[MAXTOK];
            int nw = ref_bpe(&r, word, want);
            tok_ids a = {0}, b = {0};
            CHECK_OK(tok_encode(ts, word, len, 1, &a));
            CHECK_OK(tok_encode(tp, word, len, 1, &b));
            int ok = a.n == nw && b.n == nw && !memcmp(a.ids, want, (size_t)nw * 4) && !memcmp(b.ids, want, (size_t)nw * 4);
            if (!ok && bad++ < 3) fprintf(stderr, "FAIL random BPE table %d word '%s'\n", table, word);
            words++;
            tok_ids_free(&a);
            tok_ids_free(&b);
        }
        tok_destroy(ts);
        tok_destroy(tp);
    }
    CHECK_MSG(bad == 0, "%d of %d random words differ from the reference BPE", bad, words);
    printf("random BPE: %d words over 8 merge tables equal the reference (string and pair merges)\n", words);
}

/* ---- seed tokenizers ---- */
static tok_tokenizer *seed(const char *name, const char *config)
{
    char p[4096], c[4096];
    snprintf(p, sizeof p, "%s/tests/fuzz/corpus/tokenizer_json/%s", UPQ_SOURCE_DIR, name);
    FILE *f = NULL;
    if (config) {
        snprintf(c, sizeof c, "/tmp/upq_test_tokenizer_config_%d.json", (int)getpid());
        f = fopen(c, "w");
        fputs(config, f);
        fclose(f);
    }
    tok_tokenizer *t = NULL;
    CHECK_OK(tok_create_files(p, config ? c : NULL, &t));
    if (config) remove(c);
    return t;
}

static void expect(tok_tokenizer *t, const char *text, int special, const int32_t *want, int n, const char *dec)
{
    tok_ids v = {0};
    CHECK_OK(tok_encode(t, text, (int64_t)strlen(text), special, &v));
    int ok = v.n == n && (n == 0 || !memcmp(v.ids, want, (size_t)n * 4));
    if (!ok) {
        fprintf(stderr, "FAIL encode '%s': got", text);
        for (int64_t i = 0; i < v.n; i++) fprintf(stderr, " %d", v.ids[i]);
        fprintf(stderr, "\n");
        tu_failures++;
    }
    if (dec) {
        char *d = NULL;
        CHECK_OK(tok_decode(t, v.ids, v.n, 0, &d, NULL));
        CHECK_MSG(d && !strcmp(d, dec), "decode of '%s' gave '%s', want '%s'", text, d ? d : "", dec);
        free(d);
    }
    tok_ids_free(&v);
}

static void test_seeds(void)
{
    tok_tokenizer *t = seed("spm_small.json", NULL);
    if (!t) return;
    int32_t th = tok_token_id(t, "\xE2\x96\x81the"), is = tok_token_id(t, "\xE2\x96\x81is");
    CHECK(th > 0 && is > 0 && tok_bos(t) == 1 && tok_adds_bos(t) && !tok_adds_eos(t));
    /* "the is": '▁' prepended (first), then ▁the ▁is; 'Z' (no token) by byte fallback <0x5A> */
    int32_t w1[] = {1, th, is, tok_token_id(t, "\xE2\x96\x81"), 3 + 'Z'};
    expect(t, "the is Z", 1, w1, 5, "<s> the is Z");
    int32_t w2[] = {th, 3 + 0xE4, 3 + 0xB8, 3 + 0xAD};
    expect(t, "the\xE4\xB8\xAD", 0, w2, 4, "the\xE4\xB8\xAD");
    int32_t w3[] = {th, 3 + 0xE4};
    expect(t, "the\xE4", 0, w3, 2, "the\xEF\xBF\xBD"); /* one U+FFFD per invalid byte */
    tok_destroy(t);

    t = seed("bytelevel_small.json", "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"add_eos_token\": true}");
    if (!t) return;
    CHECK(tok_adds_bos(t) && tok_adds_eos(t) && tok_eos(t) == 2 && tok_is_special(t, 3) && !tok_is_special(t, 10));
    int32_t a = tok_token_id(t, "\xC4\xA0" "and"), the = tok_token_id(t, "\xC4\xA0the");
    CHECK(a > 0 && the > 0);
    int32_t w4[] = {1, 3, the, a, 2};
    expect(t, "<|user|> the and", 1, w4, 5, "<s><|user|> the and</s>");
    tok_destroy(t);

    t = seed("llama3_small.json", NULL);
    if (!t) return;
    int32_t bot = tok_token_id(t, "<|begin_of_text|>"), there = tok_token_id(t, "\xC4\xA0there");
    CHECK(tok_bos(t) == bot && there > 0);
    /* ignore_merges: "Ġthere" is in the vocabulary, so it is one token with no merge path;
     * \p{N}{1,3} splits "12345" as 123|45 and the merges give "123" */
    int32_t w5[] = {bot, there, tok_token_id(t, "123"), tok_token_id(t, "4"), tok_token_id(t, "5")};
    expect(t, " there12345", 1, w5, 5, "<|begin_of_text|> there12345");
    tok_destroy(t);

    t = seed("legacy_llama_small.json", NULL);
    if (!t) return;
    /* Prepend '▁', ' ' -> '▁'; 'Z' has byte token <0x5A>; U+00E9 has none: unk, fused.
     * Specials go through the decoder like any token, so Strip meets "<s>" first and the
     * space of "▁hello" stays: HF's Llama-2 decode gives "<s> Hello" the same way. */
    int32_t w6[] = {1, tok_token_id(t, "\xE2\x96\x81hello"), tok_token_id(t, "\xE2\x96\x81"), 3 + 'Z', 0, 2};
    expect(t, "hello Z\xC3\xA9\xC3\xA9", 1, w6, 6, "<s> hello Z<unk></s>");
    tok_destroy(t);

    t = seed("assorted_small.json", NULL);
    if (!t) return;
    /* [MASK] is single_word with lstrip/rstrip: it takes the spaces around it; "xyz" is a
     * non-special added token matched inside words; ',' is removed; Metaspace "always"
     * prepends '▁' to every piece; merge "a b" (rank 0) wins over "▁ a" (rank 1);
     * Roberta cls/sep */
    int32_t ab = tok_token_id(t, "ab"), sp = tok_token_id(t, "\xE2\x96\x81"), xyz = tok_token_id(t, "xyz");
    int32_t w7[] = {0, sp, tok_token_id(t, "c"), 2, sp, ab, xyz, sp, ab, 1};
    expect(t, "c [MASK] abxyz,ab", 1, w7, 10, NULL);
    /* Digits (contiguous) cuts "a12b" into a|12|b, each gets '▁' (always) */
    int32_t w8[] = {0, tok_token_id(t, "\xE2\x96\x81" "a"), sp, tok_token_id(t, "12"), sp, tok_token_id(t, "b"), 1};
    expect(t, "a12b", 1, w8, 7, NULL);
    tok_destroy(t);
}

static void test_nfc(void)
{
    const char *js = "{\"normalizer\": {\"type\": \"NFC\"}, \"pre_tokenizer\": {\"type\": \"ByteLevel\", "
                     "\"add_prefix_space\": false}, \"decoder\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", "
                     "\"vocab\": {\"a\": 0, \"\\u00c3\": 1, \"\\u00a9\": 2, \"\\u00cc\": 3, \"\\u0123\": 4}, \"merges\": []}}";
    tok_tokenizer *t = NULL;
    CHECK_OK(tok_create_json(js, strlen(js), "nfc", &t));
    if (!t) return;
    tok_ids v = {0};
    CHECK_OK(tok_encode(t, "a\xC3\xA9", 3, 0, &v)); /* U+00E9 is NFC already */
    CHECK(v.n == 3);
    /* e + U+0301 composes to U+00E9 (C3 A9 -> byte-level \u00c3 \u00a9) */
    CHECK_OK(tok_encode(t, "e\xCC\x81", 3, 0, &v));
    CHECK(v.n == 5 && v.ids[3] == 1 && v.ids[4] == 2);
    tok_ids_free(&v);
    tok_destroy(t);
}

/* No decoder: HF joins the token strings with one space (none for one token, "" for none). */
static void test_no_decoder(void)
{
    const char *js = "{\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"String\": \" \"}, "
                     "\"behavior\": \"Removed\"}, \"decoder\": null, \"model\": {\"type\": \"BPE\", "
                     "\"vocab\": {\"a\": 0, \"b\": 1, \"c\": 2, \"ab\": 3}, \"merges\": [[\"a\", \"b\"]]}}";
    tok_tokenizer *t = NULL;
    CHECK_OK(tok_create_json(js, strlen(js), "no-decoder", &t));
    if (!t) return;
    int32_t w[] = {3, 2, 0};
    expect(t, "ab c a", 0, w, 3, "ab c a");
    expect(t, "a", 0, w + 2, 1, "a");
    expect(t, "", 0, w, 0, "");
    int32_t ids[] = {0, 1, 2};
    char *d = NULL;
    CHECK_OK(tok_decode(t, ids, 3, 0, &d, NULL));
    CHECK(d && !strcmp(d, "a b c"));
    free(d);
    tok_destroy(t);
}

static void test_models(const char *shared)
{
    char d[4096];
    snprintf(d, sizeof d, "%s/models/tinyllama-15m", shared);
    tok_tokenizer *t = NULL;
    CHECK_OK(tok_create(d, &t));
    if (!t) return;
    CHECK(tok_vocab_size(t) == 4096 && tok_bos(t) == 1 && tok_eos(t) == 2 && tok_pad(t) == 0);
    CHECK(tok_token_id(t, "<|assistant|>") == 5 && tok_is_special(t, 5) && !tok_is_special(t, 100));
    CHECK(tok_chat_template(t) && strstr(tok_chat_template(t), "<|"));
    CHECK(tok_token_str(t, 4096) == NULL && tok_token_str(t, 1) && !strcmp(tok_token_str(t, 1), "<s>"));
    int32_t ids[] = {1, 4, 300, 2};
    char *s = NULL;
    CHECK_OK(tok_decode(t, ids, 4, 1, &s, NULL));
    CHECK(s && !strstr(s, "<s>") && !strstr(s, "<|user|>"));
    free(s);
    tok_destroy(t);
    snprintf(d, sizeof d, "%s/models/stories260k", shared);
    CHECK_OK(tok_create(d, &t));
    if (t) CHECK(tok_vocab_size(t) == 512 && tok_bos(t) == 1 && tok_eos(t) == 2 && tok_adds_bos(t));
    tok_destroy(t);
}

int main(void)
{
    test_random_bpe();
    test_seeds();
    test_nfc();
    test_no_decoder();
    test_models(tu_shared_dir());
    return tu_finish("test_tokenizer");
}
