/* fuzz_tok_json.c - libFuzzer harness for the tokenizer.json loader (tok_create_json over
 * arbitrary bytes). A rejected input must fail with UPQ_EINPUT and a message; an accepted
 * one must encode fixed texts (valid and invalid UTF-8, specials) to ids inside the
 * vocabulary and decode them again. Not a unit test: tests/unit/test_tokenizer_json_seeds.c
 * replays the corpus in every build. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"
#include "upq_err.h"

static void exercise(tok_tokenizer *t)
{
    static const char *const texts[] = {"Hello world, the <s> and</s> 12345!", " \t\n\r\n  x  ",
                                        "\xE2\x96\x81the \xF0\x9F\x98\x80 \xE4\xB8\xAD", "\xFF\xC3(\xE2\x82 ok",
                                        ""};
    int64_t V = tok_vocab_size(t);
    UPQ_ASSERT(V > 0);
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        for (int sp = 0; sp < 2; sp++) {
            tok_ids ids = {0};
            int rc = tok_encode(t, texts[i], (int64_t)strlen(texts[i]), sp, &ids);
            /* the one refusal encode may give: NFC on a text it could change */
            UPQ_ASSERT(rc == UPQ_OK || (rc == UPQ_EINPUT && strstr(upq_errmsg(), "NFC")));
            if (rc) {
                tok_ids_free(&ids);
                continue;
            }
            for (int64_t k = 0; k < ids.n; k++) UPQ_ASSERT(ids.ids[k] >= 0 && ids.ids[k] < V);
            char *s = NULL;
            int64_t n = 0;
            UPQ_ASSERT(tok_decode(t, ids.ids, ids.n, sp, &s, &n) == UPQ_OK);
            UPQ_ASSERT(s && (int64_t)strlen(s) <= n);
            free(s);
            tok_ids_free(&ids);
        }
    for (int32_t id = 0; id < V && id < 4096; id++) {
        const char *s = tok_token_str(t, id);
        if (s) UPQ_ASSERT(tok_token_id(t, s) >= 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tok_tokenizer *t = NULL;
    int rc = tok_create_json((const char *)data, size, "fuzz-tokenizer.json", &t);
    if (rc) {
        UPQ_ASSERT(rc == UPQ_EINPUT && upq_errmsg()[0] && t == NULL);
        upq_err_clear();
        return 0;
    }
    exercise(t);
    tok_destroy(t);
    return 0;
}
