/* stage_state.c - begin/commit of files (temp name, fsync, rename, folder fsync) and the
 * validated stage record (stage_state.h, docs/stage-state.md). Plain POSIX I/O, no MPI
 * and no HDF5: h5util.c's container commit and the stage drivers' records both end in
 * ss_commit. Not the agreement of ranks (par_commit in mpi/par.h). */
#include "stage_state.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sha256.h"
#include "upq_err.h"

void ss_tmp_name(const char *path, char *tmp, size_t cap)
{
    int n = snprintf(tmp, cap, "%s.tmp", path);
    UPQ_ASSERT(n > 0 && (size_t)n < cap);
}

static int fsync_path(const char *p, int dir)
{
    int fd = open(p, dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
    if (fd < 0) return -1;
    int r = fsync(fd);
    close(fd);
    return r;
}

int ss_commit(const char *tmp, const char *path)
{
    if (fsync_path(tmp, 0) != 0) return UPQ_FAIL(UPQ_EIO, "%s: fsync failed: %s", tmp, strerror(errno));
    if (rename(tmp, path) != 0)
        return UPQ_FAIL(UPQ_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    char d[4096];
    snprintf(d, sizeof d, "%s", path);
    fsync_path(dirname(d), 1); /* best effort: some file systems refuse directory fsync */
    return UPQ_OK;
}

void ss_abort(const char *tmp) { unlink(tmp); }

int ss_write(const char *path, const void *data, size_t n)
{
    char tmp[4200];
    ss_tmp_name(path, tmp, sizeof tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (fd < 0) return UPQ_FAIL(UPQ_EIO, "%s: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = n;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = w < 0 ? errno : ENOSPC;
            close(fd);
            ss_abort(tmp);
            return UPQ_FAIL(UPQ_EIO, "writing %s: %s", tmp, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (close(fd) != 0) {
        int e = errno;
        ss_abort(tmp);
        return UPQ_FAIL(UPQ_EIO, "closing %s: %s", tmp, strerror(e));
    }
    int rc = ss_commit(tmp, path);
    if (rc) ss_abort(tmp);
    return rc;
}

/* ---- the record: a text header, an empty line, the payload ---- */

int ss_record_write(const char *path, const char *stage, const char *key, const void *payload, size_t n)
{
    UPQ_ASSERT(!strchr(stage, '\n') && !strchr(key, '\n'));
    uint8_t d[32];
    char hex[65];
    sha256_buf(payload, n, d);
    sha256_hex(d, hex);
    size_t cap = strlen(stage) + strlen(key) + 200 + n;
    char *buf = upq_malloc(cap, "stage record");
    if (!buf) return UPQ_EIO;
    int hl = snprintf(buf, cap, "%s\nstage %s\nkey %s\nbytes %zu\nsha256 %s\n\n", SS_MAGIC, stage, key, n, hex);
    UPQ_ASSERT(hl > 0 && (size_t)hl + n <= cap);
    if (n) memcpy(buf + hl, payload, n);
    int rc = ss_write(path, buf, (size_t)hl + n);
    free(buf);
    return rc;
}

static int read_all(const char *path, char **out, size_t *n, int *absent)
{
    *out = NULL, *n = 0, *absent = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) {
            *absent = 1;
            return UPQ_OK;
        }
        return UPQ_FAIL(UPQ_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat st;
    char *buf = NULL;
    int rc = fstat(fileno(f), &st) ? UPQ_FAIL(UPQ_EIO, "%s: %s", path, strerror(errno)) : UPQ_OK;
    if (!rc) buf = upq_malloc((size_t)st.st_size + 1, "stage record");
    if (!rc && !buf) rc = UPQ_EIO;
    if (!rc && fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
        rc = UPQ_FAIL(UPQ_EIO, "%s: read failed", path);
    fclose(f);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[st.st_size] = '\0';
    *out = buf, *n = (size_t)st.st_size;
    return UPQ_OK;
}

/* The value after "<name> " on the line at *p, NUL-terminated in place; *p moves on. */
static char *field(char **p, const char *name)
{
    size_t k = strlen(name);
    char *nl = strchr(*p, '\n');
    if (!nl || strncmp(*p, name, k) || (*p)[k] != ' ') return NULL;
    *nl = '\0';
    char *v = *p + k + 1;
    *p = nl + 1;
    return v;
}

static int parse(char *buf, size_t len, const char *stage, const char *key, void **payload, size_t *n)
{
    size_t ml = strlen(SS_MAGIC);
    if (len < ml + 1 || memcmp(buf, SS_MAGIC, ml) || buf[ml] != '\n') return SS_DAMAGED;
    char *p = buf + ml + 1;
    char *st = field(&p, "stage"), *k = st ? field(&p, "key") : NULL;
    char *bytes = k ? field(&p, "bytes") : NULL, *hex = bytes ? field(&p, "sha256") : NULL;
    if (!hex || *p != '\n' || strcmp(st, stage)) return SS_DAMAGED;
    p++;
    char *end;
    unsigned long long want = strtoull(bytes, &end, 10);
    size_t have = len - (size_t)(p - buf);
    if (*end || want != have) return SS_DAMAGED;
    uint8_t d[32];
    char got[65];
    sha256_buf(p, have, d);
    sha256_hex(d, got);
    if (strcmp(got, hex)) return SS_DAMAGED;
    if (strcmp(k, key)) return SS_OTHER_KEY;
    void *out = upq_malloc(have + 1, "stage record payload");
    if (!out) return -UPQ_EIO;
    memcpy(out, p, have);
    *payload = out, *n = have;
    return SS_MATCH;
}

int ss_record_read(const char *path, const char *stage, const char *key, int legacy_key, int *state,
                   void **payload, size_t *n)
{
    *state = SS_ABSENT, *payload = NULL, *n = 0;
    char *buf;
    size_t len;
    int absent;
    TRY(read_all(path, &buf, &len, &absent));
    if (absent) return UPQ_OK;
    size_t ml = strlen(SS_MAGIC), kl = strlen(key);
    int rc = UPQ_OK;
    if (len >= ml && !memcmp(buf, SS_MAGIC, ml)) {
        int s = parse(buf, len, stage, key, payload, n);
        if (s < 0) rc = -s;
        else *state = s;
    } else if (len > 0 && buf[len - 1] == '\n' && !memchr(buf, '\n', len - 1) && !memchr(buf, '\0', len)) {
        /* one line: an old "stage.txt" (the key and a newline) */
        *state = legacy_key && len == kl + 1 && !memcmp(buf, key, kl) ? SS_MATCH : SS_LEGACY;
    } else {
        *state = SS_DAMAGED;
    }
    free(buf);
    return rc;
}

const char *ss_state_name(int state)
{
    static const char *names[] = {"absent", "complete", "made with other options", "old format", "damaged"};
    return state >= 0 && state <= SS_DAMAGED ? names[state] : "?";
}
