/* treesum.c - the fixed halving-tree sum of micro-batch gradients (treesum.h). */
#include "treesum.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "upq_err.h"

enum { TREE_MAX = 64, TREE_TAG = 7101, TREE_CHUNK = 1 << 26 };

struct pipe_tree {
    int64_t n, len;
    int depth;                      /* entries on the stack */
    int64_t lo[TREE_MAX], hi[TREE_MAX];
    float *buf[TREE_MAX];           /* allocated on first use, kept */
};

int pipe_tree_create(int64_t n, int64_t len, pipe_tree **out)
{
    *out = NULL;
    UPQ_ASSERT(n >= 1 && len >= 0);
    pipe_tree *t = upq_calloc(1, sizeof *t, "gradient tree");
    if (!t) return UPQ_EIO;
    t->n = n, t->len = len;
    *out = t;
    return UPQ_OK;
}

void pipe_tree_destroy(pipe_tree *t)
{
    if (!t) return;
    for (int i = 0; i < TREE_MAX; i++) free(t->buf[i]);
    free(t);
}

void pipe_tree_reset(pipe_tree *t) { t->depth = 0; }

int pipe_tree_is_node(int64_t n, int64_t lo, int64_t hi)
{
    int64_t a = 0, b = n;
    for (;;) {
        if (a == lo && b == hi) return 1;
        if (b - a <= 1) return 0;
        int64_t m = a + (b - a) / 2;
        if (hi <= m) b = m;
        else if (lo >= m) a = m;
        else return 0;
    }
}

/* A free slot on top of the stack (allocated on first use). */
static float *slot(pipe_tree *t)
{
    UPQ_ASSERT(t->depth < TREE_MAX);
    if (!t->buf[t->depth]) t->buf[t->depth] = upq_malloc((size_t)(t->len > 0 ? t->len : 1) * sizeof(float), "gradient tree level");
    return t->buf[t->depth];
}

static void merge(pipe_tree *t)
{
    while (t->depth >= 2) {
        int a = t->depth - 2, b = t->depth - 1;
        if (t->hi[a] != t->lo[b] || !pipe_tree_is_node(t->n, t->lo[a], t->hi[b])) break;
        float *x = t->buf[a];
        const float *y = t->buf[b];
        for (int64_t i = 0; i < t->len; i++) x[i] += y[i]; /* left + right */
        t->hi[a] = t->hi[b];
        t->depth--;
    }
}

int pipe_tree_push(pipe_tree *t, int64_t i, const float *buf)
{
    UPQ_ASSERT(i >= 0 && i < t->n);
    float *s = slot(t);
    if (!s) return UPQ_EIO;
    memcpy(s, buf, (size_t)t->len * sizeof(float));
    t->lo[t->depth] = i, t->hi[t->depth] = i + 1;
    t->depth++;
    merge(t);
    return UPQ_OK;
}

const float *pipe_tree_top(const pipe_tree *t, int64_t *lo, int64_t *hi)
{
    if (t->depth != 1) return NULL;
    if (lo) *lo = t->lo[0];
    if (hi) *hi = t->hi[0];
    return t->buf[0];
}

static int mpi_fail(int rc, const char *what)
{
    char s[MPI_MAX_ERROR_STRING];
    int n = 0;
    MPI_Error_string(rc, s, &n);
    return UPQ_FAIL(UPQ_EIO, "gradient tree: MPI error in %s: %s", what, s);
}

static int xfer(float *b, int64_t n, int peer, MPI_Comm c, int send)
{
    for (int64_t o = 0; o < n; o += TREE_CHUNK) {
        int k = (int)(n - o < TREE_CHUNK ? n - o : TREE_CHUNK);
        int rc = send ? MPI_Send(b + o, k, MPI_FLOAT, peer, TREE_TAG, c)
                      : MPI_Recv(b + o, k, MPI_FLOAT, peer, TREE_TAG, c, MPI_STATUS_IGNORE);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, send ? "MPI_Send" : "MPI_Recv");
    }
    return UPQ_OK;
}

int pipe_tree_reduce(grp *g, pipe_tree *t, float *out)
{
    int64_t lo = 0, hi = 0;
    const float *top = pipe_tree_top(t, &lo, &hi);
    if (!top) return UPQ_FAIL(UPQ_EUSAGE, "gradient tree: %d partial sums where one block was expected", t->depth);
    int size = grp_size(g), me = grp_rank(g);
    if (size == 1) {
        if (lo != 0 || hi != t->n) return UPQ_FAIL(UPQ_EUSAGE, "gradient tree: only leaves [%lld, %lld) of %lld", (long long)lo, (long long)hi, (long long)t->n);
        if (out != top) memcpy(out, top, (size_t)t->len * sizeof(float));
        return UPQ_OK;
    }
    MPI_Comm c = *(MPI_Comm *)grp_comm(g);
    if (me != 0) {
        int64_t span[2] = {lo, hi};
        int rc = MPI_Send(span, 2, MPI_INT64_T, 0, TREE_TAG, c);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Send");
        TRY(xfer((float *)top, t->len, 0, c, 1));
    } else {
        for (int m = 1; m < size; m++) {
            int64_t span[2];
            int rc = MPI_Recv(span, 2, MPI_INT64_T, m, TREE_TAG, c, MPI_STATUS_IGNORE);
            if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Recv");
            float *s = slot(t);
            if (!s) return UPQ_EIO;
            TRY(xfer(s, t->len, m, c, 0));
            t->lo[t->depth] = span[0], t->hi[t->depth] = span[1];
            t->depth++;
            merge(t);
        }
        top = pipe_tree_top(t, &lo, &hi);
        if (!top || lo != 0 || hi != t->n)
            return UPQ_FAIL(UPQ_EUSAGE, "gradient tree: the members' blocks are not the nodes of one tree over %lld leaves", (long long)t->n);
        memcpy(out, top, (size_t)t->len * sizeof(float));
    }
    return grp_bcast(g, out, t->len * (int64_t)sizeof(float), 0);
}
