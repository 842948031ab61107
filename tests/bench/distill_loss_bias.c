/* distill_loss_bias.c - how far top-K, sampled and 16-bit full teacher records put each
 * distillation loss from the full fp32 record, on real teacher logits (not built by CMake,
 * not a test; numbers in docs/distill-loss.md). Teacher: the golden logits of
 * tinyllama-15m-instruct; stand-in student: those of tinyllama-15m (same 64 input ids,
 * V = 4096); 63 positions. Prints per loss and record kind: bytes per token, mean absolute
 * error of the per-position loss against full fp32, the mean signed error, and the cosine
 * of the whole gradient against full fp32's. Top-K and sampled logits rounded to fp16.
 *   for m in tinyllama-15m tinyllama-15m-instruct; do
 *     h5dump -d /logits -b LE -o /tmp/$m.bin ../shared/models/$m/golden.h5; done
 *   gcc -std=c11 -O2 -fopenmp -Isrc -Ikernels tests/bench/distill_loss_bias.c \
 *     build/src/libupq_core.a build/kernels/libupq_kernels.a -lm -o /tmp/dl_bias
 *   /tmp/dl_bias /tmp/tinyllama-15m.bin /tmp/tinyllama-15m-instruct.bin */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "distill_loss.h"
#include "f16.h"
#include "rng.h"

enum { P = 64, V = 4096, N = P - 1, NM = 12 };
static float S[P * V], T[P * V], tq[N * V], d0[N * V], d1[N * V], l0[N], l1[N];
static int32_t ids[N][V], cnt[N][V];
static float lg[N][V];

static void load(const char *f, float *x)
{
    FILE *fp = fopen(f, "rb");
    if (!fp || fread(x, sizeof *x, P * V, fp) != P * V) {
        fprintf(stderr, "%s: cannot read %d floats\n", f, P * V);
        exit(2);
    }
    fclose(fp);
}

static const char *mnames[NM] = {"full-bf16", "full-fp16", "topk8", "topk32", "topk128",
                                 "topk32-no-tail", "sample8", "sample32", "sample128",
                                 "sample8-bucket", "sample32-bucket", "sample128-bucket"};

/* Record of position i for record kind m; returns its shard bytes. */
static double make(dl_record *r, int m, int i)
{
    const float *t = T + (size_t)i * V;
    if (m < 2) { /* log-probabilities rounded to bf16 / fp16 */
        double mx = -INFINITY, s = 0;
        for (int j = 0; j < V; j++) mx = fmax(mx, t[j]);
        for (int j = 0; j < V; j++) s += exp(t[j] - mx);
        for (int j = 0; j < V; j++) {
            float lp = (float)(t[j] - mx - log(s));
            tq[(size_t)i * V + j] = m ? kq_f16_to_f32(kq_f32_to_f16(lp)) : kq_bf16_to_f32(kq_f32_to_bf16(lp));
        }
        *r = (dl_record){.mode = DL_FULL, .logp = tq + (size_t)i * V};
        return 2.0 * V;
    }
    if (m < 6) {
        int K = m == 2 ? 8 : m == 4 ? 128 : 32;
        *r = (dl_record){.mode = DL_TOPK, .ids = ids[i], .logits = lg[i], .k = K};
        r->lse = dl_topk_build(ids[i], lg[i], &r->log_tail, t, V, K);
        for (int k = 0; k < K; k++) lg[i][k] = kq_f16_to_f32(kq_f32_to_f16(lg[i][k]));
        if (m == 5) r->log_tail = 0;
        return 6.0 * K + (m == 5 ? 8 : 12);
    }
    int n = (m - 6) % 3 == 0 ? 8 : (m - 6) % 3 == 1 ? 32 : 128;
    uint64_t rs[4];
    upq_rng_seed(rs, 1000 + (uint64_t)i);
    *r = (dl_record){.mode = DL_SAMPLE, .ids = ids[i], .counts = cnt[i], .logits = lg[i], .n = n};
    r->lse = dl_sample_build(ids[i], cnt[i], lg[i], &r->k, t, V, n, rs);
    for (int k = 0; k < r->k; k++) lg[i][k] = kq_f16_to_f32(kq_f32_to_f16(lg[i][k]));
    return 8.0 * r->k + 4; /* id int32, count uint16, logit fp16; lse fp32 */
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s STUDENT_LOGITS.bin TEACHER_LOGITS.bin (64 x 4096 f32)\n", argv[0]);
        return 1;
    }
    load(argv[1], S);
    load(argv[2], T);
    int32_t tg[N] = {0};
    dl_record full[N], rec[N];
    for (int i = 0; i < N; i++) full[i] = (dl_record){.mode = DL_FULL, .logp = T + (size_t)i * V};
    double gs = 0;
    int64_t gc = 0;
    dl_top1_accum(&gs, &gc, full, tg, N, V);
    printf("CAKLD gamma (teacher mean top-1 probability, %lld positions) = %.4f\n", (long long)gc, gs / gc);
    dl_config cfgs[4] = {{DL_FKL, 0, 0, 1, 1, 0}, {DL_RKL, 0, 0, 1, 1, 0},
                         {DL_JSD, 0.5, 0, 1, 1, 0}, {DL_CAKLD, 0, gs / gc, 1, 1, 0}};
    for (int c = 0; c < 4; c++) {
        double L0 = dl_loss_forward_backward(d0, l0, &cfgs[c], S, full, tg, N, V, 1.0, NULL) / N;
        printf("%s: full fp32 mean loss %.5f\n", c == 0 ? "fkl" : c == 1 ? "rkl" : c == 2 ? "jsd0.5" : "cakld", L0);
        for (int m = 0; m < NM; m++) {
            dl_config cc = cfgs[c];
            cc.sample_bucket = m >= 9;
            double bytes = 0, mae = 0, bias = 0, dot = 0, n0 = 0, n1 = 0;
            for (int i = 0; i < N; i++) bytes += make(&rec[i], m, i) / N;
            dl_loss_forward_backward(d1, l1, &cc, S, rec, tg, N, V, 1.0, NULL);
            for (int i = 0; i < N; i++) {
                mae += fabs(l1[i] - l0[i]) / N;
                bias += (double)(l1[i] - l0[i]) / N;
            }
            for (size_t j = 0; j < (size_t)N * V; j++) {
                dot += (double)d0[j] * d1[j];
                n0 += (double)d0[j] * d0[j];
                n1 += (double)d1[j] * d1[j];
            }
            printf("  %-16s bytes/token %5.0f  MAE %.4f (%5.1f%%)  mean err %+.4f  grad cos %.4f\n",
                   mnames[m], bytes, mae, 100 * mae / L0, bias, dot / sqrt(n0 * n1));
        }
    }
    return 0;
}
