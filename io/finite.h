/* finite.h - the model loaders' check that weights are finite: a NaN or Inf in a model
 * file is an input error (UPQ_EINPUT, exit 2) naming the file, the tensor and the first
 * bad element. Not a repair: nothing is ever replaced. */
#ifndef UPQ_IO_FINITE_H
#define UPQ_IO_FINITE_H

#include <stdint.h>

/* UPQ_OK when x (n) is all finite; otherwise fails with
 * "FILE: tensor NAME: element I is nan|inf|-inf (weights must be finite)". */
int io_check_finite(const float *x, int64_t n, const char *file, const char *tensor);
/* The same for IEEE fp16 bit patterns (quantized scales and offsets). */
int io_check_finite_f16(const uint16_t *h, int64_t n, const char *file, const char *tensor);

#endif
