/* gendata.h - `upq gen-data`: a teacher's sampled continuations of prompts (chat
 * conversations or plain text prefixes), K per prompt, written as JSONL that `upq prepare`
 * turns into shards with the loss mask on the generated part: chat prompts as
 * {"messages": [..., {"role": "assistant", "content": GENERATED}]}, text prefixes as
 * {"prompt": PREFIX, "completion": GENERATED}. Ranks split the (prompt, sample) items;
 * item j = prompt * K + sample is seeded from (seed, j), so the file does not depend on
 * the rank count or the batch. */
#ifndef UPQ_GENDATA_H
#define UPQ_GENDATA_H

#include <stdint.h>

#include "chat.h"
#include "generate.h"
#include "model.h"
#include "tokenizer.h"

typedef struct {
    char *text;    /* a text prefix (nmsg == 0), or NULL */
    chat_msg *msg; /* a conversation (nmsg > 0); role/content strings owned */
    int nmsg;
    int64_t line;  /* line of the input file it came from (a paragraph's first line) */
} gd_prompt;

/* Reads prompts: a JSONL file ({"messages": [...]} or {"text"|"prompt": ...}; a plain
 * record becomes one user message when chat is set, with system first when given), or,
 * when prefix_chars > 0, a plain text file whose paragraphs (blank-line separated) give
 * their first prefix_chars characters (UTF-8 code points) each. UPQ_EINPUT naming file:line. */
int gendata_read_prompts(const char *path, int64_t prefix_chars, int chat, const char *system, gd_prompt **p,
                         int64_t *n);
void gendata_prompts_free(gd_prompt *p, int64_t n);

typedef struct {
    int64_t n_samples; /* K >= 1 */
    gen_opts g;        /* sampling, max_new_tokens, batch, eos (index0 is set here) */
    int progress;      /* progress line on rank 0's stderr */
} gendata_opts;

/* Generates and writes out (rank 0, temp + rename). tmpl is needed for conversations.
 * Collective: every rank calls it with the same prompts. */
int gendata_run(const tfm_model *m, tok_tokenizer *tok, const chat_template *tmpl, const gd_prompt *p, int64_t n,
                const gendata_opts *o, const char *out);

#endif
