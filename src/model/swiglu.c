/* swiglu.c - the LLaMA MLP activation silu(gate) * up and its gradient.
 * Not the projections around it (forward.c). */
#include "layers.h"
#include "vexp.h"

void swiglu_forward(float *out, const float *gate, const float *up, int64_t n)
{
#pragma omp parallel for schedule(static) if (n >= TFM_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + upq_expf(-g)) * up[i];
    }
}

void swiglu_backward(float *dgate, float *dup, const float *dout, const float *gate,
                     const float *up, int64_t n)
{
#pragma omp parallel for schedule(static) if (n >= TFM_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i], d = dout[i];
        float s = 1.0f / (1.0f + upq_expf(-g));
        dup[i] = d * g * s;
        dgate[i] = d * up[i] * s * (1.0f + g * (1.0f - s));
    }
}
