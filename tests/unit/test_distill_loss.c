/* test_distill_loss.c - distillation losses (src/train/distill_loss.c) against a float64 plain
 * reference written from the definitions (distill_ref.h; its gradient by double central
 * differences), against central differences of the library's own value, the beta
 * limits of the JSD, KL(p||p) = 0, the JSD bound, top-K with K = V against full, and the
 * sampled estimator against full with a tolerance from its exact variance. Masks,
 * temperature, CE, the CAKLD gamma, record checks and the bench: test_distill_batch.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "distill_loss.h"
#include "distill_ref.h"
#include "f16.h"
#include "rng.h"
#include "test_util.h"
#include "upq_err.h"

/* Value and gradient of every loss, mode and a few temperatures against the reference;
 * gradient also against central differences of the library's own value. */
static void test_vs_reference(void)
{
    enum { V = 50, N = 3 };
    float z[N * V], tl[N * V], d[N * V], loss[N];
    int32_t tg[N] = {7, -1, 42};
    double g[V];
    fill(z, N * V, 3.0);
    fill(tl, N * V, 4.0);
    for (int i = 0; i < N * V; i++) tl[i] += 0.5f * z[i]; /* correlated teacher */
    static rec_buf rb[N];
    dl_record recs[N];
    dl_config cfgs[] = {{DL_CE, 0, 0, 1, 1, 0},        {DL_FKL, 0, 0, 1, 1, 0},
                        {DL_RKL, 0, 0, 2.5, 1, 0},     {DL_JSD, 0.3, 0, 1, 1, 0},
                        {DL_JSD, 0.5, 0, 2.0, 0, 0},   {DL_CAKLD, 0, 0.7, 1, 1, 0},
                        {DL_FKL, 0, 0, 0.7, 0, 0},     {DL_CAKLD, 0, 0.2, 1.5, 1, 0}};
    for (int m = 0; m < 5; m++) { /* 3: top-K without the stored log_tail; 4: sample_bucket */
        for (int i = 0; i < N; i++) {
            make_rec(&rb[i], m == 3 ? DL_TOPK : m == 4 ? DL_SAMPLE : (dl_mode)m, tl + i * V, V, 7, 20);
            if (m == 3) rb[i].r.log_tail = 0;
            recs[i] = rb[i].r;
            CHECK_OK(dl_record_check(&recs[i], V, "test record"));
        }
        for (size_t c = 0; c < sizeof cfgs / sizeof *cfgs; c++) {
            dl_config cfm = cfgs[c];
            cfm.sample_bucket = m == 4;
            const dl_config *cf = &cfm;
            CHECK_OK(dl_config_check(cf));
            int64_t cnt;
            double sum = dl_loss_forward_backward(d, loss, cf, z, recs, tg, N, V, 1.0, &cnt);
            CHECK(cnt == 2);
            double verr = 0, gerr = 0, fderr = 0, rsum = 0;
            for (int i = 0; i < N; i++) {
                if (tg[i] < 0) continue;
                double zd[V];
                for (int j = 0; j < V; j++) zd[j] = z[i * V + j];
                double rv = ref_pos(cf, zd, &recs[i], tg[i], V);
                rsum += rv;
                verr = fmax(verr, fabs(loss[i] - rv) / (fabs(rv) + 1e-3));
                ref_grad(g, cf, z + i * V, &recs[i], tg[i], V);
                double gm = 0;
                for (int j = 0; j < V; j++) gm = fmax(gm, fabs(g[j]));
                for (int j = 0; j < V; j++)
                    gerr = fmax(gerr, fabs(d[i * V + j] - g[j]) / (gm + 1e-6));
                /* Central differences of the library's value (float inputs: use the
                 * representable step). */
                float zp[V], dd[V];
                memcpy(zp, z + i * V, sizeof zp);
                for (int j = 0; j < V; j++) {
                    float z0 = zp[j], a = z0 + 1e-3f, b = z0 - 1e-3f;
                    zp[j] = a;
                    double up = dl_loss_forward_backward(dd, NULL, cf, zp, &recs[i], &tg[i], 1, V, 1.0, NULL);
                    zp[j] = b;
                    double dn = dl_loss_forward_backward(dd, NULL, cf, zp, &recs[i], &tg[i], 1, V, 1.0, NULL);
                    zp[j] = z0;
                    fderr = fmax(fderr, fabs((up - dn) / ((double)a - b) - d[i * V + j]) / (gm + 1e-6));
                }
            }
            printf("  %-17s %-5s T=%.1f t2=%d: value rel %.2g, grad vs ref-fd %.2g, vs own fd %.2g\n",
                   mname[m], kname[cf->kind], cf->temperature, cf->scale_t2, verr, gerr, fderr);
            CHECK_MSG(verr <= 1e-5, "%s %s value", mname[m], kname[cf->kind]);
            CHECK_MSG(gerr <= 1e-5, "%s %s grad", mname[m], kname[cf->kind]);
            CHECK_MSG(fderr <= 1e-4, "%s %s own fd", mname[m], kname[cf->kind]);
            CHECK(fabs(sum - rsum) <= 1e-5 * (fabs(rsum) + 1e-3));
            for (int j = 0; j < V; j++) CHECK(d[V + j] == 0.0f); /* masked row */
            CHECK(loss[1] == 0.0f);
        }
    }
}

