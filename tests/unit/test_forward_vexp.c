/* test_forward_vexp.c - upq_expf (src/base/vexp.h, used by softmax, SiLU and the ppl NLL)
 * against libm's exp in double: max relative error <= 3 ulp (measured 1.34 ulp) on
 * [-87, 88] on a dense grid, and the documented clamping: below -87.3 -> 1.2e-38,
 * above 88 -> e^88, -inf -> 1.2e-38 (never NaN or inf, so softmax rows stay finite). */
#include <math.h>
#include <stdio.h>

#include "test_util.h"
#include "vexp.h"

int main(void)
{
    double worst = 0;
    float wx = 0;
    for (double xd = -87.0; xd < 88.0; xd += 1.7e-4) {
        float x = (float)xd;
        double e = fabs(upq_expf(x) - exp((double)x)) / exp((double)x);
        if (e > worst || isnan(e)) {
            worst = e;
            wx = x;
        }
    }
    printf("  upq_expf: max rel err %.3g (%.2f ulp) at %g\n", worst, worst / 5.96e-8, wx);
    CHECK(worst <= 3 * 5.96e-8);
    CHECK(upq_expf(0.0f) == 1.0f);
    CHECK(fabsf(upq_expf(-1000.0f) - 1.2192e-38f) < 1e-41f);
    CHECK(fabsf(upq_expf(-INFINITY) - 1.2192e-38f) < 1e-41f);
    CHECK(isfinite(upq_expf(1000.0f)) && upq_expf(1000.0f) == upq_expf(88.0f));
    CHECK(isfinite(upq_expf(INFINITY)) && isfinite(upq_expf(NAN)));
    /* Softmax-style use: exp(x - max) summed over a row equals the libm sum. */
    double s1 = 0, s2 = 0;
    for (int i = 0; i < 512; i++) {
        float v = -0.05f * (float)i;
        s1 += upq_expf(v);
        s2 += exp((double)v);
    }
    CHECK(fabs(s1 - s2) / s2 < 1e-7);
    return tu_finish("test_forward_vexp");
}
