/* test_demo_tok.c - the demo BPE: decode(encode(x)) == x on the corpus, on UTF-8 text and
 * on arbitrary bytes; special tokens cut out of text; the written tokenizer.json parses
 * (jansson) with every merge naming vocab tokens; and HF semantics reproduced by an
 * independent encoder that only reads tokenizer.json: PCRE2 (a Perl-style leftmost-first
 * engine like HF's onig) splits with the file's regex, GPT-2's byte map is rebuilt here,
 * and merges apply by rank from the file. Its ids must equal dtok_encode's. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <dlfcn.h>
#include <jansson.h>
#include <pcre2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"
#include "demo_tok.h"
#include "test_util.h"
#include "upq_err.h"

static void roundtrip(const dtok *t, const char *text, int64_t n, const char *what)
{
    int32_t *ids = NULL;
    int64_t ni = 0, no = 0;
    char *out = NULL;
    CHECK_OK(dtok_encode(t, text, n, &ids, &ni));
    CHECK_OK(dtok_decode(t, ids, ni, &out, &no));
    CHECK_MSG(out && no == n && !memcmp(out, text, (size_t)n), "round trip of %s", what);
    for (int64_t i = 0; i < ni; i++) CHECK(ids[i] >= 0 && ids[i] < t->V);
    free(ids);
    free(out);
}

static void test_roundtrip(const dtok *t, const char *corpus, int64_t n)
{
    roundtrip(t, corpus, n, "corpus");
    static const char *const samples[] = {
        "", " ", "   leading spaces", "trailing  ", "tabs\tand\r\nCRLF\n\n\n", "caf\xc3\xa9 na\xc3\xafve",
        "\xe2\x80\x9c" "curly\xe2\x80\x9d quotes", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e text", "emoji \xf0\x9f\x98\x80!",
        "digits 0123456789 and 3.14", "code: if (x < 3) { y = x<<2; }", "<s>hello</s> <pad><<s>>", "<", "</",
    };
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
        roundtrip(t, samples[i], (int64_t)strlen(samples[i]), samples[i]);
    /* arbitrary bytes, NUL and invalid UTF-8 included */
    corpus_rng r;
    corpus_rng_seed(&r, 99);
    char buf[4096];
    for (int rep = 0; rep < 20; rep++) {
        int64_t len = (int64_t)corpus_rng_below(&r, sizeof buf);
        for (int64_t i = 0; i < len; i++) buf[i] = (char)corpus_rng_below(&r, rep % 2 ? 256 : 64) + (rep % 2 ? 0 : ' ');
        roundtrip(t, buf, len, "random bytes");
    }
}

static void test_specials(const dtok *t)
{
    const char *s = "a<s>b</s><pad>";
    int32_t *ids = NULL;
    int64_t n = 0;
    CHECK_OK(dtok_encode(t, s, (int64_t)strlen(s), &ids, &n));
    int seen[3] = {0};
    for (int64_t i = 0; i < n; i++)
        if (ids[i] < DTOK_N_SPECIAL) seen[ids[i]]++;
    CHECK(seen[DTOK_PAD] == 1 && seen[DTOK_BOS] == 1 && seen[DTOK_EOS] == 1);
    CHECK(n >= 2 && ids[n - 1] == DTOK_PAD);
    free(ids);
}

/* ---- an independent encoder that reads only tokenizer.json ------------------------ */

typedef struct {
    json_t *root, *vocab, *ranks; /* ranks: "left right" -> rank */
    char cp_utf8[256][3];         /* GPT-2 byte map, rebuilt here */
    pcre2_code *re;
    pcre2_match_data *md;
} hf_sim;

static struct {
    void *h;
    pcre2_code *(*compile)(PCRE2_SPTR, PCRE2_SIZE, uint32_t, int *, PCRE2_SIZE *, pcre2_compile_context *);
    pcre2_match_data *(*md_create)(const pcre2_code *, pcre2_general_context *);
    int (*match)(const pcre2_code *, PCRE2_SPTR, PCRE2_SIZE, PCRE2_SIZE, uint32_t, pcre2_match_data *,
                 pcre2_match_context *);
    PCRE2_SIZE *(*ovector)(pcre2_match_data *);
    void (*md_free)(pcre2_match_data *);
    void (*code_free)(pcre2_code *);
} pc;

