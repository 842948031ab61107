/* treesum.c - the fixed halving-tree sum of micro-batch gradients (treesum.h). The
 * replicas' reduction is pipelined in chunks: member 0 adds chunk k (the same additions,
 * element by element, as pushing each member's whole block in member order) while chunk
 * k+1 arrives and chunk k-1 is broadcast, instead of receiving everything, then adding,
 * then broadcasting. */
#include "treesum.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "upq_err.h"

enum { TREE_MAX = 64, TREE_TAG = 7101, TREE_CHUNK = 1 << 20 };

struct pipe_tree {
    int64_t n, len;
    int depth;                      /* entries on the stack */
    int64_t lo[TREE_MAX], hi[TREE_MAX];
    float *buf[TREE_MAX];           /* allocated on first use, kept */
    int64_t chunk;                  /* floats per message of the reduction */
    float *rbuf;                    /* member 0: (2, members - 1, chunk) received chunks */
    int64_t rcap;                   /* floats in rbuf */
};

int pipe_tree_create(int64_t n, int64_t len, pipe_tree **out)
{
    *out = NULL;
    UPQ_ASSERT(n >= 1 && len >= 0);
    pipe_tree *t = upq_calloc(1, sizeof *t, "gradient tree");
    if (!t) return UPQ_EIO;
    t->n = n, t->len = len, t->chunk = TREE_CHUNK;
    *out = t;
    return UPQ_OK;
}

void pipe_tree_destroy(pipe_tree *t)
{
    if (!t) return;
    for (int i = 0; i < TREE_MAX; i++) free(t->buf[i]);
    free(t->rbuf);
    free(t);
}

void pipe_tree_reset(pipe_tree *t) { t->depth = 0; }

void pipe_tree_set_chunk(pipe_tree *t, int64_t floats)
{
    UPQ_ASSERT(floats >= 1 && floats <= (1 << 26));
    t->chunk = floats;
}

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

/* The merges member 0 does when the members' entries come in member order (merge()'s
 * rule on their spans): ops[k] = {dst, src}, entry dst += entry src, entries numbered by
 * member; the sum ends in entry 0. UPQ_EUSAGE when the spans are not one tree's nodes. */
static int plan_merges(const pipe_tree *t, const int64_t *span, int size, int (*ops)[2], int *nops)
{
    int st[TREE_MAX], d = 0, k = 0;
    int64_t lo[TREE_MAX], hi[TREE_MAX];
    for (int m = 0; m < size; m++) {
        if (d >= TREE_MAX) break;
        st[d] = m, lo[d] = span[2 * m], hi[d] = span[2 * m + 1], d++;
        while (d >= 2 && hi[d - 2] == lo[d - 1] && pipe_tree_is_node(t->n, lo[d - 2], hi[d - 1])) {
            ops[k][0] = st[d - 2], ops[k][1] = st[d - 1], k++;
            hi[d - 2] = hi[d - 1], d--;
        }
    }
    *nops = k;
    if (d != 1 || lo[0] != 0 || hi[0] != t->n)
        return UPQ_FAIL(UPQ_EUSAGE, "gradient tree: the members' blocks are not the nodes of one tree over %lld leaves",
                        (long long)t->n);
    return UPQ_OK;
}

/* Member 0's side: chunk k of every other member lands in rbuf[k % 2] (receives posted two
 * chunks ahead), is added in the planned order into the own top, copied to out and
 * broadcast (non-blocking) while the next chunk arrives. */
