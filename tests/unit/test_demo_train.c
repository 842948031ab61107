/* test_demo_train.c - the demo training pieces without I/O: init statistics (N(0,0.02),
 * residual projections scaled by 1/sqrt(2L), norms 1, seed-determined), the unigram
 * baseline against a hand computation, demo_eval against window-by-window forward
 * passes, and a short training run that lowers the loss and repeats bit for bit. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"
#include "demo_tok.h"
#include "demo_train.h"
#include "forward.h"
#include "loss.h"
#include "test_util.h"
#include "upq_err.h"

static double stdev(const float *x, int64_t n)
{
    double s = 0, s2 = 0;
    for (int64_t i = 0; i < n; i++) s += x[i], s2 += (double)x[i] * x[i];
    return sqrt(s2 / n - (s / n) * (s / n));
}

static void test_init(void)
{
    tfm_config c;
    demo_config(&c, 512);
    CHECK_OK(tfm_config_check(&c, "demo_config"));
    tfm_model a, b;
    CHECK_OK(tfm_model_alloc(&a, &c));
    CHECK_OK(tfm_model_alloc(&b, &c));
    demo_init_weights(&a, 1);
    double se = stdev(a.tok_emb, c.V * c.C), so = stdev(a.layers[0].wo, c.C * c.H * c.D);
    double sd = stdev(a.layers[c.L - 1].w_down, c.C * c.F), want_r = 0.02 / sqrt(2.0 * c.L);
    CHECK_MSG(fabs(se - 0.02) < 0.001, "embedding std %g", se);
    CHECK_MSG(fabs(so - want_r) < 0.05 * want_r && fabs(sd - want_r) < 0.05 * want_r,
              "residual std %g %g, want %g", so, sd, want_r);
    int ones = 1;
    for (int64_t i = 0; i < c.C; i++) ones &= a.final_norm[i] == 1.0f && a.layers[1].mlp_norm[i] == 1.0f;
    CHECK(ones);
    demo_init_weights(&b, 1);
    CHECK(!memcmp(a.mem, b.mem, (size_t)a.n_params * sizeof(float)));
    demo_init_weights(&b, 2);
    CHECK(memcmp(a.mem, b.mem, (size_t)a.n_params * sizeof(float)) != 0);
    tfm_model_free(&a);
    tfm_model_free(&b);
}

static void test_unigram(void)
{
    /* train {3,3,4} over V=5: p(3) = 3/8, p(4) = 2/8 with add-one; windows of 2 score
     * their second token: 3 and 4 */
    const int32_t train[] = {3, 3, 4}, ev[] = {0, 3, 1, 4, 2};
    double nll = 0;
    CHECK_OK(demo_unigram_nll(train, 3, ev, 5, 2, 5, &nll));
    double want = -(log(3.0 / 8.0) + log(2.0 / 8.0)) / 2.0;
    CHECK_MSG(fabs(nll - want) < 1e-12, "unigram nll %.15g want %.15g", nll, want);
}

/* A short run twice: loss falls, identical weights; demo_eval equals per-window sums. */
static void test_train_eval(void)
{
    const int64_t nb = 60000;
    char *text = malloc((size_t)nb);
    corpus_generate(4, text, nb);
    dtok t;
    CHECK_OK(dtok_train(&t, text, nb, 300));
    int32_t *ids = NULL;
    int64_t n = 0;
    CHECK_OK(dtok_encode(&t, text, nb, &ids, &n));
    demo_opts o;
    demo_opts_default(&o);
    o.steps = 12, o.batch = 4, o.ctx = 32, o.progress = NULL;
    tfm_config c;
    demo_config(&c, t.V);
    tfm_model m[2];
    demo_result r[2];
    for (int k = 0; k < 2; k++) {
        CHECK_OK(tfm_model_alloc(&m[k], &c));
        demo_init_weights(&m[k], o.seed);
        memset(&r[k], 0, sizeof r[k]);
        CHECK_OK(demo_train(&m[k], ids, n, &o, &r[k]));
    }
    CHECK(r[0].steps == 12 && r[0].final_loss < r[0].first_loss - 0.5);
    CHECK(!memcmp(m[0].mem, m[1].mem, (size_t)m[0].n_params * sizeof(float)));
    CHECK(r[0].final_loss == r[1].final_loss);

    /* demo_eval (batches of 8 windows) against one forward per window */
    const int64_t ctx = 32, len = 20 * ctx + 5;
    double mean = 0, sum = 0;
    int64_t pred = 0, cnt = 0;
    CHECK_OK(demo_eval(&m[0], ids, len, ctx, &mean, &pred));
    tfm_acts a;
    CHECK_OK(tfm_acts_alloc(&a, &c, 1, ctx, 0));
    int32_t tgt[32];
    for (int64_t w = 0; w < len / ctx; w++) {
        int64_t k = 0;
        CHECK_OK(tfm_forward(&m[0], &a, ids + w * ctx, 1, ctx, NULL));
        tfm_next_token_targets(tgt, ids + w * ctx, NULL, 1, ctx);
        sum += tfm_ce_nll_sum(a.logits, tgt, ctx, c.V, &k);
        cnt += k;
    }
    CHECK(pred == cnt && cnt == 20 * (ctx - 1));
    CHECK_MSG(fabs(mean - sum / cnt) < 1e-5 * fabs(mean), "eval %.9g vs per-window %.9g", mean, sum / cnt);
    tfm_acts_free(&a);
    tfm_model_free(&m[0]);
    tfm_model_free(&m[1]);
    free(ids);
    dtok_free(&t);
    free(text);
}

int main(void)
{
    test_init();
    test_unigram();
    test_train_eval();
    return tu_finish("test_demo_train");
}
