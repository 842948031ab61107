/* test_ptq_group.c - block groups (--ranks-per-block) against one rank per group, at
 * 1, 2 and 4 ranks (ctest runs this at each). Every rank calls ptq_run (the block-parallel
 * driver); a run with R = P (one group of all ranks sharing every block: windows split,
 * X^T X / errors / TesseraQ gradients summed in a fixed order) is compared with R = 1 on
 * the same ranks (one rank per group, which e2e ptq_mpi shows byte-identical to np 1):
 *  - rtn: identical codes and scales, identical block errors (a per-window gather);
 *  - gptq: codes that differ <= 0.1% (X^T X summed in another order flips rounding
 *    ties), scales within 2e-3 relative (one fp16 step), block errors within 1e-5 relative;
 *  - gptq forced through ScaLAPACK on the group's grid (scalapack_min_dim 1) against the
 *    group's LAPACK run: the same codes, or block errors within 1e-6 relative (tinyllama:
 *    the group's ScaLAPACK run against R = 1 with LAPACK, the same criterion; 2 windows,
 *    so at np 4 two members hold none);
 *  - tesseraq (2 rounds x 8 steps, batch 4): block errors within 1e-3 relative (float
 *    gradients summed in another order move the Adam trajectory a little).
 * On the demo model (built here, 20 steps) and tinyllama-15m when ../shared exists. At
 * np 1 both runs are one rank (a check that the single-rank path is untouched). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "demo_train.h"
#include "f16.h"
#include "h5qmodel.h"
#include "par.h"
#include "ptq.h"
#include "test_util.h"
#include "upq_err.h"

static char dir[256];
static int64_t m_samples, m_seq, m_steps; /* measurement mode (main's arguments), else 0 */
static double t_start;
double ptq_now_s(void);

typedef struct {
    int64_t codes, ncodes; /* codes that differ, of all */
    double scale, err;     /* max relative difference of scales, of block errors (final) */
} diff;

static int64_t nblocks(const char *csv)
{
    FILE *f = fopen(csv, "r");
    int64_t n = -1;
    char line[256];
    while (f && fgets(line, sizeof line, f)) n++;
    if (f) fclose(f);
    return n;
}

static void read_errs(const char *csv, double *e, int64_t L)
{
    FILE *f = fopen(csv, "r");
    CHECK(f != NULL);
    char line[256];
    CHECK(fgets(line, sizeof line, f) != NULL);
    for (int64_t l = 0; l < L; l++) {
        long long b = 0;
        double e0 = 0;
        CHECK(fscanf(f, "%lld,%lf,%lf\n", &b, &e0, &e[l]) == 3 && b == l);
    }
    fclose(f);
}

static double rel(double a, double b) { return a == b ? 0.0 : fabs(a - b) / fmax(fabs(a), fabs(b)); }

static diff compare(const char *a, const char *b)
{
    char pa[512], pb[512], ca[512], cb[512];
    snprintf(pa, sizeof pa, "%s/%s.h5", dir, a), snprintf(pb, sizeof pb, "%s/%s.h5", dir, b);
    snprintf(ca, sizeof ca, "%s/%s.blocks.csv", dir, a), snprintf(cb, sizeof cb, "%s/%s.blocks.csv", dir, b);
    diff d = {0, 0, 0.0, 0.0};
    int64_t L = nblocks(ca);
    CHECK(L > 0 && L == nblocks(cb));
    double *ea = calloc((size_t)L, sizeof *ea), *eb = calloc((size_t)L, sizeof *eb);
    read_errs(ca, ea, L), read_errs(cb, eb, L);
    for (int64_t l = 0; l < L; l++) {
        d.err = tu_max(d.err, rel(ea[l], eb[l]));
        for (int p = 0; p < TFM_NPROJ; p++) {
            kq_qmat qa, qb;
            int fa = 0, fb = 0;
            CHECK_OK(h5q_read_layer(pa, l, p, &qa, &fa));
            CHECK_OK(h5q_read_layer(pb, l, p, &qb, &fb));
            CHECK(fa && fb && qa.N == qb.N && qa.K == qb.K && qa.nb == qb.nb);
            for (int64_t i = 0; i < qa.N * qa.K; i++)
                d.codes += kq_code_get(&qa, i / qa.K, i % qa.K) != kq_code_get(&qb, i / qa.K, i % qa.K);
            d.ncodes += qa.N * qa.K;
            for (int64_t i = 0; i < qa.N * qa.nb; i++) {
                double sa = kq_f16_to_f32(kq_scale_get(&qa, i / qa.nb, i % qa.nb));
                double sb = kq_f16_to_f32(kq_scale_get(&qb, i / qa.nb, i % qa.nb));
                d.scale = tu_max(d.scale, rel(sa, sb));
            }
            quant_qmat_free(&qa), quant_qmat_free(&qb);
        }
    }
    free(ea), free(eb);
    return d;
}

/* ptq_run on every rank into dir/out.h5. */
static void run(const char *model, const char *calib, int method, int R, int64_t sl_min, const char *out)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.h5", dir, out);
    ptq_opts o;
    ptq_opts_default(&o);
    o.model = model, o.calib = calib, o.out = path, o.method = method, o.progress = 0;
    o.bits = 2, o.group = 32, o.calib_samples = 6, o.seq_len = 32, o.input_mode = PTQ_INPUT_FP;
    o.distributed = 1, o.ranks_per_block = R, o.scalapack_min_dim = sl_min;
    o.tsq.rounds = 2, o.tsq.steps = 8, o.tsq.batch = 4;
    if (strstr(model, "tinyllama")) o.bits = 4, o.group = 128, o.calib_samples = 2; /* np 4: 2 members without windows */
    if (m_samples) o.calib_samples = m_samples, o.seq_len = m_seq, o.tsq.steps = (int)m_steps;
    CHECK_OK(ptq_run(&o));
}

