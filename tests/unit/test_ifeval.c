/* test_ifeval.c - the instruction checks (ifeval.h) against the reference verdicts:
 * every one of the 1,512 model responses in
 * ../shared/models/tinyllama-15m-instruct/eval_outputs.jsonl (per-instruction "pass"
 * flags computed by CHECKS.md's Python) must get the same verdicts, every "reference"
 * answer of eval.jsonl must pass, and the fp32 rows must give REFERENCE.md's 88.7 % /
 * 92.5 %. Then hand-written cases per type, each with a failing response, the
 * json_answer grammar's corners and the loose variants. Skips (77) without ../shared. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ifeval.h"
#include "test_util.h"
#include "upq_err.h"

#define NCFG 3
static const char *const CFG[NCFG] = {"fp32", "rtn_w4g128", "rtn_w2g64"};

typedef struct {
    ife_item *v;
    int64_t n, cap;
} items;

static int read_items(const char *path, items *l)
{
    FILE *f = fopen(path, "r");
    if (!f) return UPQ_FAIL(UPQ_EINPUT, "%s: cannot open", path);
    char *line = NULL, label[4200];
    size_t cap = 0;
    ssize_t got;
    int rc = UPQ_OK;
    for (int ln = 1; !rc && (got = getline(&line, &cap, f)) > 0; ln++) {
        if (l->n == l->cap) {
            l->cap = l->cap ? 2 * l->cap : 512;
            l->v = realloc(l->v, (size_t)l->cap * sizeof *l->v);
        }
        snprintf(label, sizeof label, "%s:%d", path, ln);
        rc = ife_item_parse(line, (size_t)got, label, &l->v[l->n]);
        if (!rc) l->n++;
    }
    free(line);
    fclose(f);
    return rc;
}

static const ife_item *find_item(const items *l, const char *id)
{
    for (int64_t i = 0; i < l->n; i++)
        if (!strcmp(l->v[i].id, id)) return &l->v[i];
    return NULL;
}

/* Every reference answer passes every instruction, strict and loose. */
static void check_references(const items *l)
{
    int64_t insts = 0, bad = 0;
    uint8_t s[IFE_MAX_INST], lo[IFE_MAX_INST];
    for (int64_t i = 0; i < l->n; i++) {
        const ife_item *it = &l->v[i];
        CHECK_MSG(it->reference != NULL, "%s has no reference", it->id);
        if (!it->reference) continue;
        CHECK_OK(ife_check(it, it->reference, it->reference_len, s));
        CHECK_OK(ife_check_loose(it, it->reference, it->reference_len, lo));
        for (int k = 0; k < it->ninst; k++, insts++) {
            bad += !s[k] || !lo[k];
            CHECK_MSG(s[k] && lo[k], "%s: reference fails %s", it->id, ife_type_name(it->inst[k].type));
        }
    }
    CHECK(l->n == 504 && insts == 774);
    printf("references: %lld prompts, %lld instructions, %lld failing\n", (long long)l->n, (long long)insts,
           (long long)bad);
}

typedef struct {
    int64_t n[IFE_NTYPES], agree[IFE_NTYPES], pass_ref[NCFG][IFE_NTYPES], rows[NCFG];
    ife_stats st[NCFG];
} agreement;

/* One eval_outputs row: the C verdicts against its "pass" flags. */
static void check_row(const items *l, const json_t *o, agreement *a)
{
    const char *id = json_string_value(json_object_get(o, "id")), *cfg = json_string_value(json_object_get(o, "config"));
    const json_t *resp = json_object_get(o, "response"), *pass = json_object_get(o, "pass");
    const ife_item *it = id ? find_item(l, id) : NULL;
    int c = -1;
    for (int k = 0; cfg && k < NCFG; k++)
        if (!strcmp(cfg, CFG[k])) c = k;
    CHECK_MSG(it && c >= 0 && json_is_string(resp) && json_is_array(pass), "malformed row %s", id ? id : "?");
    if (!it || c < 0 || !json_is_string(resp) || !json_is_array(pass)) return;
    CHECK_MSG((int)json_array_size(pass) == it->ninst, "%s %s: %zu pass flags", id, cfg, json_array_size(pass));
    uint8_t s[IFE_MAX_INST], lo[IFE_MAX_INST];
    CHECK_OK(ife_check(it, json_string_value(resp), json_string_length(resp), s));
    CHECK_OK(ife_check_loose(it, json_string_value(resp), json_string_length(resp), lo));
    for (int k = 0; k < it->ninst && k < (int)json_array_size(pass); k++) {
        int ref = json_is_true(json_array_get(pass, (size_t)k)), t = it->inst[k].type;
        a->n[t]++;
        a->agree[t] += ref == s[k];
        a->pass_ref[c][t] += ref;
        CHECK_MSG(ref == s[k], "%s %s %s: C says %d, reference %d; response %s", id, cfg, ife_type_name(t), s[k], ref,
                  json_string_value(resp));
        CHECK_MSG(lo[k] >= s[k], "%s %s %s: loose fails where strict passes", id, cfg, ife_type_name(t));
    }
    ife_stats_add(&a->st[c], it, s, lo);
    a->rows[c]++;
}

