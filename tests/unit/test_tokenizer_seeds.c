/* test_tokenizer_seeds.c - replays the tokenizer.json fuzz corpus (and the crash
 * regressions kept there, named crash-*) through the loader harness without libFuzzer,
 * so every build runs it: each input is either rejected with UPQ_EINPUT and a message
 * or loads and encodes/decodes fixed texts with all ids in the vocabulary. The valid
 * seeds must load. (tests/unit/test_tokenizer_encode_seeds.c does the encode corpus.) */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fuzz/fuzz_tok_json.c"
#include "test_util.h"

int main(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/tokenizer_json", UPQ_SOURCE_DIR);
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "cannot open %s", dir);
    if (!d) return tu_finish("test_tokenizer_seeds");
    int files = 0, loaded = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[8192];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        char *b = NULL;
        int64_t n = 0;
        CHECK_OK(tok_read_file(p, &b, &n));
        if (!b) continue;
        LLVMFuzzerTestOneInput((const uint8_t *)b, (size_t)n);
        tok_tokenizer *t = NULL;
        int ok = tok_create_json(b, (size_t)n, e->d_name, &t) == UPQ_OK;
        /* crash-* are regressions of the harness's checks: they may load or be rejected */
        if (!strstr(e->d_name, "crash-")) CHECK_MSG(ok, "valid seed %s rejected: %s", e->d_name, upq_errmsg());
        loaded += ok;
        tok_destroy(t);
        free(b);
        files++;
    }
    closedir(d);
    printf("replayed %d tokenizer.json files, %d loaded\n", files, loaded);
    CHECK(files >= 5 && loaded >= 5);
    return tu_finish("test_tokenizer_seeds");
}
