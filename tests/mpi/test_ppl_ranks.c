/* test_ppl_ranks.c - ppl_run with the windows split over 1, 2 or 4 ranks (ctest runs
 * this at each) against, on every rank, (a) the serial window loop with the same
 * batches (must agree to 1e-9 relative: the split only changes which rank computes a
 * window, so the runs at np 1, 2, 4 agree with each other to that bound), and (b) an
 * independent per-window forward + tfm_ce_loss (1e-6 relative: a different batch
 * composition changes fp32 rounding). Cases: uneven batch split, idle ranks (fewer
 * batches than ranks), a random model and stories260k on a wikitext prefix (when
 * ../shared exists), and a bad token id seen by one rank only: all ranks must
 * return the error (no hang). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "h5tokens.h"
#include "hf_model.h"
#include "loss.h"
#include "par.h"
#include "ppl.h"
#include "test_util.h"
#include "unit/rand_model.h"
#include "upq_err.h"

/* Mean NLL over windows computed one window at a time through loss.c. */
static double independent_nll(const tfm_model *m, const int64_t *ids, int64_t ctx, int64_t nwin)
{
    tfm_acts a;
    CHECK_OK(tfm_acts_alloc(&a, &m->cfg, 1, ctx, 0));
    int32_t *tok = malloc(ctx * sizeof *tok), *tgt = malloc(ctx * sizeof *tgt);
    double s = 0;
    for (int64_t w = 0; w < nwin; w++) {
        for (int64_t i = 0; i < ctx; i++) tok[i] = (int32_t)ids[w * ctx + i];
        tfm_next_token_targets(tgt, tok, NULL, 1, ctx);
        CHECK_OK(tfm_forward(m, &a, tok, 1, ctx, NULL));
        s += (double)tfm_ce_loss(NULL, a.logits, tgt, ctx, m->cfg.V, NULL) * (ctx - 1);
    }
    tfm_acts_free(&a);
    free(tok);
    free(tgt);
    return s / (double)(nwin * (ctx - 1));
}

static void check_case(const char *what, const tfm_model *m, const int64_t *ids, int64_t n,
                       int64_t ctx, int64_t batch, int64_t max_windows)
{
    ppl_opts o = {ctx, batch, max_windows, 0};
    ppl_result r;
    CHECK_OK(ppl_run(m, ids, n, &o, &r));
    int64_t nwin = n / ctx;
    if (max_windows && nwin > max_windows) nwin = max_windows;
    CHECK(r.windows == nwin && r.predicted == nwin * (ctx - 1));
    /* (a) the serial loop with the same batches */
    tfm_acts a;
    CHECK_OK(tfm_acts_alloc(&a, &m->cfg, batch, ctx, 0));
    double *nll = calloc(nwin, sizeof(double)), s = 0;
    CHECK_OK(ppl_windows_nll(m, &a, ids, ctx, 0, nwin, batch, nll, NULL, NULL));
    for (int64_t w = 0; w < nwin; w++) s += nll[w];
    tfm_acts_free(&a);
    free(nll);
    double serial = s / (double)r.predicted, indep = independent_nll(m, ids, ctx, nwin);
    double ea = fabs(r.mean_nll - serial) / serial, eb = fabs(r.mean_nll - indep) / indep;
    if (par_rank() == 0)
        printf("  np=%d %-28s nll %.17g ppl %.10g (vs serial %.2g, vs per-window CE %.2g)\n",
               par_size(), what, r.mean_nll, r.ppl, ea, eb);
    EXPECT_CLOSE(ea, 1e-9, "%s: %.3g vs serial", what, ea);
    EXPECT_CLOSE(eb, 1e-6, "%s: %.3g vs independent", what, eb);
    CHECK(fabs(r.ppl - exp(r.mean_nll)) <= 1e-12 * r.ppl);
}

static void random_model_cases(void)
{
    tfm_config c = rm_config(1, 0);
    tfm_model m;
    CHECK_OK(tfm_model_alloc(&m, &c));
    rm_model_init(&m);
    int64_t n = 11 * 16 + 5;
    int64_t *ids = malloc(n * sizeof *ids);
    for (int64_t i = 0; i < n; i++) ids[i] = (int64_t)((rm_uniform() + 1.0f) * 0.5f * c.V) % c.V;
    check_case("random, 11 windows, batch 3", &m, ids, n, 16, 3, 0);
    check_case("random, 4 windows, batch 2", &m, ids, n, 16, 2, 4);
    /* A bad id in the last window: only the last rank sees it; everyone fails. */
    ids[10 * 16 + 3] = c.V + 5;
    ppl_opts o = {16, 3, 0, 0};
    ppl_result r;
    int rc = ppl_run(&m, ids, n, &o, &r);
    CHECK(rc == UPQ_EINPUT);
    free(ids);
    tfm_model_free(&m);
}

static void stories_case(void)
{
    const char *d = getenv("UPQ_SHARED_DIR");
    if (!d) d = UPQ_SHARED_DIR;
    char dir[4096], gold[4200];
    snprintf(dir, sizeof dir, "%s/models/stories260k", d);
    snprintf(gold, sizeof gold, "%s/golden.h5", dir);
    tfm_model m;
    if (hf_model_load(dir, &m) != UPQ_OK) {
        if (par_rank() == 0) fprintf(stderr, "SKIPPED part: stories260k absent (%s)\n", dir);
        return;
    }
    int64_t *ids = NULL, n = 0;
    CHECK_OK(h5_read_tokens(gold, "/eval/wikitext2_test_token_ids", &ids, &n));
    if (ids) check_case("stories260k wikitext 7x128", &m, ids, 7 * 128 + 1, 128, 2, 0);
    free(ids);
    tfm_model_free(&m);
}

int main(int argc, char **argv)
{
    if (par_init(&argc, &argv) != UPQ_OK) {
        fprintf(stderr, "par_init: %s\n", upq_errmsg());
        return 1;
    }
    random_model_cases();
    stories_case();
    int rc = tu_finish("test_ppl_ranks");
    rc = par_agree(rc);
    par_finalize();
    return rc;
}