static void check_outputs(const items *l, const char *path)
{
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    if (!f) return;
    agreement a;
    memset(&a, 0, sizeof a);
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int64_t rows = 0;
    while ((got = getline(&line, &cap, f)) > 0) {
        json_error_t err;
        json_t *o = json_loadb(line, (size_t)got, JSON_ALLOW_NUL, &err);
        CHECK_MSG(o != NULL, "%s row %lld: %s", path, (long long)rows + 1, err.text);
        if (o) check_row(l, o, &a);
        json_decref(o);
        rows++;
    }
    free(line);
    fclose(f);
    CHECK(rows == 1512);
    int64_t tot = 0, agree = 0;
    printf("%-14s %5s %6s %8s   reference passes: %s %s %s\n", "type", "n", "agree", "disagree", CFG[0], CFG[1], CFG[2]);
    for (int t = 0; t < IFE_NTYPES; t++) {
        printf("%-14s %5lld %6lld %8lld   %lld %lld %lld\n", ife_type_name(t), (long long)a.n[t], (long long)a.agree[t],
               (long long)(a.n[t] - a.agree[t]), (long long)a.pass_ref[0][t], (long long)a.pass_ref[1][t],
               (long long)a.pass_ref[2][t]);
        tot += a.n[t];
        agree += a.agree[t];
        CHECK_MSG(a.n[t] == 3 * (ife_type_is_content(t) ? 56 : 90), "%s occurs %lld times", ife_type_name(t), (long long)a.n[t]);
    }
    printf("all: %lld instruction verdicts, %lld disagreements\n", (long long)tot, (long long)(tot - agree));
    CHECK(tot == 3 * 774 && agree == tot);
    for (int c = 0; c < NCFG; c++) {
        const ife_stats *s = &a.st[c];
        printf("%-11s prompt strict %.3f loose %.3f, instruction strict %.3f loose %.3f\n", CFG[c],
               (double)s->prompt_pass[0] / (double)s->prompts, (double)s->prompt_pass[1] / (double)s->prompts,
               (double)s->inst_pass[0] / (double)s->insts, (double)s->inst_pass[1] / (double)s->insts);
        CHECK(a.rows[c] == 504 && s->prompts == 504 && s->insts == 774);
    }
    /* REFERENCE.md: fp32 88.7 % / 92.5 %, RTN W4 g128 86.3 % / 91.0 %, W2 g64 13.3 % / 22.9 % */
    CHECK(a.st[0].prompt_pass[0] == 447 && a.st[0].inst_pass[0] == 716);
    CHECK(a.st[1].prompt_pass[0] == 435 && a.st[1].inst_pass[0] == 704);
    CHECK(a.st[2].prompt_pass[0] == 67 && a.st[2].inst_pass[0] == 177);
}

/* ---- hand-written cases ------------------------------------------------------------ */

/* An item with one content instruction (kwargs JSON without braces) and an optional
 * format instruction (full JSON object). */
static void mk(ife_item *it, const char *type, const char *kwargs, const char *fmt)
{
    char buf[2048];
    snprintf(buf, sizeof buf,
             "{\"id\": \"t\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"instructions\": "
             "[{\"type\": \"%s\", \"kwargs\": {%s}}%s%s]}",
             type, kwargs, fmt ? ", " : "", fmt ? fmt : "");
    int rc = ife_item_parse(buf, strlen(buf), "case", it);
    CHECK_MSG(rc == UPQ_OK, "%s: %s", buf, upq_errmsg());
    if (rc) exit(1);
}

