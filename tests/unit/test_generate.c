/* test_generate.c - the sampling pieces of generate.h against an independent plain-C
 * transcription of HF's warpers (TemperatureLogitsWarper, TopKLogitsWarper,
 * TopPLogitsWarper on ascending sort, softmax): the distributions must agree to 1e-6,
 * and 200,000 draws must match them (each frequency within 5 standard errors);
 * greedy is the first argmax; a seed gives a reproducible stream. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "generate.h"
#include "test_util.h"

#define V 12

/* HF order on a copy: scores/T; remove scores < k-th largest; sort ascending, remove
 * where cumsum(softmax) <= 1 - p except the last; softmax of what is left. */
static void reference(double *p, const float *logits, float T, int64_t k, float top_p)
{
    double s[V], srt[V];
    for (int i = 0; i < V; i++) s[i] = logits[i] / T;
    if (k > 0 && k < V) {
        memcpy(srt, s, sizeof s);
        for (int i = 0; i < V; i++) /* selection: k-th largest */
            for (int j = i + 1; j < V; j++)
                if (srt[j] > srt[i]) { double t = srt[i]; srt[i] = srt[j]; srt[j] = t; }
        for (int i = 0; i < V; i++) if (s[i] < srt[k - 1]) s[i] = -INFINITY;
    }
    double mx = -INFINITY, z = 0;
    for (int i = 0; i < V; i++) mx = fmax(mx, s[i]);
    for (int i = 0; i < V; i++) z += exp(s[i] - mx);
    int order[V];
    for (int i = 0; i < V; i++) order[i] = i;
    for (int i = 0; i < V; i++) /* ascending by score */
        for (int j = i + 1; j < V; j++)
            if (s[order[j]] < s[order[i]]) { int t = order[i]; order[i] = order[j]; order[j] = t; }
    double cum = 0;
    int removed[V] = {0};
    for (int r = 0; r < V - 1; r++) {
        cum += exp(s[order[r]] - mx) / z;
        if (cum <= 1.0 - top_p) removed[order[r]] = 1;
    }
    z = 0;
    for (int i = 0; i < V; i++) z += removed[i] ? 0 : exp(s[i] - mx);
    for (int i = 0; i < V; i++) p[i] = removed[i] ? 0 : exp(s[i] - mx) / z;
}

static void check_case(const float *logits, float T, int64_t k, float top_p)
{
    gen_opts o = gen_opts_default();
    o.temperature = T;
    o.top_k = k;
    o.top_p = top_p;
    float probs[V];
    gen_pair sc[V];
    double ref[V];
    gen_probs(probs, sc, logits, V, &o);
    reference(ref, logits, T, k, top_p);
    double e = 0;
    e = tu_max_abs_err_d(probs, ref, V);
    EXPECT_CLOSE(e, 1e-6, "T %g k %lld p %g: probs differ by %.3g", T, (long long)k, top_p, e);
    gen_rng r;
    gen_rng_seed(&r, 1234);
    int64_t cnt[V] = {0}, n = 200000;
    for (int64_t d = 0; d < n; d++) cnt[gen_sample(logits, V, &o, &r, probs, sc)]++;
    double worst = 0;
    for (int i = 0; i < V; i++) {
        double se = sqrt(ref[i] * (1 - ref[i]) / n) + 1e-12, z = fabs(cnt[i] / (double)n - ref[i]) / se;
        if (ref[i] == 0) CHECK_MSG(cnt[i] == 0, "token %d outside the kept set was drawn", i);
        else worst = tu_max(worst, z);
    }
    printf("  T %.2f top-k %2lld top-p %.2f: max |p - ref| %.2g, worst frequency %.2f s.e.\n", T,
           (long long)k, top_p, e, worst);
    EXPECT_CLOSE(worst, 5, "sampled frequencies off by %.2f standard errors", worst);
}

int main(void)
{
    const float logits[V] = {1.0f, 3.0f, -2.0f, 2.5f, 3.0f, 0.0f, -1.0f, 2.0f, 0.5f, 1.5f, -3.0f, 2.9f};
    check_case(logits, 1.0f, 0, 1.0f);
    check_case(logits, 0.7f, 4, 1.0f);
    check_case(logits, 1.3f, 0, 0.8f);
    check_case(logits, 1.0f, 5, 0.6f);
    check_case(logits, 2.0f, 1, 1.0f);  /* two tokens tie at the top: both kept */
    check_case(logits, 1.0f, 0, 0.05f); /* only the most likely token(s) survive */
    gen_opts g = gen_opts_default();
    gen_rng r;
    gen_rng_seed(&r, 1);
    CHECK(gen_sample(logits, V, &g, &r, NULL, NULL) == 1); /* first of the tied maxima */
    gen_rng a, b;
    gen_rng_seed(&a, 42);
    gen_rng_seed(&b, 42);
    int same = 1;
    for (int i = 0; i < 100; i++) same &= gen_rng_uniform(&a) == gen_rng_uniform(&b);
    CHECK(same);
    return tu_finish("test_generate");
}