static int pcre_load(void)
{
    pc.h = dlopen("libpcre2-8.so.0", RTLD_NOW);
    if (!pc.h) return 0;
    *(void **)&pc.compile = dlsym(pc.h, "pcre2_compile_8");
    *(void **)&pc.md_create = dlsym(pc.h, "pcre2_match_data_create_from_pattern_8");
    *(void **)&pc.match = dlsym(pc.h, "pcre2_match_8");
    *(void **)&pc.ovector = dlsym(pc.h, "pcre2_get_ovector_pointer_8");
    *(void **)&pc.md_free = dlsym(pc.h, "pcre2_match_data_free_8");
    *(void **)&pc.code_free = dlsym(pc.h, "pcre2_code_free_8");
    return pc.compile && pc.md_create && pc.match && pc.ovector && pc.md_free && pc.code_free;
}

static void byte_map(hf_sim *s)
{
    int bs[256], n = 0, used[256] = {0};
    for (int b = '!'; b <= '~'; b++) bs[n++] = b;
    for (int b = 0xA1; b <= 0xAC; b++) bs[n++] = b;
    for (int b = 0xAE; b <= 0xFF; b++) bs[n++] = b;
    for (int i = 0; i < n; i++) used[bs[i]] = 1;
    int cs[256], extra = 0;
    for (int b = 0; b < 256; b++) cs[b] = used[b] ? b : 256 + extra++;
    for (int b = 0; b < 256; b++) {
        char *o = s->cp_utf8[b];
        if (cs[b] < 0x80) o[0] = (char)cs[b], o[1] = 0;
        else o[0] = (char)(0xC0 | (cs[b] >> 6)), o[1] = (char)(0x80 | (cs[b] & 0x3F)), o[2] = 0;
    }
}

static int sim_load(hf_sim *s, const char *path)
{
    json_error_t e;
    s->root = json_load_file(path, 0, &e);
    CHECK_MSG(s->root != NULL, "%s: %s at line %d", path, e.text, e.line);
    if (!s->root) return 0;
    json_t *model = json_object_get(s->root, "model");
    s->vocab = json_object_get(model, "vocab");
    json_t *merges = json_object_get(model, "merges");
    const char *pat = json_string_value(json_object_get(
        json_object_get(json_array_get(json_object_get(json_object_get(s->root, "pre_tokenizer"), "pretokenizers"), 0),
                        "pattern"), "Regex"));
    CHECK(json_is_object(s->vocab) && json_is_array(merges) && pat);
    if (!json_is_object(s->vocab) || !json_is_array(merges) || !pat) return 0;
    s->ranks = json_object();
    for (size_t r = 0; r < json_array_size(merges); r++) {
        json_t *m = json_array_get(merges, r);
        const char *a = json_string_value(json_array_get(m, 0)), *b = json_string_value(json_array_get(m, 1));
        CHECK(a && b && json_array_size(m) == 2);
        if (!a || !b) return 0;
        char key[512], cat[512];
        snprintf(key, sizeof key, "%s %s", a, b);
        snprintf(cat, sizeof cat, "%s%s", a, b);
        CHECK_MSG(json_object_get(s->vocab, a) && json_object_get(s->vocab, b), "merge %zu names a non-vocab token", r);
        CHECK_MSG(json_object_get(s->vocab, cat) != NULL, "merge %zu result '%s' not in vocab", r, cat);
        CHECK_MSG(json_object_get(s->ranks, key) == NULL, "merge %zu repeats a pair", r);
        json_object_set_new(s->ranks, key, json_integer((json_int_t)r));
    }
    byte_map(s);
    int err;
    PCRE2_SIZE off;
    s->re = pc.compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &err, &off, NULL);
    CHECK_MSG(s->re != NULL, "PCRE2 rejects the tokenizer.json regex at offset %zu", (size_t)off);
    if (!s->re) return 0;
    s->md = pc.md_create(s->re, NULL);
    return 1;
}

