/* test_h5model_mpi.c - the model container written collectively with MPI-IO
 * (h5m_write_begin with par_comm_world(), committed by par_commit + ss_commit) and read
 * back both collectively on every rank and serially: bit-identical to the model every
 * rank built from the same seed. A begin whose agreement fails (one rank reports an
 * error) leaves no file at the path and no temp file. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "h5model.h"
#include "model.h"
#include "par.h"
#include "stage_state.h"
#include "test_util.h"
#include "upq_err.h"

typedef struct {
    const char *tmp, *path;
} commit_ctx;
static int do_commit(void *v) { return ss_commit(((commit_ctx *)v)->tmp, ((commit_ctx *)v)->path); }
static void do_abort(void *v) { ss_abort(((commit_ctx *)v)->tmp); }

static void fill(tfm_model *m, uint64_t seed)
{
    for (int64_t i = 0; i < m->n_params; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        m->mem[i] = (float)((int64_t)(seed >> 40) - (1 << 23)) / 65536.0f;
    }
}

int main(int argc, char **argv)
{
    if (par_init(&argc, &argv) != UPQ_OK) {
        fprintf(stderr, "par_init: %s\n", upq_errmsg());
        return 1;
    }
    int rank = par_rank();
    char dir[64] = "/tmp/upq_test_h5mpi_XXXXXX";
    if (rank == 0) CHECK(mkdtemp(dir) != NULL);
    CHECK_OK(par_bcast(dir, sizeof dir, 0));
    char path[128];
    snprintf(path, sizeof path, "%s/model.h5", dir);

    tfm_config c = {.V = 29, .C = 8, .F = 12, .L = 2, .H = 2, .KV = 1, .D = 4, .max_T = 32,
                    .rope_theta = 1e4, .norm_eps = 1e-5, .bos_id = 1, .eos_id = 2, .pad_id = 0};
    snprintf(c.arch, sizeof c.arch, "LlamaForCausalLM");
    tfm_model m, r;
    CHECK_OK(tfm_model_alloc(&m, &c));
    fill(&m, 42);
    h5m_provenance p;
    h5m_prov_init(&p, "test", argc, argv);
    if (rank == 0) h5m_prov_stamp(&p); /* one time for every rank's attribute writes */
    CHECK_OK(par_bcast(p.created, sizeof p.created, 0));
    char tmp[160];
    ss_tmp_name(path, tmp, sizeof tmp);
    commit_ctx cc = {tmp, path};

    /* a failed begin on the last rank: nobody commits, the temp file is gone */
    int st0 = h5m_write_begin(tmp, &m, &p, par_comm_world(), rank == 0);
    CHECK_OK(st0);
    int want = rank == par_size() - 1 ? UPQ_EIO : UPQ_OK;
    CHECK(par_commit(st0 ? st0 : want, do_commit, do_abort, &cc) == UPQ_EIO);
    CHECK(access(path, F_OK) != 0 && access(tmp, F_OK) != 0);

    CHECK_OK(h5m_write_begin(tmp, &m, &p, par_comm_world(), rank == 0));
    CHECK(access(path, F_OK) != 0); /* begun, not committed: nothing at the path */
    CHECK_OK(par_commit(UPQ_OK, do_commit, do_abort, &cc));
    CHECK(access(path, R_OK) == 0 && access(tmp, F_OK) != 0);

    CHECK_OK(h5m_read(path, &r, NULL, par_comm_world()));
    CHECK(r.n_params == m.n_params);
    if (r.mem) CHECK(memcmp(r.mem, m.mem, (size_t)m.n_params * sizeof(float)) == 0);
    tfm_model_free(&r);

    h5m_provenance rp;
    CHECK_OK(h5m_read(path, &r, &rp, NULL));
    if (r.mem) CHECK(memcmp(r.mem, m.mem, (size_t)m.n_params * sizeof(float)) == 0);
    CHECK(!strcmp(rp.method, "test") && rp.created[0]);
    tfm_model_free(&r);
    tfm_model_free(&m);

    int st = par_agree(tu_failures ? 1 : 0);
    par_barrier();
    if (rank == 0) {
        char cmd[160];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    }
    int rc = tu_finish("test_h5model_mpi");
    par_finalize();
    return rc ? rc : st;
}
