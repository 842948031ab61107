/* shm.c - node-shared memory through MPI-3 shared windows (shm.h). */
#include "shm.h"

#include <mpi.h>
#include <stdlib.h>
#include <sys/statvfs.h>

#include "par.h"
#include "upq_err.h"

struct shm_node {
    MPI_Comm comm;
    MPI_Win win;
    int rank, size, locked;
};

static int mpi_fail(int rc, const char *what)
{
    char s[MPI_MAX_ERROR_STRING];
    int n = 0;
    MPI_Error_string(rc, s, &n);
    return UPQ_FAIL(UPQ_EIO, "node shared memory: MPI error in %s: %s", what, s);
}

int shm_node_create(shm_node **out)
{
    *out = NULL;
    shm_node *s = upq_calloc(1, sizeof *s, "node shared memory");
    if (!s) return UPQ_EIO;
    s->win = MPI_WIN_NULL;
    MPI_Comm *world = par_comm_world();
    int rc = MPI_Comm_split_type(*world, MPI_COMM_TYPE_SHARED, par_rank(), MPI_INFO_NULL, &s->comm);
    if (rc != MPI_SUCCESS) {
        free(s);
        return mpi_fail(rc, "MPI_Comm_split_type");
    }
    MPI_Comm_set_errhandler(s->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(s->comm, &s->rank);
    MPI_Comm_size(s->comm, &s->size);
    *out = s;
    return UPQ_OK;
}

int shm_node_rank(const shm_node *s) { return s->rank; }
int shm_node_size(const shm_node *s) { return s->size; }

int shm_node_bcast(shm_node *s, void *buf, int64_t bytes)
{
    UPQ_ASSERT(bytes >= 0 && bytes < (1LL << 31));
    int rc = MPI_Bcast(buf, (int)bytes, MPI_BYTE, 0, s->comm);
    return rc == MPI_SUCCESS ? UPQ_OK : mpi_fail(rc, "MPI_Bcast");
}

int shm_node_max(shm_node *s, int status)
{
    int out = status;
    int rc = MPI_Allreduce(&status, &out, 1, MPI_INT, MPI_MAX, s->comm);
    return rc == MPI_SUCCESS ? out : mpi_fail(rc, "MPI_Allreduce");
}

/* Free bytes where Open MPI backs shared windows (its osc_sm_backing_directory, /dev/shm by
 * default): a tmpfs that is too small (64 MB in some containers) would SIGBUS on touch. */
static double backing_free(void)
{
    const char *d = getenv("OMPI_MCA_osc_sm_backing_directory");
    struct statvfs v;
    if (statvfs(d && *d ? d : "/dev/shm", &v) != 0) return -1.0;
    return (double)v.f_bavail * (double)v.f_frsize;
}

int shm_node_alloc(shm_node *s, size_t bytes, void **ptr)
{
    UPQ_ASSERT(s->win == MPI_WIN_NULL);
    *ptr = NULL;
    double room = s->rank == 0 ? backing_free() : 0.0;
    TRY(shm_node_bcast(s, &room, sizeof room));
    if (room >= 0.0 && room < (double)bytes + (64 << 20)) return UPQ_OK; /* no room: the caller does without */
    void *base = NULL;
    MPI_Info info;
    MPI_Info_create(&info);
    MPI_Info_set(info, "alloc_shared_noncontig", "false");
    int rc = MPI_Win_allocate_shared(s->rank == 0 ? (MPI_Aint)bytes : 0, 1, info, s->comm, &base, &s->win);
    MPI_Info_free(&info);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Win_allocate_shared");
    MPI_Aint size = 0;
    int disp = 0;
    rc = MPI_Win_shared_query(s->win, 0, &size, &disp, ptr);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Win_shared_query");
    if ((size_t)size < bytes) return UPQ_FAIL(UPQ_EIO, "node shared memory: %zu bytes asked, %zu mapped", bytes, (size_t)size);
    rc = MPI_Win_lock_all(MPI_MODE_NOCHECK, s->win); /* a passive epoch for MPI_Win_sync */
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Win_lock_all");
    s->locked = 1;
    return UPQ_OK;
}

int shm_node_publish(shm_node *s)
{
    int rc = MPI_Win_sync(s->win);
    if (rc == MPI_SUCCESS) rc = MPI_Barrier(s->comm);
    if (rc == MPI_SUCCESS) rc = MPI_Win_sync(s->win);
    return rc == MPI_SUCCESS ? UPQ_OK : mpi_fail(rc, "MPI_Win_sync/MPI_Barrier");
}

void shm_node_destroy(shm_node *s)
{
    if (!s) return;
    if (s->locked) MPI_Win_unlock_all(s->win);
    if (s->win != MPI_WIN_NULL) MPI_Win_free(&s->win);
    MPI_Comm_free(&s->comm);
    free(s);
}
