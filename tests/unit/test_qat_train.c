/* test_qat_train.c - the pieces of `upq qat` below the driver:
 *  - sched_lr: warm-up values (s+1)/W lr, the peak at W, the cosine midpoint (lr+lo)/2 and
 *    the floor lo = min_frac*lr at the last step, monotone decay after the warm-up;
 *  - sched_clip_global over 3 arrays against a long-double norm of their concatenation
 *    and against adamw_clip_grad_norm on the concatenated copy; no change below max; NaN
 *    gradients give a NaN norm;
 *  - h5ckpt: write/read round trip bit for bit (an empty array skipped), meta and key;
 *    a size mismatch and a non-checkpoint file fail with UPQ_EINPUT;
 *  - the stage split's cost model (qat_cost.c) on tinyllama-15m's shape: the linears' FLOPs
 *    against a hand count, the attention against a per-query count of the causal row
 *    blocks (ragged T too), the head's 4 T C V, head + loss within the 0.84-1.04 layers
 *    measured (docs/qat.md), and the splits it gives (S = 2, 4, 8 of 8 and 24 layers). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "adamw.h"
#include "h5ckpt.h"
#include "partition.h"
#include "qat_pipe.h"
#include "sched.h"
#include "test_util.h"
#include "upq_err.h"

static void test_lr(void)
{
    const double lr = 2e-3, mf = 0.1, lo = lr * mf;
    const int64_t W = 4, S = 25; /* cosine over steps 4..24: midpoint at 14 */
    for (int64_t s = 0; s < W; s++)
        EXPECT_CLOSE(fabs(sched_lr(lr, mf, W, S, s) - lr * (double)(s + 1) / (double)W), 1e-15, "warm-up step %lld", (long long)s);
    EXPECT_CLOSE(fabs(sched_lr(lr, mf, W, S, W) - lr), 1e-15, "peak");
    EXPECT_CLOSE(fabs(sched_lr(lr, mf, W, S, 14) - 0.5 * (lr + lo)), 1e-15, "midpoint");
    EXPECT_CLOSE(fabs(sched_lr(lr, mf, W, S, S - 1) - lo), 1e-15, "floor");
    for (int64_t s = W + 1; s < S; s++) CHECK(sched_lr(lr, mf, W, S, s) < sched_lr(lr, mf, W, S, s - 1));
    EXPECT_CLOSE(fabs(sched_lr(lr, mf, 0, 1, 0) - lo), 1e-15, "one step, no warm-up: the floor");
}

static void test_clip(void)
{
    int64_t n[3] = {7, 0, 1000};
    float *a = malloc(7 * sizeof(float)), *b = malloc(sizeof(float)), *c = malloc(1000 * sizeof(float));
    float *cat = malloc(1007 * sizeof(float));
    srand(3);
    for (int i = 0; i < 7; i++) a[i] = (float)(rand() % 2001 - 1000) * 1e-2f;
    for (int i = 0; i < 1000; i++) c[i] = (float)(rand() % 2001 - 1000) * 1e-3f;
    memcpy(cat, a, 7 * sizeof(float)), memcpy(cat + 7, c, 1000 * sizeof(float));
    long double ss = 0;
    for (int i = 0; i < 1007; i++) ss += (long double)cat[i] * cat[i];
    double ref = (double)sqrtl(ss);
    float *g[3] = {a, b, c};
    double nb = sched_clip_global(g, n, 3, 1e9); /* no clipping */
    EXPECT_CLOSE(fabs(nb - ref) / ref, 1e-12, "norm %.17g vs long double %.17g", nb, ref);
    CHECK(a[0] == cat[0] && c[999] == cat[1006]);
    double na = sched_clip_global(g, n, 3, 1.0);
    double nr = adamw_clip_grad_norm(cat, 1007, 1.0f);
    EXPECT_CLOSE(fabs(na - nr) / nr, 1e-12, "norm %.17g vs adamw_clip_grad_norm %.17g", na, nr);
    double md = 0;
    for (int i = 0; i < 7; i++) md = fmax(md, fabs(a[i] - cat[i]));
    for (int i = 0; i < 1000; i++) md = fmax(md, fabs(c[i] - cat[7 + i]));
    EXPECT_CLOSE(md, 1e-7, "clipped values differ from adamw_clip_grad_norm's by %.3g", md);
    float *one[1] = {cat};
    int64_t n1 = 1007;
    EXPECT_CLOSE(fabs(sched_clip_global(one, &n1, 1, 0) - 1.0), 1e-6, "after clipping to 1 the norm is 1");
    a[3] = NAN;
    CHECK(isnan(sched_clip_global(g, n, 3, 1.0)));
    free(a), free(b), free(c), free(cat);
}

