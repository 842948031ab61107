/* pipe.c - non-blocking sends and blocking receives of float micro-batches (pipe.h). A
 * message is one window (T x C floats, far below INT_MAX for the models upq targets: larger
 * ones are refused with a message rather than split silently). */
#include "pipe.h"

#include <limits.h>
#include <stdlib.h>
#include <mpi.h>

#include "par.h"
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
    int e = MPI_Isend(buf, (int)n, MPI_FLOAT, dest, tag, *(MPI_Comm *)par_comm_world(), &p->req[p->n]);
    if (e != MPI_SUCCESS) return UPQ_FAIL(UPQ_EIO, "pipeline: MPI_Isend of %lld floats to rank %d failed (error %d)", (long long)n, dest, e);
    p->n++;
    return UPQ_OK;
}

int pipe_recv(float *buf, int64_t n, int src, int tag)
{
    if (n > INT_MAX) return UPQ_FAIL(UPQ_EUSAGE, "pipeline: micro-batch of %lld floats from rank %d exceeds INT_MAX", (long long)n, src);
    MPI_Status st;
    int got = -1, e = MPI_Recv(buf, (int)n, MPI_FLOAT, src, tag, *(MPI_Comm *)par_comm_world(), &st);
    if (e == MPI_SUCCESS) MPI_Get_count(&st, MPI_FLOAT, &got);
    if (e != MPI_SUCCESS || got != (int)n)
        return UPQ_FAIL(UPQ_EIO, "pipeline: receive from rank %d (tag %d) failed: error %d, %d of %lld floats", src, tag, e, got, (long long)n);
    return UPQ_OK;
}

/* ---- numbered non-blocking transfers (pipe_link) ---------------------------------- */

struct pipe_link {
    int n;
    MPI_Request *req; /* (n) MPI_REQUEST_NULL when idle */
    int64_t *cnt;     /* (n) floats expected (receives) or -1 (sends) */
    int *peer, *tag;  /* (n) for the messages */
};

int pipe_link_create(int nslots, pipe_link **out)
{
    *out = NULL;
    pipe_link *l = upq_calloc(1, sizeof *l, "pipeline link");
    if (!l) return UPQ_EIO;
    l->n = nslots;
    l->req = upq_calloc((size_t)nslots, sizeof *l->req, "pipeline requests");
    l->cnt = upq_calloc((size_t)nslots, sizeof *l->cnt, "pipeline requests");
    l->peer = upq_calloc((size_t)nslots, sizeof *l->peer, "pipeline requests");
    l->tag = upq_calloc((size_t)nslots, sizeof *l->tag, "pipeline requests");
    if (!l->req || !l->cnt || !l->peer || !l->tag) {
        free(l->req), free(l->cnt), free(l->peer), free(l->tag), free(l);
        return UPQ_EIO;
    }
    for (int i = 0; i < nslots; i++) l->req[i] = MPI_REQUEST_NULL;
    *out = l;
    return UPQ_OK;
}

int pipe_link_destroy(pipe_link *l)
{
    if (!l) return UPQ_OK;
    int rc = UPQ_OK;
    for (int i = 0; i < l->n; i++) {
        if (l->req[i] == MPI_REQUEST_NULL) continue;
        if (l->cnt[i] >= 0) MPI_Cancel(&l->req[i]); /* a receive nobody will send to */
        if (MPI_Wait(&l->req[i], MPI_STATUS_IGNORE) != MPI_SUCCESS && !rc)
            rc = UPQ_FAIL(UPQ_EIO, "pipeline: completing slot %d at shutdown failed", i);
    }
    free(l->req), free(l->cnt), free(l->peer), free(l->tag), free(l);
    return rc;
}

static double wtime(void) { return MPI_Wtime(); }

int pipe_post_send(pipe_link *l, int slot, const float *buf, int64_t n, int dest, int tag)
{
    UPQ_ASSERT(slot >= 0 && slot < l->n && l->req[slot] == MPI_REQUEST_NULL);
    if (n > INT_MAX) return UPQ_FAIL(UPQ_EUSAGE, "pipeline: message of %lld floats to rank %d exceeds INT_MAX", (long long)n, dest);
    MPI_Comm c = *(MPI_Comm *)par_comm_world();
    int e = MPI_Isend(buf, (int)n, MPI_FLOAT, dest, tag, c, &l->req[slot]);
    if (e != MPI_SUCCESS) return UPQ_FAIL(UPQ_EIO, "pipeline: MPI_Isend of %lld floats to rank %d (tag %d) failed (error %d)", (long long)n, dest, tag, e);
    l->cnt[slot] = -1, l->peer[slot] = dest, l->tag[slot] = tag;
    return UPQ_OK;
}

int pipe_post_recv(pipe_link *l, int slot, float *buf, int64_t n, int src, int tag)
{
    UPQ_ASSERT(slot >= 0 && slot < l->n && l->req[slot] == MPI_REQUEST_NULL);
    if (n > INT_MAX) return UPQ_FAIL(UPQ_EUSAGE, "pipeline: message of %lld floats from rank %d exceeds INT_MAX", (long long)n, src);
    MPI_Comm c = *(MPI_Comm *)par_comm_world();
    int e = MPI_Irecv(buf, (int)n, MPI_FLOAT, src, tag, c, &l->req[slot]);
    if (e != MPI_SUCCESS) return UPQ_FAIL(UPQ_EIO, "pipeline: MPI_Irecv from rank %d (tag %d) failed (error %d)", src, tag, e);
    l->cnt[slot] = n, l->peer[slot] = src, l->tag[slot] = tag;
    return UPQ_OK;
}

/* The outcome of slot's transfer that MPI_Wait or MPI_Test (e, st) completed. */
static int slot_done(const pipe_link *l, int slot, int e, MPI_Status *st)
{
    int got = -1;
    if (e == MPI_SUCCESS && l->cnt[slot] < 0) return UPQ_OK;
    if (e == MPI_SUCCESS) MPI_Get_count(st, MPI_FLOAT, &got);
    if (e != MPI_SUCCESS || got != (int)l->cnt[slot])
        return UPQ_FAIL(UPQ_EIO, "pipeline: %s rank %d (tag %d) failed: error %d, %d of %lld floats",
                        l->cnt[slot] < 0 ? "send to" : "receive from", l->peer[slot], l->tag[slot], e, got,
                        (long long)l->cnt[slot]);
    return UPQ_OK;
}

int pipe_wait(pipe_link *l, int slot, double *seconds)
{
    UPQ_ASSERT(slot >= 0 && slot < l->n);
    if (l->req[slot] == MPI_REQUEST_NULL) return UPQ_OK;
    double t0 = wtime();
    MPI_Status st;
    int e = MPI_Wait(&l->req[slot], &st);
    if (seconds) *seconds += wtime() - t0;
    return slot_done(l, slot, e, &st);
}

int pipe_test(pipe_link *l, int slot, int *done)
{
    UPQ_ASSERT(slot >= 0 && slot < l->n);
    *done = 1;
    if (l->req[slot] == MPI_REQUEST_NULL) return UPQ_OK;
    MPI_Status st;
    int e = MPI_Test(&l->req[slot], done, &st);
    if (e == MPI_SUCCESS && !*done) return UPQ_OK;
    *done = 1;
    return slot_done(l, slot, e, &st);
}
