/* test_json_paths.c - the JSON files upq writes keep awkward paths intact: DIR/ppl.json
 * (run_write_ppl, the `upq run` ppl stage's result) written with an options key that
 * holds a path with double quotes, backslashes, a tab, a newline and non-ASCII text, in a
 * folder whose own name has them too, is valid JSON for an independent parse (jansson's
 * loader, no upq code), gives back the exact key and numbers (run_read_ppl,
 * run_ppl_made_with), and a key differing in one escaped character does not match. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "run_internal.h"
#include "test_util.h"
#include "upq_err.h"

static const char *const WEIRD = "a \"quoted\" dir\\with\\backslashes\t\n/Grüße-数据-🙂";

int main(void)
{
    char root[] = "/tmp/upq_test_json_XXXXXX", dir[512], key[1024], path[600];
    CHECK(mkdtemp(root) != NULL);
    snprintf(dir, sizeof dir, "%s/%s", root, "run \"1\" \\ ü");
    CHECK(mkdir(dir, 0755) == 0);
    snprintf(key, sizeof key, "ctx=16 batch=2 max_windows=0 tokens=%s/eval.h5:/tokens of model=%s", WEIRD, WEIRD);

    CHECK_OK(run_write_ppl(dir, 12.5, log(12.5), 3 * 15 * log(12.5), 3, 45, key));

    /* independent parse of the file: jansson's loader only */
    snprintf(path, sizeof path, "%s/ppl.json", dir);
    json_error_t e;
    json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, &e);
    CHECK_MSG(o != NULL, "%s: not valid JSON: %s", path, e.text);
    const char *k = json_string_value(json_object_get(o, "options"));
    CHECK_MSG(k && !strcmp(k, key), "options came back as '%s'", k ? k : "(none)");
    CHECK(json_integer_value(json_object_get(o, "windows")) == 3);
    CHECK(json_integer_value(json_object_get(o, "predicted")) == 45);
    CHECK(json_real_value(json_object_get(o, "ppl")) == 12.5);
    json_decref(o);

    /* upq's own readers */
    double ppl = 0, nll = 0;
    int64_t win = 0;
    CHECK_OK(run_read_ppl(dir, &ppl, &nll, &win));
    CHECK_MSG(ppl == 12.5 && nll == log(12.5) && win == 3, "read back ppl %.17g nll %.17g windows %lld", ppl, nll,
              (long long)win);
    CHECK(run_ppl_made_with(dir, key) == 1);
    char other[1024];
    snprintf(other, sizeof other, "%s", key);
    *strchr(other, '\\') = '/';
    CHECK(run_ppl_made_with(dir, other) == 0);

    /* a result file that is not JSON is an input error naming the file, not a crash */
    FILE *f = fopen(path, "w");
    CHECK(f && fputs("{\"ppl\": 1.0, \"options\": \"unterminated", f) >= 0 && fclose(f) == 0);
    CHECK(run_read_ppl(dir, &ppl, &nll, &win) == UPQ_EINPUT && strstr(upq_errmsg(), "ppl.json"));
    CHECK(run_ppl_made_with(dir, key) == 0);

    /* absent: NAN, no error */
    CHECK(unlink(path) == 0);
    CHECK_OK(run_read_ppl(dir, &ppl, &nll, &win));
    CHECK(isnan(ppl) && win == 0);

    CHECK(rmdir(dir) == 0 && rmdir(root) == 0);
    return tu_finish("test_json_paths");
}
