/* chat.h - chat templates: a conversation (system/user/assistant messages) formatted
 * exactly as the model's Jinja chat_template renders it (HF apply_chat_template,
 * trim_blocks/lstrip_blocks), for the families recognised from the template text:
 * Llama-2 [INST]/<<SYS>>, Llama-3 header tokens, ChatML (Qwen2, SmolLM: default system
 * prompt taken from the template), Zephyr/TinyLlama (<|role|>\n...eos\n) and the
 * <|role|> template of tinyllama-15m; or a simple key = value file (docs/chat-templates.md).
 * Not a Jinja interpreter: an unrecognised template is an error (UPQ_EINPUT). */
#ifndef UPQ_CHAT_H
#define UPQ_CHAT_H

#include <stdint.h>

#include "tokenizer.h"

typedef enum {
    CHAT_LLAMA2,   /* bos [INST] <<SYS>>\nS\n<</SYS>>\n\nU [/INST] A eos */
    CHAT_LLAMA3,   /* bos <|start_header_id|>role<|end_header_id|>\n\nX<|eot_id|> */
    CHAT_CHATML,   /* <|im_start|>role\nX<|im_end|>\n */
    CHAT_ZEPHYR,   /* <|role|>\nX eos \n  (the end marker is the eos token) */
    CHAT_ROLETAGS, /* '<|' + role + '|>\n' + X + '</s>\n' (tinyllama-15m; any role) */
    CHAT_SIMPLE,   /* from a --chat-template file */
} chat_family;

typedef struct {
    const char *role;    /* "system", "user" or "assistant" */
    const char *content;
} chat_msg;

/* Byte range [start, end) of the rendered text that an assistant turn produced: its
 * content and its end-of-turn marker (what a fine-tune computes the loss on). */
typedef struct {
    int64_t start, end;
} chat_span;

typedef struct chat_template chat_template;

/* Recognises the family of a Jinja template text (label names it in messages); bos/eos
 * are the tokenizer's token strings (may be NULL when it has none). UPQ_EINPUT for a
 * template none of the families matches. */
int chat_template_detect(const char *jinja, const char *bos, const char *eos, const char *label,
                         chat_template **out);
/* Loads the simple format of docs/chat-templates.md. UPQ_EINPUT naming file and line. */
int chat_template_load(const char *path, const char *bos, const char *eos, chat_template **out);
/* The template of a tokenizer (tok_chat_template), or file's when file != NULL.
 * UPQ_EINPUT when the model has none and no file is given. */
int chat_template_for(const tok_tokenizer *t, const char *file, chat_template **out);
void chat_template_destroy(chat_template *t);
chat_family chat_template_family(const chat_template *t);
const char *chat_family_name(chat_family f);

/* Renders n messages (add_generation_prompt as HF). *text is malloc'ed, NUL-terminated;
 * *len its length. spans (may be NULL) receives a malloc'ed array of *nspans assistant
 * spans. UPQ_EINPUT for an unknown role, a system message not first, or (Llama-2) roles
 * that do not alternate user/assistant, as the template raises. */
int chat_render(const chat_template *t, const chat_msg *msgs, int n, int add_generation_prompt,
                char **text, int64_t *len, chat_span **spans, int *nspans);

#endif