static void test_ckpt(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/ck.h5", dir);
    float x[5] = {1.5f, -0.0f, 3e-39f, 1e30f, -2.25f}, y[3] = {7, 8, 9}, e[1] = {0};
    h5ckpt_arr a[3] = {{"l0.q_proj.latent", x, 5}, {"l0.q_proj.qparams", e, 0}, {"loss", y, 3}};
    h5ckpt_meta m = {.step = 12, .cursor = 96, .seed = 5};
    snprintf(m.key, sizeof m.key, "bits=2 group=64 quantizer=lsq");
    CHECK_OK(h5ckpt_write(path, &m, a, 3));
    float x2[5] = {0}, y2[3] = {0};
    h5ckpt_arr b[3] = {{"l0.q_proj.latent", x2, 5}, {"l0.q_proj.qparams", e, 0}, {"loss", y2, 3}};
    h5ckpt_meta r;
    CHECK_OK(h5ckpt_read(path, &r, b, 3));
    CHECK(!memcmp(x, x2, sizeof x) && !memcmp(y, y2, sizeof y));
    CHECK(r.step == 12 && r.cursor == 96 && r.seed == 5 && !strcmp(r.key, m.key));
    h5ckpt_arr bad[1] = {{"loss", y2, 4}};
    upq_err_clear();
    CHECK(h5ckpt_read(path, &r, bad, 1) == UPQ_EINPUT);
    char junk[512];
    snprintf(junk, sizeof junk, "%s/junk.h5", dir);
    FILE *f = fopen(junk, "w");
    if (f) fputs("not hdf5", f), fclose(f);
    upq_err_clear();
    CHECK(h5ckpt_read_meta(junk, &r) == UPQ_EINPUT);
    unlink(path), unlink(junk);
}

/* (query, key) pairs the attention multiplies for a row of T tokens, per head: query t
 * takes the keys up to the end of its block of 64 (attention.c). */
static double pairs_by_query(int64_t T)
{
    double n = 0;
    for (int64_t t = 0; t < T; t++) n += (double)((t / 64 + 1) * 64 < T ? (t / 64 + 1) * 64 : T);
    return n;
}

static void check_split(const tfm_config *c, int64_t T, int S, int64_t per_stage)
{
    double cost[64];
    qat_layer_costs(c, T, 4 * S, 0, 64, cost);
    for (int st = 0; st < S; st++) {
        part_range pr;
        CHECK_OK(part_blocks(cost, c->L, st, S, 1, &pr));
        CHECK(pr.first == st * per_stage && pr.count == per_stage);
    }
}

static void test_cost_model(void)
{
    tfm_config c = {.V = 4096, .C = 384, .F = 1024, .L = 8, .H = 6, .KV = 2, .D = 64, .max_T = 512};
    double lin = 2 * 384.0 * 384 + 2 * 128.0 * 384 + 3 * 1024.0 * 384; /* q, o; k, v; gate, up, down */
    qat_costs a, b, r;
    qat_cost_model(&c, 512, 16, 0, 64, &a);
    qat_cost_model(&c, 100, 16, 0, 64, &b);
    CHECK(a.linears == 6.0 * 512 * lin);
    /* the attention is proportional to the pairs: the same per pair at T = 512 and 100 */
    double pa = a.attention / pairs_by_query(512), pb = b.attention / pairs_by_query(100);
    CHECK(fabs(pa / pb - 1) < 1e-12 && pa >= 14.0 * 64 * 6);
    CHECK(a.head >= 4.0 * 512 * 384 * 4096 && a.head < 1.02 * 4.0 * 512 * 384 * 4096);
    CHECK(a.layer > a.linears + a.attention && a.embedding > 0 && a.loss > 0);
    double hl = (a.head + a.loss) / a.layer;
    CHECK(hl > 0.84 && hl < 1.04);
    /* full records cost more; more rows a step share the per-step work */
    qat_cost_model(&c, 512, 16, 1, 64, &r);
    CHECK(r.loss > a.loss && r.layer == a.layer);
    qat_cost_model(&c, 512, 64, 0, 64, &r);
    CHECK(r.layer < a.layer && r.head == a.head);
    /* 8 layers: 4 + 4, and 2 a stage (the last one's 2 + head + loss beats 3 on another);
     * 24 layers: 6 and 3 a stage */
    check_split(&c, 512, 2, 4);
    check_split(&c, 512, 4, 2);
    check_split(&c, 512, 8, 1);
    c.L = 24;
    check_split(&c, 512, 4, 6);
    check_split(&c, 512, 8, 3);
}

int main(void)
{
    char tmp[] = "/tmp/test_qat_train_XXXXXX";
    CHECK(mkdtemp(tmp) != NULL);
    test_lr();
    test_clip();
    test_ckpt(tmp);
    test_cost_model();
    rmdir(tmp);
    return tu_finish("test_qat_train");
}
