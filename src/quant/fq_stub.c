/* fq_stub.c - the stand-in fake-quantizer of fq_stub.h (replaced by src/quant/fakequant.c of
 * branch fq at merge). Plain loops; no threads. */
#include "fq_stub.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "upq_err.h"

int fqs_init(fqs_quantizer *q, int bits, int64_t gs, int64_t out, int64_t in, const float *w)
{
    memset(q, 0, sizeof *q);
    UPQ_ASSERT(bits >= 2 && bits <= 8 && gs >= 1 && in % gs == 0);
    q->bits = bits, q->maxq = (1 << bits) - 1, q->out = out, q->in = in, q->gs = gs, q->ng = in / gs;
    q->s = upq_malloc((size_t)(2 * out * q->ng) * sizeof(float), "fake-quant stub parameters");
    if (!q->s) return UPQ_EIO;
    q->z = q->s + out * q->ng;
    for (int64_t r = 0; r < out; r++)
        for (int64_t g = 0; g < q->ng; g++) {
            const float *x = w + r * in + g * gs;
            float mn = x[0], mx = x[0];
            for (int64_t j = 1; j < gs; j++) mn = x[j] < mn ? x[j] : mn, mx = x[j] > mx ? x[j] : mx;
            mn = mn > 0 ? 0 : mn, mx = mx < 0 ? 0 : mx;
            float s = (mx - mn) / (float)q->maxq;
            s = s > 1e-8f ? s : 1e-8f;
            q->s[r * q->ng + g] = s;
            q->z[r * q->ng + g] = rintf(-mn / s);
        }
    return UPQ_OK;
}

void fqs_free(fqs_quantizer *q)
{
    free(q->s);
    memset(q, 0, sizeof *q);
}

/* Code of w in its group and whether it was clamped. */
static float code_of(float w, float s, float z, float maxq, int *clamped)
{
    float c = rintf(w / s) + z;
    *clamped = c < 0.0f || c > maxq;
    return c < 0.0f ? 0.0f : c > maxq ? maxq : c;
}

void fqs_forward(const fqs_quantizer *q, const float *w, float *wq)
{
    for (int64_t i = 0; i < q->out * q->in; i++) {
        int64_t b = (i / q->in) * q->ng + (i % q->in) / q->gs;
        int cl;
        wq[i] = q->s[b] * (code_of(w[i], q->s[b], q->z[b], (float)q->maxq, &cl) - q->z[b]);
    }
}

void fqs_backward(const fqs_quantizer *q, const float *w, const float *dwq, float *dw, fqs_grads *g)
{
    for (int64_t i = 0; i < q->out * q->in; i++) {
        int64_t b = (i / q->in) * q->ng + (i % q->in) / q->gs;
        int cl;
        float c = code_of(w[i], q->s[b], q->z[b], (float)q->maxq, &cl);
        if (!cl) dw[i] += dwq[i];
        if (g) g->d[b] += dwq[i] * (c - q->z[b]);
    }
}
