/* sched.c - learning-rate schedule and global gradient clipping (sched.h). */
#include "sched.h"

#include <math.h>

double sched_lr(double lr, double min_frac, int64_t warmup, int64_t steps, int64_t step)
{
    if (warmup > 0 && step < warmup) return lr * (double)(step + 1) / (double)warmup;
    int64_t span = steps - 1 - warmup;
    double x = span > 0 ? (double)(step - warmup) / (double)span : 1.0;
    if (x > 1) x = 1;
    if (x < 0) x = 0;
    double lo = lr * min_frac;
    return lo + 0.5 * (lr - lo) * (1.0 + cos(3.141592653589793 * x));
}

double sched_clip_global(float *const *g, const int64_t *n, int k, double max)
{
    double ss = 0;
    for (int i = 0; i < k; i++)
        for (int64_t j = 0; j < n[i]; j++) ss += (double)g[i][j] * (double)g[i][j];
    double norm = sqrt(ss);
    if (max > 0 && norm > max) {
        float f = (float)(max / (norm + 1e-6));
        for (int i = 0; i < k; i++)
            for (int64_t j = 0; j < n[i]; j++) g[i][j] *= f;
    }
    return norm;
}
