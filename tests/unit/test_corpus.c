/* test_corpus.c - the demo corpus and its PRNG: xoshiro256** against an independent
 * transcription (Python, splitmix64 seeding), determinism (same seed same bytes,
 * other seed or the held-out salt other bytes, a shorter stream is a prefix of a
 * longer one), the character set, and that the facts the grammar states are true
 * ("X plus Y is Z", "A + B = C", counting, story frames), parsed independently here. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "corpus.h"
#include "test_util.h"
#include "upq_err.h"

static void test_rng(void)
{
    /* first outputs for seed 1, from a Python transcription of splitmix64 + xoshiro256** */
    static const uint64_t want[3] = {0xb3f2af6d0fc710c5ULL, 0x853b559647364ceaULL, 0x92f89756082a4514ULL};
    corpus_rng r;
    corpus_rng_seed(&r, 1);
    for (int i = 0; i < 3; i++) CHECK(corpus_rng_next(&r) == want[i]);

    corpus_rng_seed(&r, 42);
    double s = 0, s2 = 0, umin = 1, umax = 0;
    int64_t hist[7] = {0};
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double z = corpus_rng_normal(&r), u = corpus_rng_uniform(&r);
        s += z;
        s2 += z * z;
        umin = u < umin ? u : umin;
        umax = u > umax ? u : umax;
        uint64_t k = corpus_rng_below(&r, 7);
        CHECK(k < 7);
        hist[k < 7 ? k : 0]++;
    }
    /* 200k samples: the mean's standard error is 0.0022, the variance's 0.0032 */
    CHECK_MSG(fabs(s / n) < 0.015, "normal mean %g", s / n);
    CHECK_MSG(fabs(s2 / n - 1.0) < 0.02, "normal variance %g", s2 / n);
    CHECK(umin >= 0.0 && umax < 1.0 && umin < 1e-3 && umax > 1 - 1e-3);
    for (int k = 0; k < 7; k++) CHECK_MSG(labs((long)(hist[k] - n / 7)) < 700, "bucket %d: %lld", k, (long long)hist[k]);
}

static char *gen(uint64_t seed, int64_t n)
{
    char *b = malloc((size_t)n + 1);
    if (!b) abort();
    corpus_generate(seed, b, n);
    b[n] = '\0';
    return b;
}

static void test_determinism(void)
{
    const int64_t n = 300000;
    char *a = gen(7, n), *b = gen(7, n), *c = gen(8, n), *h = gen(7 ^ CORPUS_HELDOUT_SALT, n);
    char *shorter = gen(7, 12345);
    CHECK(memcmp(a, b, (size_t)n) == 0);
    CHECK(memcmp(a, c, (size_t)n) != 0);
    CHECK(memcmp(a, h, (size_t)n) != 0);
    CHECK(memcmp(a, shorter, 12345) == 0);
    /* the held-out stream does not repeat the training stream's first story */
    const char *end = strstr(a, "The end.");
    CHECK(end != NULL);
    if (end) {
        size_t story = (size_t)(end - a);
        char *first = malloc(story + 1);
        memcpy(first, a, story);
        first[story] = '\0';
        CHECK(strstr(h, first) == NULL);
        free(first);
    }
    free(a), free(b), free(c), free(h), free(shorter);
}

static const char *const words[] = {"zero", "one", "two", "three", "four", "five", "six",
                                    "seven", "eight", "nine", "ten", "eleven", "twelve",
                                    "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
                                    "eighteen", "nineteen", "twenty"};

/* Number word at p (followed by a non-letter), or -1; *len gets its length. */
static int number_at(const char *p, int *len)
{
    int best = -1, bl = 0;
    for (int i = 0; i <= 20; i++) {
        int l = (int)strlen(words[i]);
        if (!strncmp(p, words[i], (size_t)l) && !(p[l] >= 'a' && p[l] <= 'z') && l > bl) best = i, bl = l;
    }
    *len = bl;
    return best;
}

/* Every "knew that X plus Y is Z." is true; returns how many were checked. */
static int check_plus(const char *t)
{
    int checked = 0;
    for (const char *p = strstr(t, "knew that "); p; p = strstr(p + 1, "knew that ")) {
        const char *q = p + 10;
        int l1, l2, l3;
        int x = number_at(q, &l1);
        if (x < 0 || strncmp(q + l1, " plus ", 6)) continue;
        q += l1 + 6;
        int y = number_at(q, &l2);
        if (y < 0 || strncmp(q + l2, " is ", 4)) continue;
        int z = number_at(q + l2 + 4, &l3);
        if (q + l2 + 4 + l3 - t > (long)strlen(t) - 1) continue; /* cut at the end */
        CHECK_MSG(z == x + y, "%s plus %s is %s", words[x], words[y], z >= 0 ? words[z] : "?");
        checked++;
    }
    return checked;
}

/* Every "wrote A + B = C on the board" is true. */
static int check_digits(const char *t)
{
    int checked = 0;
    for (const char *p = strstr(t, " wrote "); p; p = strstr(p + 1, " wrote ")) {
        int a, b, c, n = 0;
        if (sscanf(p, " wrote %d + %d = %d on the board%n", &a, &b, &c, &n) == 3 && n > 0) {
            CHECK_MSG(a + b == c, "%d + %d = %d", a, b, c);
            checked++;
        }
    }
    return checked;
}

/* "counted the Xs: one, two, ..., n. There were n Xs." counts without gaps. */
static int check_counting(const char *t)
{
    int checked = 0;
    for (const char *p = strstr(t, " counted the "); p; p = strstr(p + 1, " counted the ")) {
        const char *q = strstr(p, ": ");
        const char *stop = strstr(p, "There were ");
        if (!q || !stop || stop - p > 400) continue;
        q += 2;
        int expect = 1, l, last = 0;
        while (q < stop) {
            int v = number_at(q, &l);
            if (v < 0) break;
            CHECK_MSG(v == expect, "count skipped: got %d want %d", v, expect);
            last = v, expect++;
            q += l + 2;
        }
        int said = number_at(stop + 11, &l);
        CHECK_MSG(said == last, "counted to %d but said %d", last, said);
        checked++;
    }
    return checked;
}

static void test_content(void)
{
    const int64_t n = 400000;
    char *t = gen(3, n);
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (!(c == '\n' || (c >= 32 && c < 127)) || c == '<') bad++;
    }
    CHECK_MSG(bad == 0, "%d bytes outside printable ASCII/newline or '<'", bad);
    CHECK(strncmp(t, "Once upon a time, there was ", 28) == 0);
    int stories = 0, ends = 0;
    for (const char *p = strstr(t, "Once upon a time"); p; p = strstr(p + 1, "Once upon a time")) stories++;
    for (const char *p = strstr(t, "The end.\n\n"); p; p = strstr(p + 1, "The end.\n\n")) ends++;
    CHECK(stories > 300 && ends >= stories - 1 && ends <= stories);
    int np = check_plus(t), nd = check_digits(t), nc = check_counting(t);
    CHECK_MSG(np > 50 && nd > 50 && nc > 50, "facts checked: plus %d, digits %d, counting %d", np, nd, nc);
    /* a/an agreement on colours */
    CHECK(strstr(t, " a orange ") == NULL && strstr(t, " an red ") == NULL);
    CHECK(strstr(t, " an orange ") != NULL);
    free(t);
}

int main(void)
{
    test_rng();
    test_determinism();
    test_content();
    return tu_finish("test_corpus");
}