/* BPE on one piece (byte-level strings), lowest rank first, leftmost first. */
static void sim_piece(const hf_sim *s, const char *p, size_t len, int32_t *out, int64_t *n)
{
    char sym[1024][64];
    int m = 0;
    for (size_t i = 0; i < len && m < 1024; i++) snprintf(sym[m++], 64, "%s", s->cp_utf8[(uint8_t)p[i]]);
    for (;;) {
        long best = -1;
        int at = -1;
        for (int i = 0; i + 1 < m; i++) {
            char key[160];
            snprintf(key, sizeof key, "%s %s", sym[i], sym[i + 1]);
            json_t *r = json_object_get(s->ranks, key);
            if (r && (best < 0 || json_integer_value(r) < best)) best = (long)json_integer_value(r), at = i;
        }
        if (at < 0) break;
        size_t la = strlen(sym[at]), lb = strlen(sym[at + 1]);
        CHECK(la + lb < sizeof sym[0]);
        if (la + lb >= sizeof sym[0]) return;
        memcpy(sym[at] + la, sym[at + 1], lb + 1);
        memmove(sym[at + 1], sym[at + 2], (size_t)(m - at - 2) * sizeof sym[0]);
        m--;
    }
    for (int i = 0; i < m; i++) out[(*n)++] = (int32_t)json_integer_value(json_object_get(s->vocab, sym[i]));
}

/* Specials cut out first (leftmost), then the regex's matches, each through BPE. */
static int64_t sim_encode(const hf_sim *s, const char *text, int32_t *out)
{
    static const char *const sp[] = {"<pad>", "<s>", "</s>"};
    int64_t n = 0;
    size_t len = strlen(text), i = 0;
    while (i < len) {
        size_t next = len;
        int which = -1;
        for (int k = 0; k < 3; k++) {
            const char *f = strstr(text + i, sp[k]);
            if (f && (size_t)(f - text) < next) next = (size_t)(f - text), which = k;
        }
        while (i < next) {
            int rc = pc.match(s->re, (PCRE2_SPTR)text, next, i, 0, s->md, NULL);
            if (rc < 0) break;
            PCRE2_SIZE *ov = pc.ovector(s->md);
            CHECK(ov[0] == i); /* the pattern covers every character: no gaps */
            sim_piece(s, text + ov[0], ov[1] - ov[0], out, &n);
            i = ov[1];
        }
        if (which >= 0) out[n++] = which, i = next + strlen(sp[which]);
    }
    return n;
}

static void compare(const dtok *t, const hf_sim *s, const char *text, const char *what)
{
    int32_t *ids = NULL, *ref = malloc((strlen(text) + 1) * sizeof *ref);
    int64_t n = 0;
    CHECK_OK(dtok_encode(t, text, (int64_t)strlen(text), &ids, &n));
    int64_t m = sim_encode(s, text, ref);
    int same = n == m && (n == 0 || !memcmp(ids, ref, (size_t)n * sizeof *ids));
    CHECK_MSG(same, "%s: dtok gives %lld ids, the tokenizer.json reading %lld", what, (long long)n, (long long)m);
    free(ids);
    free(ref);
}

/* Random strings over an alphabet of every class boundary (letters, digits, the four
 * whitespace bytes the pattern names, \f and \v which it does not, punctuation, '<',
 * multibyte UTF-8): piece boundaries from dtok_piece_len equal PCRE2's matches, and the
 * whole encoding equals the tokenizer.json reading. */
