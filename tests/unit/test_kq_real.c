/* test_kq_real.c - packed kernels on real data: tinyllama-15m's weights and activations
 * built from golden.h5's residual stream (layer 3, RMS-normed with the model's norm
 * weights; SwiGLU activations for down_proj). Checks the int8 GEMV against exact fp32
 * within KQ_GEMV_Q8_BOUND and the BLIS-ukr GEMM within KQ_GEMM_ERR_BOUND, and prints
 * the activation-quantization error seen on real activations. Skips without ../shared. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "f16.h"
#include "h5arrays.h"
#include "hf_model.h"
#include "kq_gemm.h"
#include "kq_gemv.h"
#include "model.h"
#include "test_util.h"
#include "upq_err.h"

enum { T = 64 };

/* x (T, C) -> rmsnorm(x) * g */
static void rmsnorm(float *out, const float *x, const float *g, int64_t C, double eps)
{
    for (int t = 0; t < T; t++) {
        double ss = 0.0;
        for (int64_t c = 0; c < C; c++) ss += (double)x[t * C + c] * x[t * C + c];
        float r = (float)(1.0 / sqrt(ss / (double)C + eps));
        for (int64_t c = 0; c < C; c++) out[t * C + c] = x[t * C + c] * r * g[c];
    }
}

/* One layer's weight W (N, K) on activations X (T, K): returns relative RMS error of the
 * int8 GEMV (M = 1 and M = 8 paths); failures are counted by CHECK. */
static double check_layer(const char *name, const float *W, int64_t N, int64_t K, const float *X,
                          int bits, int group)
{
    kq_qmat q;
    uint8_t *mem = malloc(kq_qmat_bytes(bits, group, N, K));
    kq_qmat_init(&q, bits, group, N, K, mem);
    CHECK_OK(kq_quantize_ref(&q, W, K, KQ_Q_MINMAX, NULL));
    float *D = malloc(sizeof(float) * (size_t)(N * K)), *R = malloc(sizeof(float) * (size_t)(T * N));
    float *Y = malloc(sizeof(float) * (size_t)(T * N)), *G = malloc(sizeof(float) * (size_t)(T * N));
    kq_dequantize_ref(&q, D, K);
    kq_gemm_ref(T, X, K, &q, R, N, 0.0f, D + 0 * K); /* wrow: any K floats; D rewritten below */
    kq_dequantize_ref(&q, D, K);
    size_t wsv = kq_gemv_ws_bytes(8, &q), wsg = kq_gemm_ws_bytes(T, &q, 2);
    void *ws = malloc(wsv > wsg ? wsv : wsg);
    for (int t = 0; t < 8; t++) kq_gemv(1, X + t * K, K, &q, Y + t * N, N, 1, NULL, ws, wsv);
    kq_gemv(8, X + 8 * K, K, &q, Y + 8 * N, N, 2, NULL, ws, wsv);
    kq_gemm(T, X, K, &q, G, N, 0.0f, 2, NULL, ws, wsg);
    double se = 0.0, sy = 0.0;
    int bad = 0;
    uint8_t codes[128];
    for (int t = 0; t < T; t++)
        for (int64_t n = 0; n < N; n++) {
            double sabs = 0.0, qb = 0.0;
            for (int64_t k = 0; k < K; k++) sabs += fabs((double)X[t * K + k] * D[n * K + k]);
            double y = R[t * N + n];
            bad += !(fabs(G[t * N + n] - y) <= KQ_GEMM_ERR_BOUND(K, sabs));
            if (t >= 16) continue;
            for (int64_t b = 0; b < q.nb; b++) { /* KQ_GEMV_Q8_BOUND, from kq_gemv.h */
                uint16_t s16, m16;
                kq_block_unpack(&q, kq_qmat_block(&q, n, b), codes, &s16, &m16);
                const int64_t k0 = b * q.bg;
                double A = 0.0;
                for (int64_t k = k0; k < k0 + q.bg && k < K; k++) A = fmax(A, fabs(X[t * K + k]));
                for (int64_t k1 = k0; k1 < k0 + q.bg && k1 < K; k1 += 32) {
                    double a = 0.0, qs = 0.0;
                    for (int64_t k = k1; k < k1 + 32 && k < K; k++) {
                        a = fmax(a, fabs(X[t * K + k]));
                        qs += codes[k - k0];
                    }
                    qb += fabs(kq_f16_to_f32(s16)) * qs * (a / 127.0 + A / (127.0 * 127.0)) / 2.0;
                }
            }
            double e = fabs(Y[t * N + n] - y);
            bad += !(e <= qb + KQ_GEMV_FP_RTOL * sabs);
            se += e * e;
            sy += y * y;
        }
    CHECK_MSG(bad == 0, "%s int%d g%d: %d outputs outside their bound", name, bits, group, bad);
    free(mem); free(D); free(R); free(Y); free(G); free(ws);
    return sqrt(se / sy);
}

int main(void)
{
    const char *shared = tu_shared_dir();
    char dir[4096], golden[4200];
    snprintf(dir, sizeof dir, "%s/models/tinyllama-15m", shared);
    snprintf(golden, sizeof golden, "%s/golden.h5", dir);
    tfm_model m;
    CHECK_OK(hf_model_load(dir, &m));
    float *h = NULL;
    int ndim = 0;
    int64_t shape[8];
    CHECK_OK(h5a_read_f32(golden, "/hidden/layer_03", &h, &ndim, shape));
    if (tu_failures) return tu_finish("test_kq_real");
    const int64_t C = m.cfg.C, F = m.cfg.F;
    CHECK(ndim == 2 && shape[0] == T && shape[1] == C);
    const tfm_layer *L = &m.layers[4];
    float *xa = malloc(sizeof(float) * T * C), *xm = malloc(sizeof(float) * T * C);
    float *gt = malloc(sizeof(float) * T * F), *up = malloc(sizeof(float) * T * F), *wrow = malloc(sizeof(float) * C);
    rmsnorm(xa, h, L->attn_norm, C, m.cfg.norm_eps);
    rmsnorm(xm, h, L->mlp_norm, C, m.cfg.norm_eps);
    for (int t = 0; t < T; t++) /* SwiGLU activations in fp32: the input of down_proj */
        for (int64_t f = 0; f < F; f++) {
            double g = 0.0, u = 0.0;
            for (int64_t c = 0; c < C; c++) {
                g += (double)xm[t * C + c] * L->w_gate[f * C + c];
                u += (double)xm[t * C + c] * L->w_up[f * C + c];
            }
            gt[t * F + f] = (float)(g / (1.0 + exp(-g)) * u);
        }
    const int fm[3][2] = {{2, 64}, {2, 128}, {4, 128}};
    for (int i = 0; i < 3; i++) {
        double eq = check_layer("q_proj", L->wq, C, C, xa, fm[i][0], fm[i][1]);
        double eg = check_layer("gate_proj", L->w_gate, F, C, xm, fm[i][0], fm[i][1]);
        double ed = check_layer("down_proj", L->w_down, C, F, gt, fm[i][0], fm[i][1]);
        printf("int%d g%-3d int8-activation GEMV relative RMS error: q_proj %.2e gate_proj %.2e "
               "down_proj %.2e\n", fm[i][0], fm[i][1], eq, eg, ed);
        CHECK(eq < 0.02 && eg < 0.02 && ed < 0.05);
    }
    free(xa); free(xm); free(gt); free(up); free(wrow); free(h);
    tfm_model_free(&m);
    return tu_finish("test_kq_real");
}
