/* demo_tok_json.c - writes the demo tokenizer as HuggingFace tokenizer.json and
 * tokenizer_config.json (plain stdio: the JSON is small and fixed in shape). Token
 * strings use GPT-2's byte-to-unicode map, as the ByteLevel pre-tokenizer expects.
 * Not a reader: tests parse the output with jansson. */
#include <errno.h>
#include <stdio.h>
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

/* JSON string of a raw ASCII string (escapes '"' and '\\'). */
static void put_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* JSON string of token i as byte-level characters (UTF-8), or the special's text. */
static void put_token(FILE *f, const dtok *t, int64_t i)
{
    if (i < DTOK_N_SPECIAL) {
        put_str(f, specials[i]);
        return;
    }
    fputc('"', f);
    for (int64_t k = t->tok_off[i]; k < t->tok_off[i + 1]; k++) {
        unsigned cp = byte_cp(t->bytes[k]);
        if (cp == '"' || cp == '\\') fputc('\\', f);
        if (cp < 0x80) {
            fputc((int)cp, f);
        } else {
            fputc((int)(0xC0 | (cp >> 6)), f);
            fputc((int)(0x80 | (cp & 0x3F)), f);
        }
    }
    fputc('"', f);
}

static void put_head(FILE *f)
{
    fprintf(f, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n");
    fprintf(f, "  \"added_tokens\": [\n");
    for (int s = 0; s < DTOK_N_SPECIAL; s++) {
        fprintf(f, "    {\"id\": %d, \"content\": ", s);
        put_str(f, specials[s]);
        fprintf(f, ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, "
                   "\"normalized\": false, \"special\": true}%s\n", s + 1 < DTOK_N_SPECIAL ? "," : "");
    }
    fprintf(f, "  ],\n  \"normalizer\": null,\n");
    fprintf(f, "  \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [\n"
               "    {\"type\": \"Split\", \"pattern\": {\"Regex\": ");
    put_str(f, DTOK_SPLIT_REGEX);
    fprintf(f, "}, \"behavior\": \"Isolated\", \"invert\": false},\n"
               "    {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, "
               "\"use_regex\": false}]},\n");
    fprintf(f, "  \"post_processor\": {\"type\": \"TemplateProcessing\",\n"
               "    \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}, "
               "{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}],\n"
               "    \"pair\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}, "
               "{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, "
               "{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 1}}, "
               "{\"Sequence\": {\"id\": \"B\", \"type_id\": 1}}],\n"
               "    \"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [%d], \"tokens\": [\"<s>\"]}}},\n",
            DTOK_BOS);
    fprintf(f, "  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, "
               "\"trim_offsets\": true, \"use_regex\": true},\n");
}

static void put_model(FILE *f, const dtok *t)
{
    fprintf(f, "  \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, "
               "\"continuing_subword_prefix\": null, \"end_of_word_suffix\": null, "
               "\"fuse_unk\": false, \"byte_fallback\": false, \"ignore_merges\": false,\n"
               "    \"vocab\": {\n");
    for (int64_t i = 0; i < t->V; i++) {
        fprintf(f, "      ");
        put_token(f, t, i);
        fprintf(f, ": %lld%s\n", (long long)i, i + 1 < t->V ? "," : "");
    }
    fprintf(f, "    },\n    \"merges\": [\n");
    for (int64_t r = 0; r < t->n_merges; r++) {
        fprintf(f, "      [");
        put_token(f, t, t->merge_pair[2 * r]);
        fprintf(f, ", ");
        put_token(f, t, t->merge_pair[2 * r + 1]);
        fprintf(f, "]%s\n", r + 1 < t->n_merges ? "," : "");
    }
    fprintf(f, "    ]\n  }\n}\n");
}

static int close_checked(FILE *f, const char *path)
{
    int bad = ferror(f);
    if (fclose(f) != 0 || bad)
        return UPQ_FAIL(UPQ_EIO, "%s: write failed: %s", path, strerror(errno));
    return UPQ_OK;
}

int dtok_write_hf(const dtok *t, const char *tokenizer_json, const char *tokenizer_config_json,
                  int64_t model_max_length)
{
    FILE *f = fopen(tokenizer_json, "wb");
    if (!f) return UPQ_FAIL(UPQ_EIO, "%s: cannot create: %s", tokenizer_json, strerror(errno));
    put_head(f);
    put_model(f, t);
    TRY(close_checked(f, tokenizer_json));

    f = fopen(tokenizer_config_json, "wb");
    if (!f) return UPQ_FAIL(UPQ_EIO, "%s: cannot create: %s", tokenizer_config_json, strerror(errno));
    fprintf(f, "{\n  \"add_bos_token\": true,\n  \"add_eos_token\": false,\n"
               "  \"bos_token\": \"<s>\",\n  \"eos_token\": \"</s>\",\n  \"pad_token\": \"<pad>\",\n"
               "  \"clean_up_tokenization_spaces\": false,\n  \"model_max_length\": %lld,\n"
               "  \"tokenizer_class\": \"PreTrainedTokenizerFast\"\n}\n",
            (long long)model_max_length);
    return close_checked(f, tokenizer_config_json);
}
