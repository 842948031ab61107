/* finite.c - io_check_finite: the loaders refuse NaN/Inf weights with a message that names
 * the file, the tensor and the first bad element (see finite.h). */
#include "finite.h"

#include <math.h>

#include "upq_err.h"

int io_check_finite(const float *x, int64_t n, const char *file, const char *tensor)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return UPQ_FAIL(UPQ_EINPUT, "%s: tensor %s: element %lld is %s (weights must be finite)", file, tensor,
                            (long long)i, isnan(x[i]) ? "nan" : x[i] > 0 ? "inf" : "-inf");
    return UPQ_OK;
}

int io_check_finite_f16(const uint16_t *h, int64_t n, const char *file, const char *tensor)
{
    for (int64_t i = 0; i < n; i++)
        if ((h[i] & 0x7c00u) == 0x7c00u) /* exponent all ones: Inf (mantissa 0) or NaN */
            return UPQ_FAIL(UPQ_EINPUT, "%s: tensor %s: element %lld is %s (weights must be finite)", file, tensor,
                            (long long)i, h[i] & 0x03ffu ? "nan" : h[i] & 0x8000u ? "-inf" : "inf");
    return UPQ_OK;
}
