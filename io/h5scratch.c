/* h5scratch.c - the per-rank HDF5 scratch file of `upq ptq --scratch` (h5scratch.h). HDF5
 * lays the file out (contiguous, early-allocated, page-aligned datasets, no fill writes)
 * and says where each dataset's bytes are (H5Dget_offset); then HDF5 is closed, the data
 * region is reserved with posix_fallocate (a full disk is an error now, not a SIGBUS
 * later), mapped MAP_SHARED and the file unlinked. Not thread-safe per object; no MPI. */
#define _GNU_SOURCE
#include "h5scratch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "h5util.h"
#include "upq_err.h"

enum { SCR_MAX = 8, SCR_ALIGN = 4096 };

struct h5scratch {
    char path[4200];
    unsigned char *base; /* mapping of file bytes [lo, lo + len) */
    size_t len;
    int64_t lo;
    int narrays;
    float *arr[SCR_MAX];
};

static int check_dir(const char *dir, int64_t need)
{
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return UPQ_FAIL(UPQ_EINPUT, "--scratch %s: no such folder", dir);
    if (access(dir, W_OK | X_OK) != 0)
        return UPQ_FAIL(UPQ_EINPUT, "--scratch %s: folder is not writable", dir);
    struct statvfs vf;
    if (statvfs(dir, &vf) != 0) return UPQ_FAIL(UPQ_EIO, "--scratch %s: statvfs failed: %s", dir, strerror(errno));
    double avail = (double)vf.f_bavail * (double)vf.f_frsize;
    if (avail < (double)need + 1048576.0)
        return UPQ_FAIL(UPQ_EIO, "--scratch %s: needs %.1f MB for the calibration activations, %.1f MB free", dir,
                        (double)need / 1048576.0, avail / 1048576.0);
    return UPQ_OK;
}

/* One contiguous dataset, allocated at creation, never filled by HDF5; its file offset. */
static int make_dataset(hid_t f, const char *path, const char *name, const int64_t shape[3], int64_t *off)
{
    hsize_t dims[3] = {(hsize_t)shape[0], (hsize_t)shape[1], (hsize_t)shape[2]};
    hid_t s = H5Screate_simple(3, dims, NULL), p = H5Pcreate(H5P_DATASET_CREATE), d = -1;
    int rc = UPQ_OK;
    if (s < 0 || p < 0 || H5Pset_layout(p, H5D_CONTIGUOUS) < 0 || H5Pset_alloc_time(p, H5D_ALLOC_TIME_EARLY) < 0 ||
        H5Pset_fill_time(p, H5D_FILL_TIME_NEVER) < 0 || H5Pset_obj_track_times(p, 0) < 0 ||
        (d = H5Dcreate2(f, name, H5T_IEEE_F32LE, s, H5P_DEFAULT, p, H5P_DEFAULT)) < 0) {
        rc = UPQ_FAIL(UPQ_EIO, "%s: cannot create scratch dataset '%s' [%lld, %lld, %lld]", path, name,
                      (long long)shape[0], (long long)shape[1], (long long)shape[2]);
    } else {
        haddr_t a = H5Dget_offset(d);
        if (a == HADDR_UNDEF || a % SCR_ALIGN)
            rc = UPQ_FAIL(UPQ_EIO, "%s: scratch dataset '%s' has no page-aligned file offset", path, name);
        *off = (int64_t)a;
    }
    if (d >= 0 && H5Dclose(d) < 0 && !rc) rc = UPQ_FAIL(UPQ_EIO, "%s: closing scratch dataset '%s' failed", path, name);
    if (p >= 0) H5Pclose(p);
    if (s >= 0) H5Sclose(s);
    return rc;
}

/* The HDF5 file with its datasets; offsets of each into off[]. */
static int make_file(const char *path, int narrays, const char *const *names, const int64_t shape[3], int64_t *off)
{
    h5u_quiet q;
    h5u_quiet_begin(&q);
    int rc = UPQ_OK;
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS), f = -1;
    if (fapl < 0 || H5Pset_alignment(fapl, SCR_ALIGN, SCR_ALIGN) < 0 ||
        (f = H5Fcreate(path, H5F_ACC_EXCL, H5P_DEFAULT, fapl)) < 0)
        rc = UPQ_FAIL(UPQ_EIO, "%s: cannot create the scratch file", path);
    hid_t root = f >= 0 ? H5Gopen2(f, "/", H5P_DEFAULT) : -1;
    if (!rc && root < 0) rc = UPQ_FAIL(UPQ_EIO, "%s: cannot open the root group", path);
    if (!rc) rc = h5u_attr_put_str(root, "format", "upq-scratch-1", path);
    for (int i = 0; i < narrays && !rc; i++) rc = make_dataset(f, path, names[i], shape, &off[i]);
    if (root >= 0) H5Gclose(root);
    if (f >= 0 && H5Fclose(f) < 0 && !rc) rc = UPQ_FAIL(UPQ_EIO, "%s: closing the scratch file failed", path);
    if (fapl >= 0) H5Pclose(fapl);
    h5u_quiet_end(&q);
    return rc;
}

