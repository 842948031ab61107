/* tok_internal.h - the tokenizer's private types shared by the tok_*.c files: the
 * loaded pipeline (normalizer, pre-tokenizer, BPE model, post-processor, decoder
 * steps), the hash tables, and the piece list pre-tokenizers pass along.
 * Not a public API (src/text/tokenizer.h is). */
#ifndef UPQ_TOK_INTERNAL_H
#define UPQ_TOK_INTERNAL_H

#include <stdint.h>

#include "tokenizer.h"

/* ---- string -> id hash (vocabulary, added tokens) ---- */
typedef struct {
    int64_t cap;     /* power of two */
    int32_t *slot;   /* (cap) id + 1; 0 = empty */
} tok_strmap;

/* ---- BPE merge table: (left, right) -> rank, new id ---- */
typedef struct {
    int64_t cap;
    uint64_t *key;   /* (cap) (left << 32 | right) + 1; 0 = empty */
    int32_t *rank;   /* (cap) */
    int32_t *out;    /* (cap) */
} tok_mergemap;

/* ---- word cache: piece bytes -> ids (cleared when full) ---- */
typedef struct {
    int64_t cap, used;
    uint64_t *hash;  /* (cap) 0 = empty */
    int64_t *koff;   /* (cap) key offset in kbuf; key length in klen */
    int32_t *klen;
    int64_t *ioff;   /* (cap) ids offset in ibuf, count in icnt */
    int32_t *icnt;
    char *kbuf;
    int64_t kn, kcap;
    int32_t *ibuf;
    int64_t in, icap;
} tok_cache;

/* ---- pieces: byte ranges into one growable buffer ---- */
typedef struct {
    char *buf;
    int64_t nbuf, capbuf;
    int64_t *off, *len; /* (n) */
    uint8_t *first;     /* (n) 1 when the piece starts at original offset 0 */
    int64_t n, cap;
} tok_pieces;

enum { TOK_NORM_PREPEND, TOK_NORM_REPLACE, TOK_NORM_NFC };
typedef struct {
    int kind;
    char *a, *b;  /* PREPEND: a = text; REPLACE: a -> b */
} tok_norm_step;

enum { TOK_PRE_SPLIT, TOK_PRE_BYTELEVEL, TOK_PRE_METASPACE };
enum { TOK_SPLIT_REMOVED, TOK_SPLIT_ISOLATED, TOK_SPLIT_MERGED_PREV, TOK_SPLIT_MERGED_NEXT,
       TOK_SPLIT_CONTIGUOUS };
enum { TOK_PREPEND_ALWAYS, TOK_PREPEND_FIRST, TOK_PREPEND_NEVER };
typedef struct {
    int kind;
    void *re;          /* SPLIT, BYTELEVEL with use_regex: pcre2_code * */
    char *literal;     /* SPLIT with a String pattern */
    int behavior, invert;
    int add_prefix_space;          /* BYTELEVEL */
    char repl[8];                  /* METASPACE replacement (UTF-8) */
    int prepend_scheme, split;     /* METASPACE */
    int individual_digits;         /* Digits (a SPLIT on \p{N}) */
} tok_pre_step;

enum { TOK_DEC_BYTELEVEL, TOK_DEC_REPLACE, TOK_DEC_BYTEFALLBACK, TOK_DEC_FUSE, TOK_DEC_STRIP,
       TOK_DEC_METASPACE };
typedef struct {
    int kind;
    char *a, *b;       /* REPLACE a -> b; STRIP a = content char; METASPACE a = replacement */
    int start, stop;   /* STRIP */
    int prepend;       /* METASPACE: strip the first token's leading space */
} tok_dec_step;

typedef struct {
    int32_t id;
    char *content;
    int64_t len;
    int special, lstrip, rstrip, single_word, normalized;
} tok_added;

struct tok_tokenizer {
    char path[4096];             /* tokenizer.json, for messages */
    /* model vocabulary + added tokens: id -> string */
    int64_t V;
    char **tok;                  /* (V) NUL-terminated, NULL for unused ids */
    int32_t *tok_len;            /* (V) */
    uint8_t *is_special;         /* (V) */
    uint8_t *is_added;           /* (V) */
    tok_strmap vocab;            /* model vocabulary */
    tok_strmap all;              /* vocabulary and added tokens */
    tok_mergemap merges;
    int64_t n_merges;
    int byte_fallback, fuse_unk, ignore_merges;
    int32_t unk_id;              /* model unk token, -1 none */
    int32_t byte_id[256];        /* <0xNN> ids for byte fallback, -1 missing */
    int byte_level;              /* some step maps bytes to the GPT-2 alphabet */
    char cut[8];                 /* BPE may cut words before this string ("" = never): set
                                  * when it is a token and no token holds it past offset 0,
                                  * so no merge can cross such a cut (tok_bpe.c) */
    tok_added *added;
    int n_added;
    uint8_t added_first[256];    /* 1 when some added token starts with that byte */
    int has_normalized_added;
    tok_norm_step *norm;
    int n_norm;
    tok_pre_step *pre;
    int n_pre;
    tok_dec_step *dec;
    int n_dec;
    int has_decoder;
    int32_t *pre_ids, *post_ids; /* specials before / after the sequence (add_special) */
    int n_pre_ids, n_post_ids;
    int32_t bos, eos, pad, unk;
    int cleanup_spaces;          /* tokenizer_config clean_up_tokenization_spaces */
    char *chat_template;
    tok_cache cache;
    /* encode scratch */
    void *md;                    /* pcre2_match_data * */
    tok_pieces pa, pb;
    char *nbuf;
    int64_t ncap;
};

