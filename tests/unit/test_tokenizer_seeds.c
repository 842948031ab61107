/* test_tokenizer_seeds.c - replays the tokenizer.json fuzz corpus (and the crash
 * regressions kept there, named crash-*) through the loader harness without libFuzzer,
 * so every build runs it: each input is either rejected with UPQ_EINPUT and a message
 * or loads and encodes/decodes fixed texts with all ids in the vocabulary. The valid
 * seeds must load. (tests/unit/test_tokenizer_encode_seeds.c does the encode corpus.) */
#include <stdio.h>
#include <string.h>

#include "../fuzz/fuzz_tok_json.c"
#include "../fuzz/fuzz_replay.h"
#include "test_util.h"

static void replay(const char *name, char *b, int64_t n, void *ctx)
{
    LLVMFuzzerTestOneInput((const uint8_t *)b, (size_t)n);
    tok_tokenizer *t = NULL;
    int ok = tok_create_json(b, (size_t)n, name, &t) == UPQ_OK;
    /* crash-* are regressions of the harness's checks: they may load or be rejected */
    if (!strstr(name, "crash-")) CHECK_MSG(ok, "valid seed %s rejected: %s", name, upq_errmsg());
    *(int *)ctx += ok;
    tok_destroy(t);
}

int main(void)
{
    int loaded = 0;
    int files = fz_replay("tokenizer_json", replay, &loaded);
    printf("replayed %d tokenizer.json files, %d loaded\n", files, loaded);
    CHECK(files >= 5 && loaded >= 5);
    return tu_finish("test_tokenizer_seeds");
}
