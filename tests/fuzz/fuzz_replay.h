/* fuzz_replay.h - for the unit tests that replay a fuzz corpus without libFuzzer (every
 * build): fz_replay calls each(name, bytes, n, ctx) on every file of
 * UPQ_SOURCE_DIR/tests/fuzz/corpus/<corpus> (dot files skipped). Not a harness itself. */
#ifndef UPQ_FUZZ_REPLAY_H
#define UPQ_FUZZ_REPLAY_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>

#include "test_util.h"
#include "tokenizer.h"

/* Returns the number of files replayed, -1 (a failed CHECK) when the folder cannot be read. */
static int fz_replay(const char *corpus, void (*each)(const char *, char *, int64_t, void *), void *ctx)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", UPQ_SOURCE_DIR, corpus);
    DIR *d = opendir(dir);
    CHECK_MSG(d != NULL, "cannot open %s", dir);
    if (!d) return -1;
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
        each(e->d_name, b, n, ctx);
        free(b);
        files++;
    }
    closedir(d);
    return files;
}

#endif