/* JSD_beta at beta = 1e-4 / 1 - 1e-4 against FKL / RKL (error O(beta), so also 1e-2 to
 * see it shrink), in every mode. */
static void test_beta_limits(void)
{
    enum { V = 300 };
    static float z[V], tl[V], d0[V], d1[V];
    static rec_buf rb;
    fill(z, V, 2.0);
    fill(tl, V, 3.0);
    for (int m = 0; m < 3; m++) {
        make_rec(&rb, (dl_mode)m, tl, V, 16, 64);
        for (int end = 0; end < 2; end++) {
            dl_config kl = {end ? DL_RKL : DL_FKL, 0, 0, 1.3, 1, 0};
            double vk = eval1(d0, &kl, z, &rb.r, V), err[2], gerr[2];
            double eps[2] = {1e-2, 1e-4};
            for (int e = 0; e < 2; e++) {
                dl_config js = {DL_JSD, end ? 1 - eps[e] : eps[e], 0, 1.3, 1, 0};
                double vj = eval1(d1, &js, z, &rb.r, V);
                err[e] = fabs(vj - vk) / fabs(vk);
                gerr[e] = grad_diff(d0, d1, V);
            }
            dl_config js0 = {DL_JSD, end ? 1.0 : 0.0, 0, 1.3, 1, 0};
            double v0 = eval1(d1, &js0, z, &rb.r, V);
            printf("  %-6s beta->%d vs %s: rel err %.2g (1e-2) %.2g (1e-4); grad %.2g %.2g\n",
                   mname[m], end, kname[kl.kind], err[0], err[1], gerr[0], gerr[1]);
            CHECK(v0 == vk && grad_diff(d0, d1, V) == 0.0); /* endpoints are the KLs */
            /* the error is first order in beta (its factor a chi-square-like distance):
             * small at 1e-4, and about 100 times smaller than at 1e-2 */
            CHECK(err[1] <= 1e-2 && gerr[1] <= 1e-2);
            CHECK(err[1] <= 0.03 * err[0] + 1e-7 && gerr[1] <= 0.03 * gerr[0] + 1e-7);
        }
    }
}

/* KL(p||p) = 0 for every divergence (record = the student's own distribution at T), and
 * JSD_beta * beta (1 - beta) <= H(beta) <= log 2, nearly reached by disjoint peaks. */
static void test_zero_and_bound(void)
{
    enum { V = 200 };
    static float z[V], tl[V], d[V];
    fill(z, V, 4.0);
    for (int c = 0; c < 4; c++) {
        double T = c % 2 ? 2.0 : 1.0;
        for (int j = 0; j < V; j++) tl[j] = (float)(z[j] / T); /* record at temperature T */
        dl_record r = {.mode = DL_FULL, .logp = tl};
        dl_config cfgs[] = {{DL_FKL, 0, 0, T, 1, 0}, {DL_RKL, 0, 0, T, 1, 0}, {DL_JSD, 0.5, 0, T, 1, 0},
                            {DL_JSD, 0.1, 0, T, 0, 0}, {DL_CAKLD, 0, 0.6, T, 1, 0}};
        for (int k = 0; k < 5; k++) {
            double v = eval1(d, &cfgs[k], z, &r, V);
            CHECK_MSG(fabs(v) <= 1e-6 && max_abs(d, V) <= 1e-6, "%s T=%g: %g %g",
                      kname[cfgs[k].kind], T, v, max_abs(d, V));
        }
    }
    double worst = 0, best = 0;
    for (int trial = 0; trial < 60; trial++) {
        double sc = trial < 20 ? 1 : trial < 40 ? 10 : 60;
        fill(z, V, sc);
        fill(tl, V, sc);
        if (trial >= 40) { /* disjoint peaks: the bound is nearly reached */
            z[trial % V] = (float)(3 * sc);
            tl[(trial + 1) % V] = (float)(3 * sc);
        }
        dl_record r = {.mode = DL_FULL, .logp = tl};
        double betas[3] = {0.1, 0.5, 0.9};
        for (int b = 0; b < 3; b++) {
            dl_config c = {DL_JSD, betas[b], 0, 1, 1, 0};
            double beta = betas[b], raw = eval1(d, &c, z, &r, V) * beta * (1 - beta);
            double H = -beta * log(beta) - (1 - beta) * log1p(-beta);
            CHECK_MSG(raw >= -1e-12 && raw <= H + 1e-9 && raw <= log(2.0) + 1e-9,
                      "jsd %g beta %g", raw, beta);
            worst = fmax(worst, raw - H);
            if (b == 1) best = fmax(best, raw / log(2.0));
        }
    }
    printf("  JSD: max(raw - H(beta)) %.2g, largest raw/log2 at beta 0.5 %.6f\n", worst, best);
    CHECK(best > 0.99);
}

