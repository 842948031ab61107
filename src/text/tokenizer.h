/* tokenizer.h - the HuggingFace tokenizer in C: loads a model folder's tokenizer.json
 * (+ tokenizer_config.json, special_tokens_map.json when present) and encodes/decodes
 * exactly as the `tokenizers` library does for byte-level BPE (GPT-2 / Llama-3 / Qwen2)
 * and SentencePiece-style BPE (Llama-2 / TinyLlama / stories260k: Metaspace, byte
 * fallback). Not a trainer and not a chat-template engine (docs/tokenizer.md).
 * One tok_tokenizer is not thread-safe (encode fills a word cache): one per thread. */
#ifndef UPQ_TOKENIZER_H
#define UPQ_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct tok_tokenizer tok_tokenizer;

/* A growable id array that tok_encode appends to (caller-owned; zero-initialize it,
 * free with tok_ids_free). Appending lets a streaming caller reuse one buffer. */
typedef struct {
    int32_t *ids; /* (n) */
    int64_t n, cap;
} tok_ids;
void tok_ids_free(tok_ids *v);

/* Loads DIR/tokenizer.json and, when present, DIR/tokenizer_config.json and
 * DIR/special_tokens_map.json. UPQ_EINPUT naming the file and the reason for malformed
 * JSON, an unknown model/normalizer/pre-tokenizer/decoder/post-processor type, merges
 * naming unknown tokens, or special tokens that are not in the vocabulary. */
int tok_create(const char *dir, tok_tokenizer **out);
/* The same from explicit paths; config_json may be NULL (no tokenizer_config.json). */
int tok_create_files(const char *tokenizer_json, const char *config_json, tok_tokenizer **out);
/* From the text of a tokenizer.json in memory (n bytes; no config); label names it in
 * messages. BOS/EOS then come from the post-processor only. */
int tok_create_json(const char *json, size_t n, const char *label, tok_tokenizer **out);
void tok_destroy(tok_tokenizer *t);

/* Encodes len bytes of text (need not be NUL-terminated) and appends the ids to *out.
 * Invalid UTF-8 is accepted: a byte that does not start a valid sequence is a character
 * of its own (HF takes a Python str and never sees such input). Added/special tokens are matched
 * in the text first. add_special != 0 adds BOS/EOS as the post-processor (or
 * tokenizer_config add_bos_token/add_eos_token) says, like HF add_special_tokens=True. */
int tok_encode(tok_tokenizer *t, const char *text, int64_t len, int add_special, tok_ids *out);

/* Decodes n ids to UTF-8 text as HF tokenizer.decode(ids, skip_special_tokens=skip_special)
 * does (invalid UTF-8 from byte tokens becomes U+FFFD). *text is malloc'ed and
 * NUL-terminated, *len its length without the NUL (len may be NULL). UPQ_EINPUT for an id
 * outside [0, vocab). */
int tok_decode(const tok_tokenizer *t, const int32_t *ids, int64_t n, int skip_special,
               char **text, int64_t *len);

/* Vocabulary size: 1 + the largest id of the model vocabulary or an added token. */
int64_t tok_vocab_size(const tok_tokenizer *t);
/* BOS/EOS/PAD/UNK ids from tokenizer_config.json / special_tokens_map.json / the
 * post-processor; -1 when the tokenizer has none. */
int32_t tok_bos(const tok_tokenizer *t);
int32_t tok_eos(const tok_tokenizer *t);
int32_t tok_pad(const tok_tokenizer *t);
int32_t tok_unk(const tok_tokenizer *t);
/* Whether add_special encoding puts BOS first / EOS last. */
int tok_adds_bos(const tok_tokenizer *t);
int tok_adds_eos(const tok_tokenizer *t);
/* Id of the token whose content is exactly s (vocabulary or added token), -1 if none. */
int32_t tok_token_id(const tok_tokenizer *t, const char *s);
/* The token's string as stored in tokenizer.json (byte-level form, e.g. "Ġthe", or
 * "▁the", "<0x0A>", "<s>"); NULL for an id outside [0, vocab). */
const char *tok_token_str(const tok_tokenizer *t, int32_t id);
/* 1 when id is an added token marked "special" (skipped by skip_special decode). */
int tok_is_special(const tok_tokenizer *t, int32_t id);
/* The chat template text (tokenizer_config.json "chat_template", else DIR/chat_template.jinja);
 * NULL when there is none. Owned by the tokenizer. */
const char *tok_chat_template(const tok_tokenizer *t);

/* The wikitext perplexity protocol's text (REFERENCE.md): "\n\n".join(row + "\n") over the
 * non-empty lines of raw (n bytes; lines split at '\n'). *out is malloc'ed, NUL-terminated. */
int tok_wikitext_join(const char *raw, int64_t n, char **out, int64_t *out_len);
/* Reads a whole file into a malloc'ed, NUL-terminated buffer (UPQ_EINPUT naming it). */
int tok_read_file(const char *path, char **out, int64_t *len);

#endif
