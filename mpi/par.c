/* par.c - MPI start-up, rank queries, status-checked collectives on plain buffers and the
 * agreement of a begin/commit pair (par_commit). */
#include "par.h"

#include <mpi.h>
#include <stdio.h>
#include <time.h>

#include "upq_err.h"

static MPI_Comm world = MPI_COMM_NULL;

#define MPI_TRY(call)                                                             \
    do {                                                                          \
        int mpi_rc_ = (call);                                                     \
        if (mpi_rc_ != MPI_SUCCESS) {                                             \
            char mpi_s_[MPI_MAX_ERROR_STRING];                                    \
            int mpi_n_ = 0;                                                       \
            MPI_Error_string(mpi_rc_, mpi_s_, &mpi_n_);                           \
            return UPQ_FAIL(UPQ_EIO, "MPI error in %s: %s", #call, mpi_s_);       \
        }                                                                         \
    } while (0)

int par_init(int *argc, char ***argv)
{
    int provided = 0;
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return UPQ_FAIL(UPQ_EIO, "MPI_Init_thread failed (code %d)", rc);
    MPI_Comm_dup(MPI_COMM_WORLD, &world);
    MPI_Comm_set_errhandler(world, MPI_ERRORS_RETURN);
    return UPQ_OK;
}

int par_active(void)
{
    int init = 0, fin = 0;
    MPI_Initialized(&init);
    MPI_Finalized(&fin);
    return init && !fin;
}

void par_finalize(void)
{
    if (!par_active()) return;
    if (world != MPI_COMM_NULL) MPI_Comm_free(&world);
    MPI_Finalize();
}

int par_rank(void)
{
    int r = 0;
    if (par_active()) MPI_Comm_rank(world, &r);
    return r;
}

int par_size(void)
{
    int n = 1;
    if (par_active()) MPI_Comm_size(world, &n);
    return n;
}

int par_agree(int status)
{
    if (!par_active()) return status;
    int out = status;
    if (MPI_Allreduce(&status, &out, 1, MPI_INT, MPI_MAX, world) != MPI_SUCCESS) return UPQ_EIO;
    return out;
}

int par_agree_timeout(int status, double seconds)
{
    if (!par_active() || par_size() == 1) return status;
    int out = status;
    MPI_Request req;
    if (MPI_Iallreduce(&status, &out, 1, MPI_INT, MPI_MAX, world, &req) != MPI_SUCCESS) return -1;
    double t0 = MPI_Wtime();
    for (;;) {
        int done = 0;
        if (MPI_Test(&req, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) return -1;
        if (done) return out;
        if (MPI_Wtime() - t0 > seconds) return -1;
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
}

int par_sum_f64(double *buf, int64_t n)
{
    if (!par_active() || par_size() == 1) return UPQ_OK;
    UPQ_ASSERT(n >= 0 && n < (1LL << 31));
    MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_DOUBLE, MPI_SUM, world));
    return UPQ_OK;
}

int par_sum_i64(int64_t *buf, int64_t n)
{
    if (!par_active() || par_size() == 1) return UPQ_OK;
    UPQ_ASSERT(n >= 0 && n < (1LL << 31));
    MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_INT64_T, MPI_SUM, world));
    return UPQ_OK;
}

int par_bcast(void *buf, int64_t bytes, int root)
{
    if (!par_active() || par_size() == 1) return UPQ_OK;
    UPQ_ASSERT(bytes >= 0 && bytes < (1LL << 31));
    MPI_TRY(MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, world));
    return UPQ_OK;
}

void par_barrier(void)
{
    if (par_active()) MPI_Barrier(world);
}

int par_commit(int status, par_commit_fn commit, par_abort_fn abort, void *ctx)
{
    int all = par_agree(status);
    int rc = UPQ_OK;
    if (par_rank() == 0) {
        if (!all) rc = commit(ctx);
        else if (abort) abort(ctx);
    }
    int out = all ? all : rc;
    TRY(par_bcast(&out, sizeof out, 0));
    if (status) return status; /* this rank's own message */
    if (out && !rc) return UPQ_FAIL(out, "another rank failed, or rank 0 could not commit the file (its log says why)");
    return out;
}

void par_abort(int code)
{
    fflush(stdout);
    fflush(stderr);
    if (par_active()) MPI_Abort(MPI_COMM_WORLD, code);
    _Exit(code);
}

void *par_comm_world(void) { return &world; }

static MPI_Comm saved_world = MPI_COMM_NULL;

int par_solo(int on)
{
    if (!par_active()) return UPQ_OK;
    if (on) {
        if (saved_world != MPI_COMM_NULL) return UPQ_FAIL(UPQ_EIO, "par_solo: already solo");
        MPI_Comm self = MPI_COMM_NULL;
        MPI_TRY(MPI_Comm_dup(MPI_COMM_SELF, &self));
        MPI_Comm_set_errhandler(self, MPI_ERRORS_RETURN);
        saved_world = world;
        world = self;
    } else {
        if (saved_world == MPI_COMM_NULL) return UPQ_OK;
        MPI_Comm_free(&world);
        world = saved_world;
        saved_world = MPI_COMM_NULL;
    }
    return UPQ_OK;
}

int par_subset(int n)
{
    if (!par_active()) return UPQ_OK;
    if (n > 0) {
        if (saved_world != MPI_COMM_NULL) return UPQ_FAIL(UPQ_EIO, "par_subset: already in a subset");
        int r = 0;
        MPI_Comm_rank(world, &r);
        MPI_Comm sub = MPI_COMM_NULL;
        MPI_TRY(MPI_Comm_split(world, r < n ? 0 : MPI_UNDEFINED, r, &sub));
        if (sub == MPI_COMM_NULL) return UPQ_OK; /* not a member: the world stays */
        MPI_Comm_set_errhandler(sub, MPI_ERRORS_RETURN);
        saved_world = world;
        world = sub;
    } else {
        if (saved_world == MPI_COMM_NULL) return UPQ_OK;
        MPI_Comm_free(&world);
        world = saved_world;
        saved_world = MPI_COMM_NULL;
    }
    return UPQ_OK;
}
