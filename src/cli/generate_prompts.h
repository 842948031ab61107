/* generate_prompts.h - prompt input and JSON output of `upq generate` (CLI helpers). */
#ifndef UPQ_GENERATE_PROMPTS_H
#define UPQ_GENERATE_PROMPTS_H

#include <stdio.h>

#include "chat.h"
#include "generate.h"
#include "tokenizer.h"

typedef struct {
    tok_tokenizer *tok;
    chat_template *tmpl;  /* NULL when the model has none and none was given */
    int chat;             /* plain prompts are wrapped as one user message */
    const char *system;   /* system message for --chat plain prompts (may be NULL) */
    int add_bos;          /* plain (non-chat) prompts: tokenizer's add_special */
} genp_ctx;

typedef struct {
    tok_ids *prompts;  /* (n) */
    char **ids;        /* (n) "id" of each JSONL line, NULL when absent */
    int64_t n, cap;
} genp_list;

/* A plain prompt (text) or a conversation (msgs != NULL) as ids (ids->n reset first). */
int genp_encode(const genp_ctx *c, const char *text, const chat_msg *msgs, int nmsg, tok_ids *ids);
/* Appends every non-empty line of a JSONL file; UPQ_EINPUT naming file:line. */
int genp_read_jsonl(const genp_ctx *c, const char *path, genp_list *l);
void genp_list_free(genp_list *l);
/* {"id"|"index", "n_prompt", "ids", "text", "finish"} on one line. */
int genp_print_json(FILE *f, const char *id, int64_t index, const tok_ids *prompt, const gen_result *r);

#endif
