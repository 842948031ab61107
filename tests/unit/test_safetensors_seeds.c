/* test_safetensors_seeds.c - replays the fuzzer's seed corpus (and any crash
 * regressions saved beside it) through the libFuzzer harness without libFuzzer,
 * so every build runs it: each input must either parse with all invariants holding
 * or be rejected with a message. Also checks that the valid seeds do parse. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fuzz/fuzz_safetensors.c"
#include "test_util.h"

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *b = malloc(sz > 0 ? (size_t)sz : 1);
    *n = b ? fread(b, 1, (size_t)sz, fp) : 0;
    fclose(fp);
    return b;
}

int main(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/safetensors", UPQ_SOURCE_DIR);
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "cannot open %s", dir);
    if (!d) return tu_finish("test_safetensors_seeds");
    int files = 0, parsed = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char p[8192];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        size_t n = 0;
        uint8_t *b = slurp(p, &n);
        CHECK_MSG(b != NULL, "cannot read %s", p);
        if (!b) continue;
        LLVMFuzzerTestOneInput(b, n);
        st_file *f = NULL;
        int ok = st_parse_mem(b, n, e->d_name, &f) == UPQ_OK;
        parsed += ok;
        if (ok) st_close(f);
        /* seeds named *_header_only are truncated on purpose; all other seeds are valid files */
        if (!strstr(e->d_name, "header_only") && !strstr(e->d_name, "crash-"))
            CHECK_MSG(ok, "valid seed %s rejected: %s", e->d_name, upq_errmsg());
        free(b);
        files++;
    }
    closedir(d);
    printf("replayed %d corpus files, %d parsed\n", files, parsed);
    CHECK(files >= 5 && parsed >= 5);
    return tu_finish("test_safetensors_seeds");
}