/* Verdicts of response r as a string of '0'/'1' per instruction: strict, then loose. */
static void expect(const char *type, const char *kwargs, const char *fmt, const char *r, const char *want,
                   const char *want_loose)
{
    ife_item it;
    mk(&it, type, kwargs, fmt);
    uint8_t s[IFE_MAX_INST], lo[IFE_MAX_INST];
    char got[IFE_MAX_INST + 1] = {0}, gotl[IFE_MAX_INST + 1] = {0};
    CHECK_OK(ife_check(&it, r, strlen(r), s));
    CHECK_OK(ife_check_loose(&it, r, strlen(r), lo));
    for (int i = 0; i < it.ninst; i++) {
        got[i] = (char)('0' + s[i]);
        gotl[i] = (char)('0' + lo[i]);
    }
    CHECK_MSG(!strcmp(got, want), "%s [%s] on \"%s\": strict %s, want %s", type, fmt ? fmt : "", r, got, want);
    if (want_loose)
        CHECK_MSG(!strcmp(gotl, want_loose), "%s [%s] on \"%s\": loose %s, want %s", type, fmt ? fmt : "", r, gotl,
                  want_loose);
    ife_item_free(&it);
}

#define S_CAT "\"sentence\": \"The cat, who sat (on the mat).\""

static void check_content_types(void)
{
    expect("repeat", S_CAT, NULL, "The cat, who sat (on the mat).", "1", "1");
    expect("repeat", S_CAT, NULL, " \t\v\fThe cat, who sat (on the mat).\r\n", "1", "1");
    expect("repeat", S_CAT, NULL, "The cat, who sat (on the mat)", "0", "0");
    expect("repeat", S_CAT, NULL, "The cat,  who sat (on the mat).", "0", "0");
    expect("repeat", S_CAT, NULL, "the cat, who sat (on the mat).", "0", "0");
    expect("repeat", S_CAT, NULL, "The cat, who sat (on the mat).\xc2\xa0", "0", "0"); /* NBSP is not WS */
    expect("repeat", S_CAT, NULL, "", "0", "0");
    expect("uppercase", S_CAT, NULL, "THE CAT, WHO SAT (ON THE MAT).", "1", "1");
    expect("uppercase", S_CAT, NULL, "THE CAT, WHO SAT (ON THE MAt).", "0", "0");
    expect("uppercase", "\"sentence\": \"Caf\\u00e9 x.\"", NULL, "CAF\xc3\xa9 X.", "1", "1"); /* ASCII only */
    expect("uppercase", "\"sentence\": \"Caf\\u00e9 x.\"", NULL, "CAF\xc3\x89 X.", "0", "0");
    expect("lowercase", S_CAT, NULL, "the cat, who sat (on the mat).", "1", "1");
    expect("lowercase", S_CAT, NULL, "The cat, who sat (on the mat).", "0", "0");
    expect("reverse_words", S_CAT, NULL, "mat). the (on sat who cat, The", "1", "1");
    expect("reverse_words", S_CAT, NULL, "mat the on sat who cat The", "0", "0");
    expect("reverse_words", "\"sentence\": \"The cat sat.\"", NULL, "sat. cat The", "1", "1");
    expect("first_n_words", S_CAT ", \"n\": 3", NULL, "The cat, who", "1", "1");
    expect("first_n_words", S_CAT ", \"n\": 3", NULL, "The cat who", "0", "0");
    expect("first_n_words", S_CAT ", \"n\": 3", NULL, "The cat, who sat", "0", "0");
    expect("first_n_words", S_CAT ", \"n\": 30", NULL, "The cat, who sat (on the mat).", "1", "1");
    expect("first_n_words", S_CAT ", \"n\": -2", NULL, "The cat, who sat (on", "1", "1"); /* Python w[:-2] */
    expect("last_word", S_CAT, NULL, "mat", "1", "1");
    expect("last_word", S_CAT, NULL, "mat).", "0", "0");
    expect("last_word", S_CAT, NULL, "(mat)", "0", "0");
    expect("last_word", "\"sentence\": \"Thou grow'st.\"", NULL, "grow'st", "1", "1");
    expect("last_word", "\"sentence\": \"Thou grow'st.\"", NULL, "growst", "0", "0");
    expect("count_words", S_CAT, NULL, "7", "1", "1");
    expect("count_words", S_CAT, NULL, "\n7 ", "1", "1");
    expect("count_words", S_CAT, NULL, "07", "0", "0");
    expect("count_words", S_CAT, NULL, "+7", "0", "0");
    expect("count_words", S_CAT, NULL, "6", "0", "0");
    expect("count_words", S_CAT, NULL, "seven", "0", "0");
    expect("remove_commas", S_CAT, NULL, "The cat who sat (on the mat).", "1", "1");
    expect("remove_commas", S_CAT, NULL, "The cat, who sat (on the mat).", "0", "0");
    expect("remove_commas", S_CAT, NULL, "The cat  who sat (on the mat).", "0", "0");
    expect("number_words", "\"sentence\": \"One two, three.\"", NULL, "1. One\n2. two,\n3. three.", "1", "1");
    expect("number_words", "\"sentence\": \"One two, three.\"", NULL, "1. One\n2. two,\n3. three.\n", "1", "1");
    expect("number_words", "\"sentence\": \"One two, three.\"", NULL, "1. One\n2. two,\n\n3. three.", "0", "0");
    expect("number_words", "\"sentence\": \"One two, three.\"", NULL, "1. One 2. two, 3. three.", "0", "0");
    expect("number_words", "\"sentence\": \"One two, three.\"", NULL, "1.One\n2.two,\n3.three.", "0", "0");
}

