/* test_pipe_tree.c - mpi/treesum.h's pipe_tree_reduce at 1, 2 and 4 ranks: every rank is a
 * replica owning the contiguous block of n / P leaves (n = 8 and 16), pushes them, and the
 * group reduction gives every rank the recursive halving sum over all n leaves bit for bit
 * (computed here independently), so the same bits as one rank pushing all n; with the
 * default chunk and with chunks of 7 and 1000 floats (ragged last chunks, more chunks than
 * the two receive buffers), twice on one tree (the reset and the kept buffers). Also pipe_link: a ring of non-blocking sends/receives arrives intact. */
#include <string.h>

#include "group.h"
#include "par.h"
#include "pipe.h"
#include "test_util.h"
#include "treesum.h"
#include "upq_err.h"

static float leaf(int64_t i, int64_t k)
{
    uint64_t z = (uint64_t)(i + 3) * 0x9E3779B97F4A7C15ull ^ (uint64_t)(k + 1) * 0xBF58476D1CE4E5B9ull;
    z ^= z >> 31;
    float u = (float)(z >> 40) / 16777216.0f;
    return (i + k) % 3 == 0 ? u * 3e3f : (i + k) % 3 == 1 ? -u * 3e3f + 0.25f : u * 1e-4f;
}

static float halving(int64_t lo, int64_t hi, int64_t k)
{
    if (hi - lo == 1) return leaf(lo, k);
    int64_t m = lo + (hi - lo) / 2;
    float a = halving(lo, m, k), b = halving(m, hi, k);
    return a + b;
}

static void check_reduce(grp *g, int64_t n, int64_t len, int64_t chunk)
{
    int P = grp_size(g), me = grp_rank(g);
    pipe_tree *t = NULL;
    CHECK_OK(pipe_tree_create(n, len, &t));
    if (chunk > 0) pipe_tree_set_chunk(t, chunk);
    float *b = malloc((size_t)len * sizeof *b), *out = malloc((size_t)len * sizeof *out);
    for (int rep = 0; rep < 2; rep++) {
        pipe_tree_reset(t);
        memset(out, 0xff, (size_t)len * sizeof *out); /* NaN: a chunk not written fails */
        for (int64_t i = me * (n / P); i < (me + 1) * (n / P); i++) {
            for (int64_t k = 0; k < len; k++) b[k] = leaf(i, k);
            CHECK_OK(pipe_tree_push(t, i, b));
        }
        CHECK_OK(pipe_tree_reduce(g, t, out));
        int64_t bad = 0;
        for (int64_t k = 0; k < len; k++) {
            float ref = halving(0, n, k);
            bad += memcmp(&ref, &out[k], sizeof ref) != 0;
        }
        CHECK_MSG(bad == 0, "P %d n %lld chunk %lld: %lld of %lld sums differ from the halving tree", P, (long long)n,
                  (long long)chunk, (long long)bad, (long long)len);
    }
    free(b), free(out);
    pipe_tree_destroy(t);
}

int main(int argc, char **argv)
{
    CHECK_OK(par_init(&argc, &argv));
    int P = par_size(), me = par_rank();
    grp *g = NULL;
    CHECK_OK(grp_create(0, me, &g));
    check_reduce(g, 8, 1000, 0);
    check_reduce(g, 16, 3001, 0);
    check_reduce(g, 16, 3001, 7);
    check_reduce(g, 8, 3001, 1000);
    grp_destroy(g);
    /* a ring of pipe_link transfers: rank r sends 1000 floats to r+1, receives from r-1 */
    if (P > 1) {
        pipe_link *l = NULL;
        CHECK_OK(pipe_link_create(2, &l));
        float s[1000], r[1000];
        for (int i = 0; i < 1000; i++) s[i] = (float)(me * 1000 + i);
        CHECK_OK(pipe_post_recv(l, 0, r, 1000, (me + P - 1) % P, 5));
        CHECK_OK(pipe_post_send(l, 1, s, 1000, (me + 1) % P, 5));
        double idle = 0;
        CHECK_OK(pipe_wait(l, 0, &idle));
        CHECK_OK(pipe_wait(l, 1, NULL));
        int bad = 0;
        for (int i = 0; i < 1000; i++) bad += r[i] != (float)(((me + P - 1) % P) * 1000 + i);
        CHECK(bad == 0 && idle >= 0);
        CHECK_OK(pipe_link_destroy(l));
    }
    int rc = tu_finish("test_pipe_tree");
    par_finalize();
    return rc;
}
