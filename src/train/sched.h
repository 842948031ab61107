/* sched.h - training-loop math shared by drivers (prefix sched_): the warm-up + cosine
 * learning-rate schedule and the global gradient-norm clip over several arrays. Pure
 * math; no I/O. */
#ifndef UPQ_SCHED_H
#define UPQ_SCHED_H

#include <stdint.h>

/* Learning rate at step (0-based) of `steps`: linear warm-up over `warmup` steps from
 * lr/warmup to lr, then cosine from lr down to lr*min_frac at the last step. */
double sched_lr(double lr, double min_frac, int64_t warmup, int64_t steps, int64_t step);

/* Global L2 norm (double, fixed order: array 0 first) of k arrays g[i] (n[i]); if max > 0
 * and the norm exceeds it, scales every array by max / (norm + 1e-6) (torch's
 * clip_grad_norm_). Returns the norm before clipping. */
double sched_clip_global(float *const *g, const int64_t *n, int k, double max);

#endif
