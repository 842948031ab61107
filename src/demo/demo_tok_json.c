/* demo_tok_json.c - writes the demo tokenizer as HuggingFace tokenizer.json and
 * tokenizer_config.json through jansson (it escapes; we never do). Token
 * strings use GPT-2's byte-to-unicode map, as the ByteLevel pre-tokenizer expects.
 * Not a reader: tests parse the output with jansson. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "demo_tok.h"
#include "upq_err.h"

static const char *const specials[DTOK_N_SPECIAL] = {"<pad>", "<s>", "</s>"};

/* GPT-2 bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68
 * bytes to U+0100.. in byte order. */
static unsigned byte_cp(uint8_t b)
{
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
    unsigned k = 0;
    for (unsigned x = 0; x < b; x++)
        if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174)) k++;
    return 256 + k;
}

/* Token i as a JSON string: byte-level characters (UTF-8), or the special's text. */
static json_t *token_str(const dtok *t, int64_t i)
{
    if (i < DTOK_N_SPECIAL) return json_string(specials[i]);
    int64_t len = t->tok_off[i + 1] - t->tok_off[i];
    char *buf = malloc((size_t)(2 * len + 1)); /* each byte is 1 or 2 UTF-8 bytes */
    if (!buf) return NULL;
    size_t n = 0;
    for (int64_t k = t->tok_off[i]; k < t->tok_off[i + 1]; k++) {
        unsigned cp = byte_cp(t->bytes[k]);
        if (cp < 0x80) buf[n++] = (char)cp;
        else buf[n++] = (char)(0xC0 | (cp >> 6)), buf[n++] = (char)(0x80 | (cp & 0x3F));
    }
    json_t *s = json_stringn(buf, n);
    free(buf);
    return s;
}

static json_t *head_added_tokens(void)
{
    json_t *a = json_array();
    for (int s = 0; a && s < DTOK_N_SPECIAL; s++)
        json_array_append_new(a, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", s, "content", specials[s],
                                           "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0, "special", 1));
    return a;
}

static json_t *pre_tokenizer(void)
{
    return json_pack("{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, {s:s, s:b, s:b, s:b}]}", "type", "Sequence", "pretokenizers",
                     "type", "Split", "pattern", "Regex", DTOK_SPLIT_REGEX, "behavior", "Isolated", "invert", 0,
                     "type", "ByteLevel", "add_prefix_space", 0, "trim_offsets", 1, "use_regex", 0);
}

static json_t *post_processor(void)
{
    return json_pack("{s:s, s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}], "
                     "s:[{s:{s:s, s:i}}, {s:{s:s, s:i}}, {s:{s:s, s:i}}, {s:{s:s, s:i}}], "
                     "s:{s:{s:s, s:[i], s:[s]}}}",
                     "type", "TemplateProcessing", "single", "SpecialToken", "id", "<s>", "type_id", 0, "Sequence",
                     "id", "A", "type_id", 0, "pair", "SpecialToken", "id", "<s>", "type_id", 0, "Sequence", "id", "A",
                     "type_id", 0, "SpecialToken", "id", "<s>", "type_id", 1, "Sequence", "id", "B", "type_id", 1,
                     "special_tokens", "<s>", "id", "<s>", "ids", DTOK_BOS, "tokens", "<s>");
}

static json_t *bpe_model(const dtok *t)
{
    json_t *vocab = json_object(), *merges = json_array();
    for (int64_t i = 0; vocab && i < t->V; i++) {
        json_t *k = token_str(t, i);
        if (!k || json_object_setn_new(vocab, json_string_value(k), json_string_length(k), json_integer(i))) {
            json_decref(k);
            json_decref(vocab);
            vocab = NULL;
            break;
        }
        json_decref(k);
    }
    for (int64_t r = 0; merges && r < t->n_merges; r++)
        json_array_append_new(merges, json_pack("[o, o]", token_str(t, t->merge_pair[2 * r]),
                                                token_str(t, t->merge_pair[2 * r + 1])));
    return json_pack("{s:s, s:n, s:n, s:n, s:n, s:b, s:b, s:b, s:o, s:o}", "type", "BPE", "dropout", "unk_token",
                     "continuing_subword_prefix", "end_of_word_suffix", "fuse_unk", 0, "byte_fallback", 0,
                     "ignore_merges", 0, "vocab", vocab, "merges", merges);
}

/* Writes o (consumed) to path, indented, keys in insertion order, newline-terminated. */
static int dump(json_t *o, const char *path)
{
    if (!o) return UPQ_FAIL(UPQ_EIO, "%s: cannot build the JSON (out of memory)", path);
    FILE *f = fopen(path, "wb");
    if (!f) {
        json_decref(o);
        return UPQ_FAIL(UPQ_EIO, "%s: cannot create: %s", path, strerror(errno));
    }
    int bad = json_dumpf(o, f, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 || fputc('\n', f) == EOF;
    json_decref(o);
    bad |= ferror(f);
    if (fclose(f) != 0 || bad) return UPQ_FAIL(UPQ_EIO, "%s: write failed: %s", path, strerror(errno));
    return UPQ_OK;
}

int dtok_write_hf(const dtok *t, const char *tokenizer_json, const char *tokenizer_config_json,
                  int64_t model_max_length)
{
    json_t *tok = json_pack("{s:s, s:n, s:n, s:o, s:n, s:o, s:o, s:{s:s, s:b, s:b, s:b}, s:o}", "version", "1.0",
                            "truncation", "padding", "added_tokens", head_added_tokens(), "normalizer",
                            "pre_tokenizer", pre_tokenizer(), "post_processor", post_processor(), "decoder", "type",
                            "ByteLevel", "add_prefix_space", 1, "trim_offsets", 1, "use_regex", 1, "model",
                            bpe_model(t));
    TRY(dump(tok, tokenizer_json));
    return dump(json_pack("{s:b, s:b, s:s, s:s, s:s, s:b, s:I, s:s}", "add_bos_token", 1, "add_eos_token", 0,
                          "bos_token", "<s>", "eos_token", "</s>", "pad_token", "<pad>",
                          "clean_up_tokenization_spaces", 0, "model_max_length", (json_int_t)model_max_length,
                          "tokenizer_class", "PreTrainedTokenizerFast"),
                tokenizer_config_json);
}
