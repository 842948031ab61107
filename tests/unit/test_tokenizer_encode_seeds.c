/* test_tokenizer_encode_seeds.c - replays the encode fuzz corpus through
 * tests/fuzz/fuzz_tok_encode.c without libFuzzer (every build): each input picks one of
 * the seed tokenizers (plus stories260k and tinyllama-15m when ../shared is there) and
 * must pass the harness's checks (ids in range, cache and '▁' cut change nothing,
 * byte-level round trip of valid UTF-8), which abort on failure. */
#include <stdio.h>

#include "../fuzz/fuzz_tok_encode.c"
#include "../fuzz/fuzz_replay.h"
#include "test_util.h"

static void replay(const char *name, char *b, int64_t n, void *ctx)
{
    (void)name;
    (void)ctx;
    /* every input through every tokenizer */
    for (int k = 0; k < (fz_n < 0 ? 1 : fz_n); k++) {
        if (n >= 1) b[0] = (char)k;
        LLVMFuzzerTestOneInput((const uint8_t *)b, (size_t)n);
    }
}

int main(void)
{
    int files = fz_replay("tokenizer_encode", replay, NULL);
    printf("replayed %d encode inputs through %d tokenizers\n", files, fz_n);
    CHECK(files >= 5 && fz_n >= 5);
    return tu_finish("test_tokenizer_encode_seeds");
}
