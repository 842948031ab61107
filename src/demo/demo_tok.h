/* demo_tok.h - the demo model's byte-level BPE tokenizer: training on a text, encoding,
 * decoding, and writing it as a HuggingFace tokenizer.json whose semantics this encoder
 * reproduces exactly (docs/demo-model.md). Local to the demo; not the general HF
 * tokenizer (that one reads any tokenizer.json).
 *
 * Pipeline (the same in C and in HF): special tokens "<pad>" "<s>" "</s>" are cut out of
 * the text first; the rest is split into pieces by the ASCII classes of
 * DTOK_SPLIT_REGEX; each piece's bytes become byte tokens, then merges apply by rank
 * (lowest rank first, leftmost first). */
#ifndef UPQ_DEMO_TOK_H
#define UPQ_DEMO_TOK_H

#include <stddef.h>
#include <stdint.h>

enum {
    DTOK_PAD = 0,
    DTOK_BOS = 1,
    DTOK_EOS = 2,
    DTOK_N_SPECIAL = 3,
    DTOK_FIRST_BYTE = 3,   /* byte b is token DTOK_FIRST_BYTE + b */
    DTOK_FIRST_MERGE = 259 /* first token made by a merge */
};

/* The HF "Split" pattern (onig syntax, behavior Isolated) the C splitter implements:
 * a letter run with an optional leading space, one digit with an optional leading space,
 * a run of other characters (anything not an ASCII letter, digit or space/tab/LF/CR,
 * so every non-ASCII character) with an optional leading space, or a whitespace run. */
#define DTOK_SPLIT_REGEX " ?[A-Za-z]+| ?[0-9]| ?[^A-Za-z0-9 \\t\\n\\r]+|[ \\t\\n\\r]+"

typedef struct {
    int64_t V;            /* vocabulary size, specials included */
    int64_t n_merges;
    int32_t *merge_pair;  /* (n_merges, 2) left and right token of merge r (rank r) */
    int32_t *merge_out;   /* (n_merges) token the merge produces */
    int64_t *tok_off;     /* (V+1) bytes of token i: bytes[tok_off[i] .. tok_off[i+1]) */
    uint8_t *bytes;
    /* encoder's pair -> rank table (open addressing) */
    int64_t hcap;
    uint64_t *hkey;       /* (hcap) (left << 32 | right) + 1; 0 = empty */
    int32_t *hrank;       /* (hcap) */
} dtok;

/* Trains merges on text until the vocabulary has V tokens (or no pair occurs twice).
 * Merges pick the most frequent adjacent pair over all pieces; ties go to the smaller
 * (left, right) id pair, so training is deterministic. V in [259, 4096]. */
int dtok_train(dtok *t, const char *text, int64_t n, int64_t V);
void dtok_free(dtok *t);

/* Encodes n bytes (any bytes; HF needs valid UTF-8) without BOS/EOS. *ids is malloc'ed. */
int dtok_encode(const dtok *t, const char *text, int64_t n, int32_t **ids, int64_t *n_ids);
/* Decodes ids to bytes (specials as their text). *out is malloc'ed, NUL-terminated. */
int dtok_decode(const dtok *t, const int32_t *ids, int64_t n, char **out, int64_t *n_out);

/* Length of the piece that starts at text[0] (n > 0), as DTOK_SPLIT_REGEX splits. */
int64_t dtok_piece_len(const char *text, int64_t n);

/* Writes tokenizer.json (BPE model, Split + ByteLevel pre-tokenizers, BOS template,
 * ByteLevel decoder) and tokenizer_config.json (add_bos_token, special tokens). */
int dtok_write_hf(const dtok *t, const char *tokenizer_json, const char *tokenizer_config_json,
                  int64_t model_max_length);

#endif