/* Reserves file bytes [lo, hi) and maps them. */
static int map_region(h5scratch *s, int64_t lo, int64_t hi)
{
    int fd = open(s->path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return UPQ_FAIL(UPQ_EIO, "%s: cannot reopen the scratch file: %s", s->path, strerror(errno));
    int e = posix_fallocate(fd, (off_t)lo, (off_t)(hi - lo)), rc = UPQ_OK;
    if (e)
        rc = UPQ_FAIL(UPQ_EIO, "%s: cannot reserve %.1f MB of scratch space: %s", s->path,
                      (double)(hi - lo) / 1048576.0, strerror(e));
    void *m = rc ? MAP_FAILED : mmap(NULL, (size_t)(hi - lo), PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)lo);
    if (!rc && m == MAP_FAILED) rc = UPQ_FAIL(UPQ_EIO, "%s: mmap of the scratch file failed: %s", s->path, strerror(errno));
    close(fd);
    if (rc) return rc;
    s->base = m, s->lo = lo, s->len = (size_t)(hi - lo);
    return UPQ_OK;
}

int h5scratch_create(const char *dir, const char *job, int rank, int narrays, const char *const *names,
                     const int64_t shape[3], h5scratch **out)
{
    UPQ_ASSERT(narrays >= 1 && narrays <= SCR_MAX && shape[0] >= 1 && shape[1] >= 1 && shape[2] >= 1);
    *out = NULL;
    int64_t bytes = shape[0] * shape[1] * shape[2] * (int64_t)sizeof(float), off[SCR_MAX];
    TRY(check_dir(dir, bytes * narrays));
    h5scratch *s = upq_calloc(1, sizeof *s, "scratch file state");
    if (!s) return UPQ_EIO;
    snprintf(s->path, sizeof s->path, "%s/upq-scratch-%s-rank%d.h5", dir, job, rank);
    if (access(s->path, F_OK) == 0) {
        int rc = UPQ_FAIL(UPQ_EIO, "%s: a scratch file of this job and rank exists already", s->path);
        free(s);
        return rc;
    }
    int rc = make_file(s->path, narrays, names, shape, off);
    int64_t lo = off[0], hi = off[0] + bytes;
    for (int i = 1; i < narrays && !rc; i++) {
        lo = off[i] < lo ? off[i] : lo;
        hi = off[i] + bytes > hi ? off[i] + bytes : hi;
    }
    if (!rc) rc = map_region(s, lo, hi);
    unlink(s->path); /* created by us (H5F_ACC_EXCL): gone now, whatever happens later */
    if (rc) {
        free(s);
        return rc;
    }
    s->narrays = narrays;
    for (int i = 0; i < narrays; i++) s->arr[i] = (float *)(void *)(s->base + (off[i] - lo));
    *out = s;
    return UPQ_OK;
}

float *h5scratch_array(const h5scratch *s, int i)
{
    UPQ_ASSERT(i >= 0 && i < s->narrays);
    return s->arr[i];
}

const char *h5scratch_path(const h5scratch *s) { return s->path; }
size_t h5scratch_bytes(const h5scratch *s) { return s->len; }

void h5scratch_release(const h5scratch *s, const float *p, int64_t n)
{
    if (!s || n <= 0) return;
    uintptr_t b = (uintptr_t)s->base, a = (uintptr_t)p, e = a + (uintptr_t)n * sizeof(float);
    if (a < b || e > b + s->len) return;
    uintptr_t pg = (uintptr_t)sysconf(_SC_PAGESIZE);
    a -= (a - b) % pg; /* whole pages; a neighbouring window sharing a page is re-read on its next touch */
    /* Both are advice: on failure the pages simply stay resident (and the data stays correct:
     * a shared file mapping's dropped pages are re-read from the file). MS_ASYNC schedules
     * the write-back without waiting for the disk. */
    (void)msync((void *)a, e - a, MS_ASYNC);
    (void)madvise((void *)a, e - a, MADV_DONTNEED);
}

void h5scratch_destroy(h5scratch *s)
{
    if (!s) return;
    if (s->base) munmap(s->base, s->len);
    free(s);
}