static void report(const char *what, diff d)
{
    if (par_rank() == 0)
        printf("[%5.1f s] np %d %-34s codes differing %lld of %lld, max rel scale diff %.2e, max rel block error diff %.2e\n",
               ptq_now_s() - t_start, par_size(), what, (long long)d.codes, (long long)d.ncodes, d.scale, d.err);
    fflush(stdout);
}

static void check_model(const char *name, const char *model, const char *calib, int with_tsq)
{
    int P = par_size();
    char what[128];
    if (!strstr(model, "tinyllama")) {
        run(model, calib, PTQ_RTN, 1, 1 << 30, "rtn1"), run(model, calib, PTQ_RTN, P, 1 << 30, "rtnP");
        diff d = compare("rtn1", "rtnP");
        snprintf(what, sizeof what, "%s rtn R=%d vs R=1:", name, P), report(what, d);
        CHECK(d.codes == 0 && d.scale == 0.0 && d.err == 0.0);
    }
    run(model, calib, PTQ_GPTQ, 1, 1 << 30, "gptq1"), run(model, calib, PTQ_GPTQ, P, 1, "gptqPsl");
    diff d;
    if (!with_tsq) { /* tinyllama: two runs only (time); the group's H equals one rank's here */
        d = compare("gptq1", "gptqPsl");
        snprintf(what, sizeof what, "%s gptq R=%d ScaLAPACK vs R=1 LAPACK:", name, P), report(what, d);
        CHECK(isfinite(d.err) && (d.codes == 0 || d.err <= 1e-6));
        return;
    }
    run(model, calib, PTQ_GPTQ, P, 1 << 30, "gptqP");
    d = compare("gptq1", "gptqP");
    snprintf(what, sizeof what, "%s gptq R=%d vs R=1:", name, P), report(what, d);
    CHECK(d.codes * 1000 <= d.ncodes && tu_close(d.scale, 2e-3) && tu_close(d.err, 1e-5));
    d = compare("gptqP", "gptqPsl");
    snprintf(what, sizeof what, "%s gptq ScaLAPACK vs LAPACK (R=%d):", name, P), report(what, d);
    CHECK(isfinite(d.err) && (d.codes == 0 || d.err <= 1e-6));
    run(model, calib, PTQ_TESSERAQ, 1, 1 << 30, "tsq1"), run(model, calib, PTQ_TESSERAQ, P, 1 << 30, "tsqP");
    d = compare("tsq1", "tsqP");
    snprintf(what, sizeof what, "%s tesseraq R=%d vs R=1:", name, P), report(what, d);
    CHECK(tu_close(d.err, 1e-3));
}

/* By hand: test_ptq_group MODEL CALIB SAMPLES SEQ_LEN TSQ_STEPS prints rtn, gptq and
 * tesseraq (2 rounds, batch 4) with R = 2 and R = P against R = 1 (no checks). */
static void measure(char **argv)
{
    m_samples = atoll(argv[3]), m_seq = atoll(argv[4]), m_steps = atoll(argv[5]);
    const char *meth[3] = {"rtn", "gptq", "tesseraq"};
    for (int m = 0; m < 3; m++) {
        char ref[32], out[32], what[128];
        snprintf(ref, sizeof ref, "%s1", meth[m]);
        run(argv[1], argv[2], m, 1, 1 << 30, ref);
        for (int R = 2; R <= par_size(); R *= 2) {
            snprintf(out, sizeof out, "%s%d", meth[m], R);
            run(argv[1], argv[2], m, R, 1 << 30, out);
            snprintf(what, sizeof what, "%s R=%d vs R=1:", meth[m], R), report(what, compare(ref, out));
        }
    }
}

int main(int argc, char **argv)
{
    CHECK_OK(par_init(&argc, &argv));
    t_start = ptq_now_s();
    if (par_rank() == 0) {
        snprintf(dir, sizeof dir, "/tmp/upq_test_ptq_group_XXXXXX");
        CHECK(mkdtemp(dir) != NULL);
    }
    CHECK_OK(par_bcast(dir, sizeof dir, 0));
    if (argc == 6) {
        measure(argv);
        argc = 0;
    }
    char demo[300], calib[600];
    snprintf(demo, sizeof demo, "%s/demo", dir);
    snprintf(calib, sizeof calib, "%s/eval_tokens.h5", demo);
    demo_opts dopt;
    demo_opts_default(&dopt);
    dopt.steps = 20;
    demo_result dr;
    int rc = par_rank() == 0 && argc ? demo_model_build(demo, &dopt, &dr) : UPQ_OK;
    CHECK_OK(par_agree_timeout(rc, 1e9)); /* polls with sleeps: the waiting ranks leave rank 0 the cores */
    if (argc) check_model("demo", demo, calib, 1);
    char tl[512], txt[512];
    snprintf(tl, sizeof tl, "%s/models/tinyllama-15m", UPQ_SHARED_DIR);
    snprintf(txt, sizeof txt, "%s/data/tinyshakespeare/input.txt", UPQ_SHARED_DIR);
    snprintf(calib, sizeof calib, "%s/config.json", tl);
    if (argc && access(calib, R_OK) == 0) check_model("tinyllama-15m", tl, txt, 0);
    else if (argc && par_rank() == 0) printf("tinyllama-15m absent (UPQ_SHARED_DIR): demo model only\n");
    par_barrier();
    if (par_rank() == 0) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        CHECK(system(cmd) == 0);
    }
    int frc = tu_finish("test_ptq_group");
    par_finalize();
    return frc;
}
