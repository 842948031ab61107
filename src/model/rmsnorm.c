/* rmsnorm.c - RMSNorm forward/backward (LlamaRMSNorm: fp32 variance, then
 * weight * normalized). Not LayerNorm (no mean, no bias). */
#include <math.h>

#include "layers.h"

void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int64_t N,
                     int64_t C, float eps)
{
#pragma omp parallel for schedule(static) if (N * C >= TFM_OMP_MIN)
    for (int64_t i = 0; i < N; i++) {
        const float *x = inp + i * C;
        float *y = out + i * C;
        double ss = 0;
        for (int64_t j = 0; j < C; j++) ss += (double)x[j] * x[j];
        float r = 1.0f / sqrtf((float)(ss / (double)C) + eps);
        for (int64_t j = 0; j < C; j++) y[j] = w[j] * (x[j] * r);
        rstd[i] = r;
    }
}

/* y_j = w_j x_j r with r = (mean(x^2)+eps)^-1/2:
 * dx_j = r w_j dy_j - x_j r^3 / C * sum_k dy_k w_k x_k;  dw_j = sum_rows dy_j x_j r. */
void rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp,
                      const float *w, const float *rstd, int64_t N, int64_t C)
{
#pragma omp parallel for schedule(static) if (N * C >= TFM_OMP_MIN)
    for (int64_t i = 0; i < N; i++) {
        const float *x = inp + i * C, *dy = dout + i * C;
        float *dx = dinp + i * C;
        double r = rstd[i], dot = 0;
        for (int64_t j = 0; j < C; j++) dot += (double)dy[j] * w[j] * x[j];
        double c = dot * r * r * r / (double)C;
        for (int64_t j = 0; j < C; j++) dx[j] += (float)(r * w[j] * dy[j] - x[j] * c);
    }
    if (!dw) return; /* a frozen norm: no weight gradient wanted */
    /* dw: columns in blocks of 64 (one block per iteration), rows streamed in order. */
    int64_t nblk = (C + 63) / 64;
#pragma omp parallel for schedule(static) if (N * C >= TFM_OMP_MIN)
    for (int64_t b = 0; b < nblk; b++) {
        int64_t j0 = b * 64, nj = C - j0 < 64 ? C - j0 : 64;
        double acc[64] = {0};
        for (int64_t i = 0; i < N; i++) {
            const float *dy = dout + i * C + j0, *x = inp + i * C + j0;
            double r = rstd[i];
            for (int64_t j = 0; j < nj; j++) acc[j] += (double)dy[j] * x[j] * r;
        }
        for (int64_t j = 0; j < nj; j++) dw[j0 + j] += (float)acc[j];
    }
}
