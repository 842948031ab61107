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

int run_file_is(const char *path, const char *key)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t k = strlen(key), n = 0;
    char *buf = malloc(k + 2);
    if (buf) n = fread(buf, 1, k + 2, f);
    fclose(f);
    int same = buf && n == k + 1 && !memcmp(buf, key, k) && buf[k] == '\n';
    free(buf);
    return same;
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

int run_write_atomic(const char *path, const void *data, size_t n)
{
    char tmp[RUN_PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) return UPQ_FAIL(UPQ_EIO, "%s: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = n;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return UPQ_FAIL(UPQ_EIO, "writing %s: %s", tmp, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) || close(fd)) {
        unlink(tmp);
        return UPQ_FAIL(UPQ_EIO, "fsync/close %s: %s", tmp, strerror(errno));
    }
    if (rename(tmp, path)) return UPQ_FAIL(UPQ_EIO, "rename %s -> %s: %s", tmp, path, strerror(errno));
    return UPQ_OK;
}

int run_point_dir(const job_file *job, int64_t index, char *buf, size_t cap)
{
    const char *dir = job_get(job, "job", "dir");
    if (!dir || !*dir) return UPQ_FAIL(UPQ_EINPUT, "%s: [job] dir (the run directory) is required", job->path);
    int n = index < 0 ? snprintf(buf, cap, "%s", dir) : snprintf(buf, cap, "%s/points/%lld", dir, (long long)index);
    if (n < 0 || (size_t)n >= cap) return UPQ_FAIL(UPQ_EINPUT, "%s: job.dir too long", job->path);
    while (n > 1 && buf[n - 1] == '/') buf[--n] = '\0';
    return UPQ_OK;
}