static int reduce_root(pipe_tree *t, float *top, float *out, int size, int (*ops)[2], int nops, MPI_Comm c,
                       MPI_Request *rq, MPI_Request *bq)
{
    int64_t len = t->len, ch = t->chunk, nch = (len + ch - 1) / ch, per = (int64_t)(size - 1) * ch;
    if (t->rcap < 2 * per) {
        free(t->rbuf);
        t->rcap = 0;
        t->rbuf = upq_malloc((size_t)(2 * per) * sizeof(float), "gradient tree receive chunks");
        if (!t->rbuf) return UPQ_EIO;
        t->rcap = 2 * per;
    }
    float *ent[TREE_MAX];
    int rc = MPI_SUCCESS;
    for (int64_t k = 0; k < nch && k < 2; k++)
        for (int m = 1; m < size && rc == MPI_SUCCESS; m++) {
            int64_t o = k * ch, n = len - o < ch ? len - o : ch;
            rc = MPI_Irecv(t->rbuf + (k % 2) * per + (m - 1) * ch, (int)n, MPI_FLOAT, m, TREE_TAG, c,
                           &rq[(k % 2) * (size - 1) + m - 1]);
        }
    for (int64_t k = 0; k < nch && rc == MPI_SUCCESS; k++) {
        int64_t o = k * ch, n = len - o < ch ? len - o : ch;
        rc = MPI_Waitall(size - 1, rq + (k % 2) * (size - 1), MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) break;
        ent[0] = top + o;
        for (int m = 1; m < size; m++) ent[m] = t->rbuf + (k % 2) * per + (m - 1) * ch;
        for (int q = 0; q < nops; q++) {
            float *x = ent[ops[q][0]];
            const float *y = ent[ops[q][1]];
            for (int64_t i = 0; i < n; i++) x[i] += y[i]; /* left + right, as merge() */
        }
        if (out + o != top + o) memcpy(out + o, top + o, (size_t)n * sizeof(float));
        for (int m = 1; m < size && k + 2 < nch && rc == MPI_SUCCESS; m++) { /* this buffer's next use */
            int64_t o2 = (k + 2) * ch, n2 = len - o2 < ch ? len - o2 : ch;
            rc = MPI_Irecv(t->rbuf + (k % 2) * per + (m - 1) * ch, (int)n2, MPI_FLOAT, m, TREE_TAG, c,
                           &rq[(k % 2) * (size - 1) + m - 1]);
        }
        if (rc == MPI_SUCCESS) rc = MPI_Ibcast(out + o, (int)n, MPI_FLOAT, 0, c, &bq[k]);
    }
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "the gradient chunks (member 0)");
    rc = MPI_Waitall((int)nch, bq, MPI_STATUSES_IGNORE);
    return rc == MPI_SUCCESS ? UPQ_OK : mpi_fail(rc, "MPI_Ibcast");
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
    UPQ_ASSERT(me == 0 || out != top); /* a member receives the sum while its top is sent */
    if (size > TREE_MAX) return UPQ_FAIL(UPQ_EUSAGE, "gradient tree: %d members, at most %d", size, TREE_MAX);
    MPI_Comm c = *(MPI_Comm *)grp_comm(g);
    /* every member's span to member 0, which plans the merges; all learn whether they fit */
    int64_t span[2] = {lo, hi}, all[2 * TREE_MAX];
    int ops[TREE_MAX][2], nops = 0, st = UPQ_OK;
    int rc = MPI_Gather(span, 2, MPI_INT64_T, all, 2, MPI_INT64_T, 0, c);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Gather");
    if (me == 0) st = plan_merges(t, all, size, ops, &nops);
    rc = MPI_Bcast(&st, 1, MPI_INT, 0, c);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Bcast");
    if (st) return me == 0 ? st : UPQ_FAIL(UPQ_EUSAGE, "gradient tree: member 0 rejected the members' blocks");
    int64_t len = t->len, ch = t->chunk, nch = (len + ch - 1) / ch;
    MPI_Request *rq = upq_malloc((size_t)(2 * nch + 2 * size) * sizeof *rq, "gradient tree requests");
    if (!rq) return UPQ_EIO;
    int e = UPQ_OK;
    if (me == 0) {
        e = reduce_root(t, (float *)top, out, size, ops, nops, c, rq, rq + 2 * size);
        if (!e) t->hi[0] = t->n; /* the stack's one entry is now the whole tree's sum */
    } else { /* every chunk's send and broadcast posted at once, in chunk order */
        for (int64_t k = 0; k < nch && rc == MPI_SUCCESS; k++) {
            int64_t o = k * ch, n = len - o < ch ? len - o : ch;
            rc = MPI_Isend(top + o, (int)n, MPI_FLOAT, 0, TREE_TAG, c, &rq[2 * k]);
            if (rc == MPI_SUCCESS) rc = MPI_Ibcast(out + o, (int)n, MPI_FLOAT, 0, c, &rq[2 * k + 1]);
        }
        if (rc == MPI_SUCCESS) rc = MPI_Waitall((int)(2 * nch), rq, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) e = mpi_fail(rc, "the gradient chunks");
    }
    free(rq);
    return e;
}