/* tok_map.c */
uint64_t tok_hash_bytes(const char *s, int64_t n);
int tok_strmap_init(tok_strmap *m, int64_t n_expected);
void tok_strmap_free(tok_strmap *m);
/* Inserts id for t->tok[id] (the key is the token string). 0 ok, 1 duplicate string. */
int tok_strmap_put(tok_strmap *m, char *const *strs, const int32_t *lens, int32_t id);
int32_t tok_strmap_get(const tok_strmap *m, char *const *strs, const int32_t *lens, const char *s,
                       int64_t n);
int tok_mergemap_init(tok_mergemap *m, int64_t n_expected);
void tok_mergemap_free(tok_mergemap *m);
void tok_mergemap_put(tok_mergemap *m, int32_t a, int32_t b, int32_t rank, int32_t out);
/* Returns the rank (and *out) of merge (a, b), -1 when there is none. */
int32_t tok_mergemap_get(const tok_mergemap *m, int32_t a, int32_t b, int32_t *out);
int tok_cache_init(tok_cache *c, int64_t cap);
void tok_cache_free(tok_cache *c);
/* Returns the ids (and *n) cached for key, NULL when absent. */
const int32_t *tok_cache_get(const tok_cache *c, const char *key, int64_t klen, int64_t *n);
int tok_cache_put(tok_cache *c, const char *key, int64_t klen, const int32_t *ids, int64_t n);

/* Layers, each file calling only the ones above it:
 *   tok_unicode.c, tok_pieces.c, tok_map.c  (call no other tok_ file)
 *   tok_bytelevel.c -> tok_pieces.c
 *   tok_pretok.c    -> tok_bytelevel.c, tok_pieces.c, tok_unicode.c
 *   tok_bpe.c, tok_encode.c, tok_decode.c, tok_load.c, tok_pipeline.c -> the above */

/* tok_unicode.c */
/* Length of the UTF-8 sequence at s (1..4), 1 for an invalid byte; *cp its codepoint
 * (the byte value for an invalid one). n > 0. */
int tok_utf8_next(const char *s, int64_t n, uint32_t *cp);
/* Unicode NFC of s (n bytes, utf8proc) into malloc'ed, NUL-terminated *o of *on bytes.
 * A byte that is not valid UTF-8 is kept as it is and nothing composes across it. */
int tok_nfc(const char *s, int64_t n, char **o, int64_t *on);
/* 1 when cp is a Unicode word character (\w of Rust's regex: Alphabetic, M, Nd, Pc,
 * Join_Control), as HF's single_word test uses. */
int tok_is_word_char(uint32_t cp);

/* tok_pieces.c */
void tok_pieces_clear(tok_pieces *p);
void tok_pieces_free(tok_pieces *p);
int tok_pieces_add(tok_pieces *p, const char *s, int64_t n, int first);

/* tok_bytelevel.c: GPT-2 byte <-> unicode alphabet */
/* UTF-8 of the character byte b maps to (1 or 2 bytes), its length in *n. */
const char *tok_byte_to_utf8(uint8_t b, int *n);
/* The byte that codepoint cp stands for, -1 when cp is not in the alphabet. */
int tok_unicode_to_byte(uint32_t cp);
/* Appends the byte-level form of s (n bytes) to p as one piece. */
int tok_bytelevel_map(tok_pieces *p, const char *s, int64_t n, int first);

/* tok_pretok.c */
int tok_pretokenize(tok_tokenizer *t, const char *s, int64_t n, int first, tok_pieces **out);
/* tok_bpe.c */
int tok_bpe_word(tok_tokenizer *t, const char *w, int64_t n, tok_ids *out);
int tok_ids_push(tok_ids *v, int32_t id);
/* tok_load.c: model, vocabulary, merges, added tokens of tokenizer.json (root: json_t *),
 * then tok_load_pipeline. tok_pipeline.c: normalizer, pre-tokenizer, post-processor,
 * decoder. */
int tok_load_json(tok_tokenizer *t, void *root);
int tok_load_pipeline(tok_tokenizer *t, void *root);
void tok_pipeline_free(tok_tokenizer *t);

#endif
