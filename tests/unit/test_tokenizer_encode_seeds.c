/* test_tokenizer_encode_seeds.c - replays the encode fuzz corpus through
 * tests/fuzz/fuzz_tok_encode.c without libFuzzer (every build): each input picks one of
 * the seed tokenizers (plus stories260k and tinyllama-15m when ../shared is there) and
 * must pass the harness's checks (ids in range, cache and '▁' cut change nothing,
 * byte-level round trip of valid UTF-8), which abort on failure. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fuzz/fuzz_tok_encode.c"
#include "test_util.h"

int main(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/tokenizer_encode", UPQ_SOURCE_DIR);
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "cannot open %s", dir);
    if (!d) return tu_finish("test_tokenizer_encode_seeds");
    int files = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[8192];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        char *b = NULL;
        int64_t n = 0;
        CHECK_OK(tok_read_file(p, &b, &n));
        if (!b) continue;
        /* every input through every tokenizer */
        for (int k = 0; k < (fz_n < 0 ? 1 : fz_n); k++) {
            if (n >= 1) b[0] = (char)k;
            LLVMFuzzerTestOneInput((const uint8_t *)b, (size_t)n);
        }
        free(b);
        files++;
    }
    closedir(d);
    printf("replayed %d encode inputs through %d tokenizers\n", files, fz_n);
    CHECK(files >= 5 && fz_n >= 5);
    return tu_finish("test_tokenizer_encode_seeds");
}
