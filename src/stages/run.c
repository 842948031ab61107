/* run.c - the file helpers every `upq run` stage shares (run_internal.h): path join,
 * existence, clearing a folder, a one-line record file, mkdir -p, atomic write, the run
 * directory of a sweep point.
 * Rank-local. Not the orchestrator (run_job.c) nor the stages (run_model.c,
 * run_prepare.c, run_ptq.c, run_ppl.c): those call down into this file, never back. */
#include "run.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "par.h"
#include "run_internal.h"
#include "signals.h"
#include "stage_state.h"
#include "upq_err.h"

void run_join(char *buf, size_t cap, const char *a, const char *b)
{
    int n = snprintf(buf, cap, "%s/%s", a, b);
    UPQ_ASSERT(n > 0 && (size_t)n < cap);
}

int run_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int run_clear_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? UPQ_OK : UPQ_FAIL(UPQ_EIO, "%s: %s", dir, strerror(errno));
    int rc = UPQ_OK;
    for (struct dirent *e; !rc && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char f[RUN_PATH_MAX + 300];
        snprintf(f, sizeof f, "%s/%s", dir, e->d_name);
        if (unlink(f) && errno != ENOENT) rc = UPQ_FAIL(UPQ_EIO, "removing %s: %s", f, strerror(errno));
    }
    closedir(d);
    return rc;
}

int run_record_put(const char *path, const char *stage, const char *key)
{
    return ss_record_write(path, stage, key, NULL, 0);
}

int run_record_is(const char *path, const char *stage, const char *key)
{
    int st;
    void *p;
    size_t n;
    if (ss_record_read(path, stage, key, 1, &st, &p, &n)) return 0; /* unreadable: redo */
    free(p);
    return st == SS_MATCH;
}

int run_mkdir_p(const char *dir)
{
    char p[RUN_PATH_MAX];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
        return UPQ_FAIL(UPQ_EINPUT, "run directory path too long: %s", dir);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s) continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0777) && errno != EEXIST) return UPQ_FAIL(UPQ_EIO, "mkdir %s: %s", p, strerror(errno));
        *s = c;
        if (!c) break;
    }
    struct stat st;
    if (stat(dir, &st) || !S_ISDIR(st.st_mode)) return UPQ_FAIL(UPQ_EIO, "%s is not a directory", dir);
    return UPQ_OK;
}

int run_write_atomic(const char *path, const void *data, size_t n) { return ss_write(path, data, n); }

int run_point_dir(const job_file *job, int64_t index, char *buf, size_t cap)
{
    const char *dir = job_get(job, "job", "dir");
    if (!dir || !*dir) return UPQ_FAIL(UPQ_EINPUT, "%s: [job] dir (the run directory) is required", job->path);
    int n = index < 0 ? snprintf(buf, cap, "%s", dir) : snprintf(buf, cap, "%s/points/%lld", dir, (long long)index);
    if (n < 0 || (size_t)n >= cap) return UPQ_FAIL(UPQ_EINPUT, "%s: job.dir too long", job->path);
    while (n > 1 && buf[n - 1] == '/') buf[--n] = '\0';
    return UPQ_OK;
}