#define REPEAT_X "\"sentence\": \"Go home now.\""
#define END_DONE "{\"type\": \"end_with\", \"kwargs\": {\"phrase\": \"Done.\"}}"
#define JSON_ANS "{\"type\": \"json_answer\", \"kwargs\": {}}"
#define QUOTES "{\"type\": \"quotes\", \"kwargs\": {}}"

static void check_format_types(void)
{
    expect("repeat", REPEAT_X, END_DONE, "Go home now.\nDone.", "11", "11");
    expect("repeat", REPEAT_X, END_DONE, "Go home now.\nDone. \n\t", "11", "11");
    expect("repeat", REPEAT_X, END_DONE, "Go home now.Done.", "11", "11");
    expect("repeat", REPEAT_X, END_DONE, "Go home now.\nDone", "00", "10");
    expect("repeat", REPEAT_X, END_DONE, "Go home now.", "10", "10"); /* R unchanged when end_with fails */
    expect("repeat", REPEAT_X, END_DONE, "Go home now.\ndone.", "00", "10");
    expect("repeat", REPEAT_X, END_DONE, "Done. Go home now.", "00", "00");
    expect("count_words", REPEAT_X, JSON_ANS, "{\"answer\": 3}", "11", "11");
    expect("count_words", REPEAT_X, JSON_ANS, "{\"answer\": \"3\"}", "11", "11");
    expect("count_words", REPEAT_X, JSON_ANS, " \n{ \"answer\"\t:\r3\n}\v", "11", "11");
    expect("count_words", REPEAT_X, JSON_ANS, "3", "00", "00"); /* unparsable fails both */
    expect("count_words", REPEAT_X, JSON_ANS, "{\"answer\": 03}", "00", "00");
    expect("count_words", REPEAT_X, JSON_ANS, "{\"answer\": 4}", "01", "01");
    expect("repeat", REPEAT_X, JSON_ANS, "{\"answer\": \"Go home now.\"}", "11", "11");
    expect("repeat", REPEAT_X, JSON_ANS, "{\"answer\": \"Go home now.\", \"x\": 1}", "00", "00");
    expect("repeat", REPEAT_X, JSON_ANS, "{\"answer\": \"Go home now.\"}}", "00", "00");
    expect("repeat", REPEAT_X, JSON_ANS, "Here: {\"answer\": \"Go home now.\"}", "00", "00");
    expect("repeat", REPEAT_X, JSON_ANS, "Here:\n{\"answer\": \"Go home now.\"}", "00", "11");
    expect("repeat", REPEAT_X, JSON_ANS, "{\"answer\": \" Go home now.\\n\"}", "11", "11"); /* payload stripped */
    expect("repeat", REPEAT_X, JSON_ANS, "{\"answer\": \"Go \\u0068ome now\\u002E\"}", "11", "11");
    expect("repeat", REPEAT_X, QUOTES, "\"Go home now.\"", "11", "11");
    expect("repeat", REPEAT_X, QUOTES, " \"Go home now.\" \n", "11", "11");
    expect("repeat", REPEAT_X, QUOTES, "Go home now.", "10", "10");
    expect("repeat", REPEAT_X, QUOTES, "\"Go home now.", "00", "00");
    expect("repeat", REPEAT_X, QUOTES, "\"", "00", "00");
    expect("repeat", REPEAT_X, QUOTES, "\"\"", "01", "01");
    expect("repeat", REPEAT_X, QUOTES, "'Go home now.'", "00", "00");
    expect("repeat", REPEAT_X, QUOTES, "\" Go home now. \"", "11", "11");
    expect("number_words", "\"sentence\": \"a b.\"", JSON_ANS, "{\"answer\": \"1. a\\n2. b.\"}", "11", "11");
    expect("number_words", "\"sentence\": \"a b.\"", JSON_ANS, "{\"answer\": \"1. a\n2. b.\"}", "00", "00");
}

