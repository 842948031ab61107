/* test_demo_tok_hf.c - the demo tokenizer against upq's general HF tokenizer
 * (src/text/tokenizer.h, written from the `tokenizers` semantics and tested on golden ids
 * from the real library): the tokenizer.json that demo_tok writes, loaded by
 * tok_create, must give dtok_encode's ids on corpus text, held-out text, UTF-8 samples
 * and special tokens; with add_special it must put <s> (1) first, and decoding must
 * give the text back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "corpus.h"
#include "demo_tok.h"
#include "test_util.h"
#include "tokenizer.h"
#include "upq_err.h"

static void compare(const dtok *d, tok_tokenizer *t, const char *text, int64_t n, const char *what)
{
    int32_t *ids = NULL;
    int64_t ni = 0;
    tok_ids hf = {0};
    CHECK_OK(dtok_encode(d, text, n, &ids, &ni));
    CHECK_OK(tok_encode(t, text, n, 0, &hf));
    int64_t first = -1;
    for (int64_t i = 0; i < ni && i < hf.n && first < 0; i++)
        if (ids[i] != hf.ids[i]) first = i;
    CHECK_MSG(ni == hf.n && first < 0, "%s: demo %lld ids, HF tokenizer %lld, first difference at %lld",
              what, (long long)ni, (long long)hf.n, (long long)first);
    free(ids);
    tok_ids_free(&hf);
}

int main(void)
{
    const int64_t n = 200000, nh = 50000;
    char *text = malloc((size_t)n), *held = malloc((size_t)nh);
    corpus_generate(11, text, n);
    corpus_generate(11 ^ CORPUS_HELDOUT_SALT, held, nh);
    dtok d;
    CHECK_OK(dtok_train(&d, text, n, 512));

    char dir[256], tj[300], tc[300];
    snprintf(dir, sizeof dir, "/tmp/upq_test_demo_tok_hf_%d", (int)getpid());
    mkdir(dir, 0777);
    snprintf(tj, sizeof tj, "%s/tokenizer.json", dir);
    snprintf(tc, sizeof tc, "%s/tokenizer_config.json", dir);
    CHECK_OK(dtok_write_hf(&d, tj, tc, 512));
    tok_tokenizer *t = NULL;
    CHECK_OK(tok_create(dir, &t));
    if (t) {
        CHECK(tok_vocab_size(t) == d.V);
        CHECK(tok_bos(t) == DTOK_BOS && tok_eos(t) == DTOK_EOS && tok_pad(t) == DTOK_PAD);
        compare(&d, t, text, n, "training text");
        compare(&d, t, held, nh, "held-out text");
        static const char *const samples[] = {
            "  two  spaces, tab\tCRLF\r\n caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac 42 \xf0\x9f\x98\x80!!",
            "<s>Once upon</s> a <pad>time<s", "\f\v form feed", "trailing   ", "x = y<<2; // 100%",
        };
        for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++)
            compare(&d, t, samples[i], (int64_t)strlen(samples[i]), samples[i]);
        tok_ids with = {0};
        CHECK_OK(tok_encode(t, "Once upon a time", 16, 1, &with));
        CHECK(with.n > 1 && with.ids[0] == DTOK_BOS);
        char *back = NULL;
        int64_t blen = 0;
        CHECK_OK(tok_decode(t, with.ids, with.n, 1, &back, &blen));
        CHECK(back && !strcmp(back, "Once upon a time"));
        free(back);
        tok_ids_free(&with);
        tok_destroy(t);
    }
    remove(tj);
    remove(tc);
    rmdir(dir);
    dtok_free(&d);
    free(text);
    free(held);
    return tu_finish("test_demo_tok_hf");
}
