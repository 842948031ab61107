/* test_jobfile.c - the job-file parser (jobs/jobfile.h): sections, comments, quotes,
 * later lines and --set overriding earlier ones, typed lookups with their errors
 * (file:line in the message), unknown keys, the sweep grid (order, count, apply,
 * bounds) against an independent nested-loop enumeration, and the resolved-job
 * writer round-tripping through the parser. Also the example job files of jobs/. */
#include <stdio.h>
#include <string.h>

#include "jobfile.h"
#include "run.h"
#include "test_util.h"
#include "upq_err.h"

static const char *text =
    "# a comment\n"
    "[job]\n"
    "name = t1   ; trailing comment\n"
    "dir = runs/x#notacomment\n"
    "\n"
    "[model]\r\n"
    "  demo = yes\n"
    "steps = 16\n"
    "label = \"a # b\"\n"
    "steps = 32\n"
    "[ppl]\n"
    "ctx=64\n"
    "[sweep]\n"
    "ptq.bits = 2, 3,4\n"
    "ptq.group = 64,128\n";

static void test_parse(void)
{
    job_file j;
    CHECK_OK(job_parse_text(text, "t.ini", &j));
    CHECK(!strcmp(job_get(&j, "job", "name"), "t1"));
    CHECK(!strcmp(job_get(&j, "job", "dir"), "runs/x#notacomment"));
    CHECK(!strcmp(job_get(&j, "model", "label"), "a # b"));
    CHECK(job_get(&j, "model", "nope") == NULL);
    int64_t v = 0;
    CHECK_OK(job_get_i64(&j, "model", "steps", 0, 1, 100, &v));
    CHECK(v == 32);
    CHECK_OK(job_get_i64(&j, "ppl", "batch", 7, 1, 100, &v));
    CHECK(v == 7);
    int b = 0;
    CHECK_OK(job_get_bool(&j, "model", "demo", 0, &b));
    CHECK(b == 1);
    /* range error names file:line of the *last* definition */
    CHECK(job_get_i64(&j, "model", "steps", 0, 1, 20, &v) == UPQ_EINPUT);
    CHECK(strstr(upq_errmsg(), "t.ini:10") != NULL);
    CHECK(job_get_bool(&j, "job", "name", 0, &b) == UPQ_EINPUT);
    /* --set overrides, adds, and rejects junk */
    CHECK_OK(job_set(&j, "model.steps=5"));
    CHECK_OK(job_set(&j, "data.eval_tokens=/x/y.h5:/tokens"));
    CHECK(!strcmp(job_get(&j, "data", "eval_tokens"), "/x/y.h5:/tokens"));
    CHECK_OK(job_get_i64(&j, "model", "steps", 0, 1, 20, &v));
    CHECK(v == 5);
    CHECK(job_set(&j, "steps=5") == UPQ_EUSAGE);
    CHECK(job_set(&j, "model.=5") == UPQ_EUSAGE);
    CHECK(job_set(&j, "a b.c=5") == UPQ_EUSAGE);
    CHECK_OK(job_set(&j, "sweep.ppl.ctx=16,32"));
    CHECK(!strcmp(job_get(&j, "sweep", "ppl.ctx"), "16,32"));
    job_free(&j);
}

static void test_errors(void)
{
    job_file j;
    CHECK(job_parse_text("key = 1\n", "e.ini", &j) == UPQ_EINPUT);
    CHECK(strstr(upq_errmsg(), "e.ini:1") != NULL);
    CHECK(job_parse_text("[a]\nno equals sign\n", "e.ini", &j) == UPQ_EINPUT);
    CHECK(strstr(upq_errmsg(), "e.ini:2") != NULL);
    CHECK(job_parse_text("[a\n", "e.ini", &j) == UPQ_EINPUT);
    CHECK(job_parse_text("[a]\nb.c = 1\n", "e.ini", &j) == UPQ_EINPUT);
    CHECK(job_load("/nonexistent/job.ini", &j) == UPQ_EINPUT);
    CHECK(strstr(upq_errmsg(), "/nonexistent/job.ini") != NULL);
    /* unknown keys, also inside [sweep] */
    static const char *const known[] = {"job.dir", "ppl.*", NULL};
    CHECK_OK(job_parse_text("[job]\ndir=x\n[ppl]\nanything=1\n[sweep]\nppl.ctx=1,2\n", "k.ini", &j));
    CHECK_OK(job_check_keys(&j, known));
    CHECK_OK(job_set(&j, "job.bogus=1"));
    CHECK(job_check_keys(&j, known) == UPQ_EINPUT);
    job_free(&j);
    CHECK_OK(job_parse_text("[job]\ndir=x\n[sweep]\nmodel.steps=1,2\n", "k.ini", &j));
    CHECK(job_check_keys(&j, known) == UPQ_EINPUT);
    CHECK(strstr(upq_errmsg(), "k.ini:4") != NULL);
    job_free(&j);
}

