/* loss.h - next-token cross-entropy on logits (softmax in double per row), its
 * gradient, and NLL sums for perplexity. Not the forward pass. */
#ifndef UPQ_LOSS_H
#define UPQ_LOSS_H

#include <stdint.h>

/* targets (N): class index per row, or < 0 to ignore that row.
 * Returns the mean CE over the counted rows (0 when none) and, if dlogits is not
 * NULL, writes dlogits (N,V) = (softmax - onehot) / count (zero rows where ignored).
 * dlogits may equal logits (in place). *count (if not NULL) gets the counted rows. */
float tfm_ce_loss(float *dlogits, const float *logits, const int32_t *targets, int64_t N,
                  int64_t V, int64_t *count);

/* Sum of -log softmax(logits[i])[targets[i]] over rows with targets[i] >= 0, in double. */
double tfm_ce_nll_sum(const float *logits, const int32_t *targets, int64_t N, int64_t V,
                      int64_t *count);

/* targets (B,T) for next-token prediction on tokens (B,T): targets[b,t] = tokens[b,t+1],
 * and -1 at t = T-1. If mask (B,T) is not NULL, targets[b,t] = -1 where mask[b,t+1] == 0
 * (e.g. train only on assistant tokens). */
void tfm_next_token_targets(int32_t *targets, const int32_t *tokens, const uint8_t *mask,
                            int64_t B, int64_t T);

#endif