/* Top-K with K = V has an empty tail, and with K = V - 1 a tail of one entry (here of
 * teacher mass about 1e-14, so the stored log_tail must carry it: 1 - sum q under an
 * fp32 lse is only good to ~1e-7): both must equal full. */
static void test_topk_full(void)
{
    enum { V = 500 };
    static float z[V], tl[V], d0[V], d1[V];
    static rec_buf rb;
    fill(z, V, 3.0);
    fill(tl, V, 3.0);
    tl[77] = -25.0f; /* q about 1e-14 */
    dl_record full = {.mode = DL_FULL, .logp = tl};
    dl_config cfgs[] = {{DL_FKL, 0, 0, 1, 1, 0}, {DL_RKL, 0, 0, 1, 1, 0}, {DL_JSD, 0.5, 0, 1, 1, 0},
                        {DL_CAKLD, 0, 0.3, 1, 1, 0}};
    for (int k = 0; k < 8; k++) {
        if (k % 4 == 0) make_rec(&rb, DL_TOPK, tl, V, k ? V - 1 : V, 0);
        const dl_config *c = &cfgs[k % 4];
        double vf = eval1(d0, c, z, &full, V), vt = eval1(d1, c, z, &rb.r, V);
        double gd = grad_diff(d0, d1, V);
        CHECK_MSG(fabs(vf - vt) <= 1e-6 * fabs(vf) && gd <= 1e-6, "%s K=%d: %.9g vs %.9g, grad %g",
                  kname[c->kind], rb.r.k, vf, vt, gd);
        if (k >= 4) {
            /* Without log_tail the 1e-14 tail is below the rounding of 1 - sum q: the
             * derived one is noise or the 1e-20 floor. Still finite, and FKL (which weighs
             * the tail by its tiny teacher mass) stays within 1e-5. */
            dl_record d = rb.r;
            d.log_tail = 0;
            double vd = eval1(d1, c, z, &d, V);
            CHECK_MSG(isfinite(vd) && isfinite(max_abs(d1, V)), "%s derived tail", kname[c->kind]);
            if (c->kind == DL_FKL) CHECK(fabs(vd - vf) <= 1e-5 * vf);
        }
    }
}

/* Top-K as the shard stores it (fp16 logits, fp32 lse): the K mass can exceed 1 by
 * rounding; the value stays finite and near the unrounded record's. */
static void test_topk_fp16(void)
{
    enum { V = 1000, K = 8 };
    static float z[V], tl[V], d0[V], d1[V];
    static rec_buf rb, rh;
    fill(z, V, 2.0);
    fill(tl, V, 2.0);
    tl[3] = 14.0f; /* a confident teacher: tail mass about 1e-3 */
    make_rec(&rb, DL_TOPK, tl, V, K, 0);
    rh = rb;
    rh.r.ids = rh.ids;
    rh.r.logits = rh.lg;
    for (int i = 0; i < K; i++) rh.lg[i] = kq_f16_to_f32(kq_f32_to_f16(rb.lg[i]));
    for (int k = 1; k < 5; k++) {
        dl_config c = {(dl_kind)k, 0.5, 0.5, 1, 1, 0};
        double v0 = eval1(d0, &c, z, &rb.r, V), v1 = eval1(d1, &c, z, &rh.r, V);
        printf("  topk fp16 %-5s: %.6f vs fp32 %.6f\n", kname[k], v1, v0);
        CHECK(isfinite(v1) && fabs(v1 - v0) <= 0.05 * fabs(v0) && grad_diff(d0, d1, V) <= 0.05);
    }
}

