/* pipe.c - non-blocking sends and blocking receives of float micro-batches (pipe.h). A
 * message is one window (T x C floats, far below INT_MAX for the models upq targets: larger
 * ones are refused with a message rather than split silently). */
#include "pipe.h"

#include <limits.h>
#include <stdlib.h>
#include <mpi.h>

#include "upq_err.h"

struct pipe_sends {
    int64_t cap, n;
    MPI_Request *req;
};

int pipe_sends_create(int64_t cap, pipe_sends **out)
{
    pipe_sends *p = upq_calloc(1, sizeof *p, "pipeline sends");
    if (!p) return UPQ_EIO;
    p->req = upq_calloc((size_t)(cap > 0 ? cap : 1), sizeof *p->req, "pipeline send requests");
    if (!p->req) {
        free(p);
        return UPQ_EIO;
    }
    p->cap = cap;
    *out = p;
    return UPQ_OK;
}

int pipe_wait_all(pipe_sends *p)
{
    if (!p || !p->n) return UPQ_OK;
    int e = MPI_Waitall((int)p->n, p->req, MPI_STATUSES_IGNORE);
    p->n = 0;
    return e == MPI_SUCCESS ? UPQ_OK : UPQ_FAIL(UPQ_EIO, "pipeline: MPI_Waitall on the sends failed (error %d)", e);
}

int pipe_sends_destroy(pipe_sends *p)
{
    if (!p) return UPQ_OK;
    int rc = pipe_wait_all(p);
    free(p->req), free(p);
    return rc;
}

int pipe_send_begin(pipe_sends *p, const float *buf, int64_t n, int dest, int tag)
{
    if (n > INT_MAX) return UPQ_FAIL(UPQ_EUSAGE, "pipeline: micro-batch of %lld floats to rank %d exceeds INT_MAX", (long long)n, dest);
    if (p->n >= p->cap) return UPQ_FAIL(UPQ_EIO, "pipeline: more than %lld sends outstanding to rank %d", (long long)p->cap, dest);
    int e = MPI_Isend(buf, (int)n, MPI_FLOAT, dest, tag, MPI_COMM_WORLD, &p->req[p->n]);
    if (e != MPI_SUCCESS) return UPQ_FAIL(UPQ_EIO, "pipeline: MPI_Isend of %lld floats to rank %d failed (error %d)", (long long)n, dest, e);
    p->n++;
    return UPQ_OK;
}

int pipe_recv(float *buf, int64_t n, int src, int tag)
{
    if (n > INT_MAX) return UPQ_FAIL(UPQ_EUSAGE, "pipeline: micro-batch of %lld floats from rank %d exceeds INT_MAX", (long long)n, src);
    MPI_Status st;
    int got = -1, e = MPI_Recv(buf, (int)n, MPI_FLOAT, src, tag, MPI_COMM_WORLD, &st);
    if (e == MPI_SUCCESS) MPI_Get_count(&st, MPI_FLOAT, &got);
    if (e != MPI_SUCCESS || got != (int)n)
        return UPQ_FAIL(UPQ_EIO, "pipeline: receive from rank %d (tag %d) failed: error %d, %d of %lld floats", src, tag, e, got, (long long)n);
    return UPQ_OK;
}
