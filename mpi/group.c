/* group.c - block-group sub-communicators and their fixed-order sums (group.h). */
#include "group.h"

#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "par.h"
#include "upq_err.h"

struct grp {
    MPI_Comm comm;
    int rank, size;
};

enum { GRP_CHUNK = 1 << 20, GRP_TAG = 7001 };

static int mpi_fail(int rc, const char *what)
{
    char s[MPI_MAX_ERROR_STRING];
    int n = 0;
    MPI_Error_string(rc, s, &n);
    return UPQ_FAIL(UPQ_EIO, "block group: MPI error in %s: %s", what, s);
}

int grp_create(int color, int key, grp **out)
{
    *out = NULL;
    grp *g = upq_calloc(1, sizeof *g, "block group");
    if (!g) return UPQ_EIO;
    MPI_Comm *world = par_comm_world();
    int rc = MPI_Comm_split(*world, color, key, &g->comm);
    if (rc != MPI_SUCCESS) {
        free(g);
        return mpi_fail(rc, "MPI_Comm_split");
    }
    MPI_Comm_set_errhandler(g->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(g->comm, &g->rank);
    MPI_Comm_size(g->comm, &g->size);
    *out = g;
    return UPQ_OK;
}

void grp_destroy(grp *g)
{
    if (!g) return;
    if (g->comm != MPI_COMM_NULL && par_active()) MPI_Comm_free(&g->comm);
    free(g);
}

int grp_rank(const grp *g) { return g ? g->rank : 0; }
int grp_size(const grp *g) { return g ? g->size : 1; }
void *grp_comm(grp *g) { return g ? &g->comm : NULL; }

int grp_bcast(grp *g, void *buf, int64_t bytes, int root)
{
    if (!g || g->size == 1) return UPQ_OK;
    for (int64_t o = 0; o < bytes; o += GRP_CHUNK) {
        int n = (int)(bytes - o < GRP_CHUNK ? bytes - o : GRP_CHUNK);
        int rc = MPI_Bcast((char *)buf + o, n, MPI_BYTE, root, g->comm);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Bcast");
    }
    return UPQ_OK;
}

static void add_f64(void *dst, const void *src, int n)
{
    double *d = dst;
    const double *s = src;
    for (int i = 0; i < n; i++) d[i] += s[i];
}

static void add_f32(void *dst, const void *src, int n)
{
    float *d = dst;
    const float *s = src;
    for (int i = 0; i < n; i++) d[i] += s[i];
}

/* Member 0 receives each other member's buffer in member order, chunk by chunk, and adds
 * it to its own; the others send. Then everyone gets member 0's sum. */
static int sum_fixed(grp *g, void *buf, int64_t n, size_t es, MPI_Datatype t, void (*add)(void *, const void *, int))
{
    if (!g || g->size == 1 || n == 0) return UPQ_OK;
    char *b = buf;
    int rc = MPI_SUCCESS;
    if (g->rank == 0) {
        char *tmp = upq_malloc((size_t)(n < GRP_CHUNK ? n : GRP_CHUNK) * es, "group sum chunk");
        if (!tmp) return UPQ_EIO;
        for (int m = 1; m < g->size && rc == MPI_SUCCESS; m++)
            for (int64_t o = 0; o < n && rc == MPI_SUCCESS; o += GRP_CHUNK) {
                int c = (int)(n - o < GRP_CHUNK ? n - o : GRP_CHUNK);
                rc = MPI_Recv(tmp, c, t, m, GRP_TAG, g->comm, MPI_STATUS_IGNORE);
                if (rc == MPI_SUCCESS) add(b + (size_t)o * es, tmp, c);
            }
        free(tmp);
    } else {
        for (int64_t o = 0; o < n && rc == MPI_SUCCESS; o += GRP_CHUNK)
            rc = MPI_Send(b + (size_t)o * es, (int)(n - o < GRP_CHUNK ? n - o : GRP_CHUNK), t, 0, GRP_TAG, g->comm);
    }
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "the fixed-order group sum");
    return grp_bcast(g, buf, n * (int64_t)es, 0);
}

int grp_sum_f64(grp *g, double *buf, int64_t n) { return sum_fixed(g, buf, n, sizeof *buf, MPI_DOUBLE, add_f64); }
int grp_sum_f32(grp *g, float *buf, int64_t n) { return sum_fixed(g, buf, n, sizeof *buf, MPI_FLOAT, add_f32); }

int grp_max_i32(grp *g, int status)
{
    if (!g || g->size == 1) return status;
    int out = status;
    if (MPI_Allreduce(&status, &out, 1, MPI_INT, MPI_MAX, g->comm) != MPI_SUCCESS) return UPQ_EIO;
    return out;
}