/* The sampled estimator with many draws against full. Its variance is known exactly:
 * one draw x ~ q gives f(p_x, q_x) / q_x, so Var = (sum_x f_x^2 / q_x - L^2) / n; the
 * one-draw gradient is (h_x / q_x)(e_x - p) with h = p df/dp, so
 * E|g^ - g|^2 = (sum_x |h_x|^2 / q_x (1 - 2 p_x + |p|^2) - |g|^2) / n. Tolerances: value
 * within 5 sigma (two-sided normal: 6e-7), squared gradient error within 10 times its
 * expectation (Markov: <= 10%; seed fixed). Also the mean over 50 independent small-n
 * records, to see the estimator is unbiased, not only consistent. */
static void test_sample_converges(void)
{
    enum { V = 64, NS = 100000 };
    static float z[V], tl[V], d0[V], d1[V], acc[V];
    static int32_t ids[NS], cnt[NS];
    static float lg[NS];
    fill(z, V, 2.0);
    fill(tl, V, 2.0);
    double p[V], q[V], zd[V], td[V];
    for (int j = 0; j < V; j++) zd[j] = z[j], td[j] = tl[j];
    ref_softmax(p, zd, V, 1.0);
    ref_softmax(q, td, V, 1.0);
    double pp = 0;
    for (int j = 0; j < V; j++) pp += p[j] * p[j];
    dl_record full = {.mode = DL_FULL, .logp = tl};
    dl_config cfgs[] = {{DL_FKL, 0, 0, 1, 1, 0}, {DL_RKL, 0, 0, 1, 1, 0}, {DL_JSD, 0.5, 0, 1, 1, 0},
                        {DL_JSD, 0.1, 0, 1, 1, 0}, {DL_CAKLD, 0, 0.4, 1, 1, 0}};
    for (int k = 0; k < 5; k++) {
        const dl_config *c = &cfgs[k];
        double L = eval1(d0, c, z, &full, V), f2 = 0, h2 = 0, gg = 0;
        for (int j = 0; j < V; j++) {
            double f = ref_term(c->kind, c->beta, c->gamma, p[j], q[j]), e = 1e-6 * p[j];
            double h = p[j] * (ref_term(c->kind, c->beta, c->gamma, p[j] + e, q[j]) -
                               ref_term(c->kind, c->beta, c->gamma, p[j] - e, q[j])) / (2 * e);
            f2 += f * f / q[j];
            h2 += h * h / q[j] * (1 - 2 * p[j] + pp);
            gg += (double)d0[j] * d0[j];
        }
        double sigma = sqrt((f2 - L * L) / NS), eg2 = (h2 - gg) / NS;
        dl_record r = {.mode = DL_SAMPLE, .ids = ids, .counts = cnt, .logits = lg, .n = NS};
        r.lse = dl_sample_build(ids, cnt, lg, &r.k, tl, V, NS, rs);
        double Ls = eval1(d1, c, z, &r, V), ge2 = 0;
        for (int j = 0; j < V; j++) ge2 += ((double)d1[j] - d0[j]) * (d1[j] - d0[j]);
        /* unbiasedness: average of 50 estimates with n = 8 each */
        double mean = 0;
        memset(acc, 0, sizeof acc);
        for (int t = 0; t < 50; t++) {
            dl_record r8 = {.mode = DL_SAMPLE, .ids = ids, .counts = cnt, .logits = lg, .n = 8};
            r8.lse = dl_sample_build(ids, cnt, lg, &r8.k, tl, V, 8, rs);
            mean += eval1(d1, c, z, &r8, V) / 50;
        }
        double sigma8 = sigma * sqrt((double)NS / (8 * 50));
        printf("  sample %-5s beta %.1f: L %.6f, n=%d est %.6f (%.2f sigma, sigma/L %.2g); "
               "|dg|^2 %.3g (E %.3g); mean of 50 n=8: %.4f (%.2f sigma)\n",
               kname[c->kind], c->beta, L, NS, Ls, (Ls - L) / sigma, sigma / L, ge2, eg2,
               mean, (mean - L) / sigma8);
        CHECK(fabs(Ls - L) <= 5 * sigma && sigma <= 0.05 * L);
        CHECK(ge2 <= 10 * eg2);
        CHECK(fabs(mean - L) <= 5 * sigma8);
    }
}

int main(void)
{
    upq_rng_seed(rs, 12345);
    test_vs_reference();
    test_beta_limits();
    test_zero_and_bound();
    test_topk_full();
    test_topk_fp16();
    test_sample_converges();
    return tu_finish("test_distill_loss");
}
