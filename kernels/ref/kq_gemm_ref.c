/* kq_gemm_ref.c - the plain-C GEMM references on packed weights: the B micro-panel
 * dequantizer the table starts with (row by row through kq_dequant_row_ref) and the
 * whole-GEMM specification (fp64 triple loop) that kq_gemm is tested against. */
#include "kq_ref.h"

void kq_dequant_panel_ref(const kq_qmat *W, int64_t n0, int nr, int NR, int64_t k0, int64_t kc,
                          float *restrict panel, float *restrict scratch)
{
    for (int r = 0; r < NR; r++) {
        if (r < nr) kq_dequant_row_ref(W, n0 + r, k0, kc, scratch);
        for (int64_t k = 0; k < kc; k++) panel[k * NR + r] = r < nr ? scratch[k] : 0.0f;
    }
}

void kq_gemm_ref(int64_t M, const float *X, int64_t ldx, const kq_qmat *W, float *Y, int64_t ldy,
                 float beta, float *wrow)
{
    for (int64_t n = 0; n < W->N; n++) {
        kq_dequant_row_ref(W, n, 0, W->K, wrow);
        for (int64_t i = 0; i < M; i++) {
            double acc = 0.0;
            for (int64_t k = 0; k < W->K; k++) acc += (double)X[i * ldx + k] * wrow[k];
            float y0 = beta == 0.0f ? 0.0f : beta * Y[i * ldy + n];
            Y[i * ldy + n] = (float)acc + y0;
        }
    }
}