/* The json_answer grammar on its own: payload or rejection. */
static void json_case(const char *t, const char *payload, size_t plen)
{
    char buf[256];
    size_t got = 999;
    int ok = ife_json_answer(t, strlen(t), buf, &got);
    CHECK_MSG(ok == (payload != NULL), "json_answer(%s) = %d", t, ok);
    if (ok && payload) CHECK_MSG(got == plen && !memcmp(buf, payload, plen), "json_answer(%s) payload", t);
}

static void check_json_grammar(void)
{
    json_case("{\"answer\":\"x\"}", "x", 1);
    json_case("{\"answer\": -0}", "-0", 2);
    json_case("{\"answer\": 120}", "120", 3);
    json_case("{\"answer\": -12}", "-12", 3);
    json_case("{\"\\u0061nswer\": \"x\"}", "x", 1);
    json_case("{\"answer\": \"\\ud83d\\uDE00\"}", "\xf0\x9f\x98\x80", 4);
    json_case("{\"answer\": \"a\\u00e9\\u20ac\"}", "a\xc3\xa9\xe2\x82\xac", 6);
    json_case("{\"answer\": \"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}", "\"\\/\b\f\n\r\t", 8);
    json_case("{\"answer\": \"\\u0000\"}", "\0", 1);
    json_case("{\"answer\": \"\x7f\xc3\xa9\"}", "\x7f\xc3\xa9", 3);
    json_case("{\"answer\": \"\"}", "", 0);
    json_case("{\"answer\": \"\\ud83d\"}", NULL, 0);
    json_case("{\"answer\": \"\\ud83d\\u0041\"}", NULL, 0);
    json_case("{\"answer\": \"\\ude00\"}", NULL, 0);
    json_case("{\"answer\": \"\\u12G4\"}", NULL, 0);
    json_case("{\"answer\": \"\\x\"}", NULL, 0);
    json_case("{\"answer\": \"\\'\"}", NULL, 0);
    json_case("{\"answer\": \"a\tb\"}", NULL, 0);
    json_case("{\"answer\": \"a\nb\"}", NULL, 0);
    json_case("{\"answer\": 1.5}", NULL, 0);
    json_case("{\"answer\": 1e5}", NULL, 0);
    json_case("{\"answer\": 1E5}", NULL, 0);
    json_case("{\"answer\": 01}", NULL, 0);
    json_case("{\"answer\": +1}", NULL, 0);
    json_case("{\"answer\": -}", NULL, 0);
    json_case("{\"answer\": true}", NULL, 0);
    json_case("{\"answer\": null}", NULL, 0);
    json_case("{\"answer\": [\"x\"]}", NULL, 0);
    json_case("{\"answer\": {\"a\": 1}}", NULL, 0);
    json_case("{\"Answer\": \"x\"}", NULL, 0);
    json_case("{\"answer \": \"x\"}", NULL, 0);
    json_case("{\"answer\": \"x\"} ", NULL, 0); /* the caller strips; trailing text fails */
    json_case("{\"answer\": \"x\"", NULL, 0);
    json_case("{\"answer\" \"x\"}", NULL, 0);
    json_case("{\v\"answer\": \"x\"}", NULL, 0);
    json_case("{\"answer\": \"x\",}", NULL, 0);
    json_case("{}", NULL, 0);
    json_case("", NULL, 0);
    json_case("[\"answer\"]", NULL, 0);
}

