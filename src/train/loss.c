/* loss.c - cross-entropy over logits rows (log-softmax in double), its gradient
 * and next-token targets. Not the model. */
#include "loss.h"

#include <math.h>

/* Log of the softmax normaliser of one row: max + log(sum exp(x - max)). */
static double row_logsumexp(const float *x, int64_t V)
{
    float mx = x[0];
    for (int64_t j = 1; j < V; j++)
        if (x[j] > mx) mx = x[j];
    double s = 0;
    for (int64_t j = 0; j < V; j++) s += exp((double)x[j] - mx);
    return mx + log(s);
}

double tfm_ce_nll_sum(const float *logits, const int32_t *targets, int64_t N, int64_t V,
                      int64_t *count)
{
    double sum = 0;
    int64_t cnt = 0;
#pragma omp parallel for schedule(static) reduction(+ : sum, cnt)
    for (int64_t i = 0; i < N; i++) {
        if (targets[i] < 0) continue;
        const float *x = logits + i * V;
        sum += row_logsumexp(x, V) - x[targets[i]];
        cnt++;
    }
    if (count) *count = cnt;
    return sum;
}

float tfm_ce_loss(float *dlogits, const float *logits, const int32_t *targets, int64_t N,
                  int64_t V, int64_t *count)
{
    int64_t cnt = 0;
    for (int64_t i = 0; i < N; i++) cnt += targets[i] >= 0;
    if (count) *count = cnt;
    double sum = 0, inv = cnt ? 1.0 / (double)cnt : 0.0;
#pragma omp parallel for schedule(static) reduction(+ : sum)
    for (int64_t i = 0; i < N; i++) {
        const float *x = logits + i * V;
        int32_t t = targets[i];
        if (t < 0) {
            if (dlogits)
                for (int64_t j = 0; j < V; j++) dlogits[i * V + j] = 0.0f;
            continue;
        }
        double lse = row_logsumexp(x, V);
        sum += lse - x[t];
        if (dlogits) {
            float *d = dlogits + i * V;
            for (int64_t j = 0; j < V; j++) d[j] = (float)(exp((double)x[j] - lse) * inv);
            d[t] -= (float)inv;
        }
    }
    return cnt ? (float)(sum * inv) : 0.0f;
}

void tfm_next_token_targets(int32_t *targets, const int32_t *tokens, const uint8_t *mask,
                            int64_t B, int64_t T)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            int64_t i = b * T + t;
            if (t == T - 1 || (mask && !mask[i + 1])) targets[i] = -1;
            else targets[i] = tokens[i + 1];
        }
}