static void test_split_fuzz(const dtok *t, const hf_sim *s)
{
    static const char *const alpha[] = {"a", "Z", "q", "7", "0", " ", " ", "\t", "\n", "\r", "\f", "\v",
                                        ".", ",", "\"", "<", "s>", "_", "\xc3\xa9", "\xe6\x97\xa5",
                                        "\xf0\x9f\x98\x80"};
    const int na = (int)(sizeof alpha / sizeof alpha[0]);
    corpus_rng r;
    corpus_rng_seed(&r, 2024);
    char buf[512];
    int mismatches = 0;
    for (int rep = 0; rep < 400; rep++) {
        size_t len = 0;
        int k = 1 + (int)corpus_rng_below(&r, 40);
        for (int i = 0; i < k; i++) {
            const char *a = alpha[corpus_rng_below(&r, (uint64_t)na)];
            memcpy(buf + len, a, strlen(a));
            len += strlen(a);
        }
        buf[len] = '\0';
        if (strstr(buf, "<s>")) continue; /* specials are covered elsewhere */
        for (size_t i = 0; i < len;) {
            int rc = pc.match(s->re, (PCRE2_SPTR)buf, len, i, 0, s->md, NULL);
            int64_t mine = dtok_piece_len(buf + i, (int64_t)(len - i));
            PCRE2_SIZE *ov = pc.ovector(s->md);
            if (rc < 0 || ov[0] != i || (int64_t)(ov[1] - ov[0]) != mine) {
                mismatches++;
                break;
            }
            i = ov[1];
        }
        compare(t, s, buf, "random string");
    }
    CHECK_MSG(mismatches == 0, "%d random strings split differently from the regex", mismatches);
}

static void test_json(const dtok *t, const char *corpus)
{
    char tj[256], tc[256];
    snprintf(tj, sizeof tj, "/tmp/upq_test_demo_tok_%d.json", (int)getpid());
    snprintf(tc, sizeof tc, "/tmp/upq_test_demo_tok_cfg_%d.json", (int)getpid());
    CHECK_OK(dtok_write_hf(t, tj, tc, 512));
    json_error_t e;
    json_t *cfg = json_load_file(tc, 0, &e);
    CHECK(cfg && json_is_true(json_object_get(cfg, "add_bos_token")));
    CHECK(cfg && !strcmp(json_string_value(json_object_get(cfg, "bos_token")), "<s>"));
    json_decref(cfg);
    /* upq itself links libpcre2-8: when it cannot be loaded here the check cannot run,
     * and a check that cannot run fails (a partial skip used to pass) */
    CHECK_MSG(pcre_load(), "libpcre2-8.so.0 not loadable: the HF-semantics check cannot run");
    if (!pc.h) return;
    hf_sim s = {0};
    if (sim_load(&s, tj)) {
        CHECK((int64_t)json_object_size(s.vocab) == t->V);
        json_t *added = json_object_get(s.root, "added_tokens");
        CHECK(json_array_size(added) == 3 &&
              json_integer_value(json_object_get(json_array_get(added, 1), "id")) == DTOK_BOS);
        char *chunk = malloc(20001);
        memcpy(chunk, corpus, 20000);
        chunk[20000] = 0;
        compare(t, &s, chunk, "corpus");
        compare(t, &s, "  two  spaces, tab\tCRLF\r\n caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac 42 \xf0\x9f\x98\x80!!", "mixed");
        compare(t, &s, "<s>Once upon</s> a <pad>time<s", "specials");
        test_split_fuzz(t, &s);
        free(chunk);
    }
    if (s.md) pc.md_free(s.md);
    if (s.re) pc.code_free(s.re);
    json_decref(s.root);
    json_decref(s.ranks);
    remove(tj);
    remove(tc);
}

int main(void)
{
    const int64_t n = 300000;
    char *text = malloc((size_t)n);
    corpus_generate(5, text, n);
    dtok t, t2;
    CHECK_OK(dtok_train(&t, text, n, 512));
    CHECK(t.V == 512 && t.n_merges >= 512 - DTOK_FIRST_MERGE);
    /* deterministic training */
    CHECK_OK(dtok_train(&t2, text, n, 512));
    CHECK(t2.n_merges == t.n_merges &&
          !memcmp(t2.merge_pair, t.merge_pair, (size_t)t.n_merges * 2 * sizeof(int32_t)));
    dtok_free(&t2);
    /* BPE compresses the corpus: well below one token per byte */
    int32_t *ids = NULL;
    int64_t ni = 0;
    CHECK_OK(dtok_encode(&t, text, n, &ids, &ni));
    CHECK_MSG((double)n / (double)ni > 2.0, "%.2f bytes per token", (double)n / (double)ni);
    free(ids);
    test_roundtrip(&t, text, n);
    test_specials(&t);
    test_json(&t, text);
    dtok_free(&t);
    free(text);
    return tu_finish("test_demo_tok");
}