static void test_sweep(void)
{
    job_file j;
    CHECK_OK(job_parse_text(text, "t.ini", &j));
    job_sweep s;
    CHECK_OK(job_sweep_read(&j, &s));
    CHECK(s.nparams == 2 && s.npoints == 6);
    static const char *bits[] = {"2", "3", "4"}, *group[] = {"64", "128"};
    int64_t i = 0;
    for (int a = 0; a < 3; a++)
        for (int g = 0; g < 2; g++, i++) {
            CHECK(!strcmp(job_sweep_value(&s, i, 0), bits[a]));
            CHECK(!strcmp(job_sweep_value(&s, i, 1), group[g]));
            char want[64], got[256];
            snprintf(want, sizeof want, "ptq.bits=%s ptq.group=%s", bits[a], group[g]);
            job_sweep_describe(&s, i, got, sizeof got);
            CHECK_MSG(!strcmp(want, got), "point %lld: '%s' vs '%s'", (long long)i, got, want);
        }
    CHECK_OK(job_sweep_apply(&s, 3, &j));
    CHECK(!strcmp(job_get(&j, "ptq", "bits"), "3") && !strcmp(job_get(&j, "ptq", "group"), "128"));
    CHECK(job_sweep_apply(&s, 6, &j) == UPQ_EUSAGE);
    CHECK(job_sweep_apply(&s, -1, &j) == UPQ_EUSAGE);
    job_free(&j);
    CHECK_OK(job_parse_text("[sweep]\nppl.ctx = ,\n", "s.ini", &j));
    CHECK(job_sweep_read(&j, &s) == UPQ_EINPUT);
    job_free(&j);
    CHECK_OK(job_parse_text("[sweep]\nctx = 1,2\n", "s.ini", &j));
    CHECK(job_sweep_read(&j, &s) == UPQ_EINPUT);
    job_free(&j);
}

static void test_write_roundtrip(void)
{
    job_file j, k;
    CHECK_OK(job_parse_text(text, "t.ini", &j));
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    CHECK_OK(job_write(&j, f));
    fclose(f);
    CHECK_OK(job_parse_text(buf, "w.ini", &k));
    CHECK(k.n == j.n);
    for (int i = 0; i < j.n && i < k.n; i++)
        CHECK_MSG(!strcmp(j.e[i].sect, k.e[i].sect) && !strcmp(j.e[i].key, k.e[i].key) &&
                      !strcmp(j.e[i].val, k.e[i].val),
                  "entry %d: [%s] %s = '%s' came back as [%s] %s = '%s'", i, j.e[i].sect, j.e[i].key, j.e[i].val,
                  k.e[i].sect, k.e[i].key, k.e[i].val);
    free(buf);
    job_free(&j);
    job_free(&k);
}

/* The shipped examples parse and use only keys upq run knows. */
static void test_examples(void)
{
    static const char *files[] = {"jobs/demo.ini", "jobs/sweep.ini", "jobs/real-model.ini"};
    for (int i = 0; i < 3; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", UPQ_SOURCE_DIR, files[i]);
        job_file j;
        CHECK_OK(job_load(p, &j));
        CHECK_OK(job_check_keys(&j, run_known_keys));
        job_sweep s;
        CHECK_OK(job_sweep_read(&j, &s));
        job_free(&j);
    }
}

int main(void)
{
    test_parse();
    test_errors();
    test_sweep();
    test_write_roundtrip();
    test_examples();
    return tu_finish("test_jobfile");
}