static void check_loose(void)
{
    expect("repeat", REPEAT_X, NULL, "Sure! Here it is:\nGo home now.", "0", "1");
    expect("repeat", REPEAT_X, NULL, "Go home now.\nI hope this helps.", "0", "1");
    expect("repeat", REPEAT_X, NULL, "Sure:\nGo home now.\nBye.", "0", "1");
    expect("repeat", REPEAT_X, NULL, "**Go home now.**", "0", "1");
    expect("repeat", REPEAT_X, NULL, "Sure:\n**Go home now.**", "0", "1");
    expect("repeat", REPEAT_X, NULL, "a\nb\nGo home now.\nc", "0", "0");
    expect("repeat", REPEAT_X, QUOTES, "Sure:\n\"Go home now.\"", "00", "11");
    expect("repeat", REPEAT_X, NULL, "   ", "0", "0");
    /* stats: prompt-level needs every instruction */
    ife_item it;
    mk(&it, "repeat", REPEAT_X, QUOTES);
    ife_stats s;
    memset(&s, 0, sizeof s);
    uint8_t a[2] = {1, 0}, b[2] = {1, 1};
    ife_stats_add(&s, &it, a, b);
    ife_stats_add(&s, &it, b, b);
    CHECK(s.prompts == 2 && s.prompt_pass[0] == 1 && s.prompt_pass[1] == 2);
    CHECK(s.insts == 4 && s.inst_pass[0] == 3 && s.inst_pass[1] == 4);
    CHECK(s.type_n[IFE_QUOTES] == 2 && s.type_pass[0][IFE_QUOTES] == 1 && s.type_pass[0][IFE_REPEAT] == 2);
    ife_item_free(&it);
}

static void check_parse_errors(void)
{
    static const char *bad[] = {
        "{\"id\": \"a\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"instructions\": [{\"type\": \"nope\", \"kwargs\": {}}]}",
        "{\"id\": \"a\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"instructions\": [{\"type\": \"repeat\", \"kwargs\": {}}]}",
        "{\"id\": \"a\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"instructions\": [{\"type\": \"first_n_words\", \"kwargs\": {\"sentence\": \"a b\"}}]}",
        "{\"id\": \"a\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"instructions\": [{\"type\": \"quotes\", \"kwargs\": {}}, {\"type\": \"quotes\", \"kwargs\": {}}]}",
        "{\"id\": \"a\", \"messages\": [], \"instructions\": [{\"type\": \"quotes\", \"kwargs\": {}}]}",
        "{\"id\": \"a\", \"messages\": [{\"role\": \"user\"}], \"instructions\": [{\"type\": \"quotes\", \"kwargs\": {}}]}",
        "{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"instructions\": [{\"type\": \"quotes\", \"kwargs\": {}}]}",
        "{\"id\": \"a\", \"messages\": [{\"role\": \"user\", \"content\": \"x\"}], \"instructions\": [{\"type\": \"end_with\", \"kwargs\": {}}]}",
        "{\"id\": \"a\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ife_item it;
        int rc = ife_item_parse(bad[i], strlen(bad[i]), "bad.jsonl:7", &it);
        CHECK_MSG(rc == UPQ_EINPUT && strstr(upq_errmsg(), "bad.jsonl:7"), "bad item %zu: rc %d, %s", i, rc, upq_errmsg());
    }
}

int main(void)
{
    check_content_types();
    check_format_types();
    check_json_grammar();
    check_loose();
    check_parse_errors();
    if (tu_failures) return tu_finish("test_ifeval"); /* a failure is never hidden by a skip */
    const char *d = tu_shared_dir(); /* skips (77) without ../shared, after the data-free cases */
    char p[4096];
    items l = {0};
    snprintf(p, sizeof p, "%s/data/instruct-eval/eval.jsonl", d);
    CHECK_OK(read_items(p, &l));
    check_references(&l);
    snprintf(p, sizeof p, "%s/models/tinyllama-15m-instruct/eval_outputs.jsonl", d);
    check_outputs(&l, p);
    for (int64_t i = 0; i < l.n; i++) ife_item_free(&l.v[i]);
    free(l.v);
    return tu_finish("test_ifeval");
}
