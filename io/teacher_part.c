/* teacher_part.c - "<shard>.part" files (teacher_part.h): header, then row records. Not
 * the HDF5 teacher shard (h5teacher.c) nor the row layout (src/stages/teacher.c). */
#include "teacher_part.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "upq_err.h"

#define TPART_MAGIC "upq-teacher-part-1"
enum { TPART_HDR = 128 }; /* magic (32) | key (65, hex + NUL) | pad | rowbytes (int64 at 120) */

static void header(char h[TPART_HDR], const char key[65], int64_t rowbytes)
{
    memset(h, 0, TPART_HDR);
    memcpy(h, TPART_MAGIC, sizeof TPART_MAGIC);
    memcpy(h + 32, key, 64);
    memcpy(h + 120, &rowbytes, 8);
}

static int full_pwrite(int fd, const void *buf, size_t n, off_t off)
{
    const char *b = buf;
    while (n > 0) {
        ssize_t w = pwrite(fd, b, n, off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        b += w, n -= (size_t)w, off += w;
    }
    return 0;
}

static int full_pread(int fd, void *buf, size_t n, off_t off)
{
    char *b = buf;
    while (n > 0) {
        ssize_t r = pread(fd, b, n, off);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        b += r, n -= (size_t)r, off += r;
    }
    return 0;
}

int tpart_open(tpart *p, const char *path, const char key[65], int64_t rowbytes)
{
    UPQ_ASSERT(rowbytes > 0);
    memset(p, 0, sizeof *p);
    snprintf(p->path, sizeof p->path, "%s", path);
    p->rowbytes = rowbytes;
    p->fd = open(path, O_RDWR | O_CREAT, 0666);
    if (p->fd < 0) return UPQ_FAIL(UPQ_EIO, "%s: cannot open the partial shard: %s", path, strerror(errno));
    char want[TPART_HDR], have[TPART_HDR];
    header(want, key, rowbytes);
    struct stat st;
    int rc = fstat(p->fd, &st) ? -1 : 0;
    int64_t size = rc ? 0 : (int64_t)st.st_size;
    int same = !rc && size >= TPART_HDR && !full_pread(p->fd, have, TPART_HDR, 0) && !memcmp(have, want, TPART_HDR);
    if (!same) size = TPART_HDR;
    p->rows = (size - TPART_HDR) / rowbytes;
    if (rc || ftruncate(p->fd, TPART_HDR + (off_t)(p->rows * rowbytes)) != 0 ||
        (!same && full_pwrite(p->fd, want, TPART_HDR, 0) != 0) || fsync(p->fd) != 0) {
        rc = UPQ_FAIL(UPQ_EIO, "%s: cannot prepare the partial shard: %s", path, strerror(errno));
        tpart_close(p);
        return rc;
    }
    return UPQ_OK;
}

int tpart_append(tpart *p, const void *rows, int64_t n)
{
    off_t off = TPART_HDR + (off_t)(p->rows * p->rowbytes);
    if (full_pwrite(p->fd, rows, (size_t)(n * p->rowbytes), off) != 0)
        return UPQ_FAIL(UPQ_EIO, "%s: writing rows %lld.. failed: %s", p->path, (long long)p->rows, strerror(errno));
    p->rows += n;
    return UPQ_OK;
}

int tpart_sync(tpart *p)
{
    if (fsync(p->fd) != 0) return UPQ_FAIL(UPQ_EIO, "%s: fsync failed: %s", p->path, strerror(errno));
    return UPQ_OK;
}

int tpart_read(const tpart *p, int64_t r, void *buf)
{
    UPQ_ASSERT(r >= 0 && r < p->rows);
    if (full_pread(p->fd, buf, (size_t)p->rowbytes, TPART_HDR + (off_t)(r * p->rowbytes)) != 0)
        return UPQ_FAIL(UPQ_EIO, "%s: reading row %lld failed", p->path, (long long)r);
    return UPQ_OK;
}

void tpart_close(tpart *p)
{
    if (p->fd >= 0) close(p->fd);
    p->fd = -1;
}

void tpart_remove(tpart *p)
{
    tpart_close(p);
    unlink(p->path);
}
