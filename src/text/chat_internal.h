/* chat_internal.h - the chat_template struct and the string builder shared by chat.c
 * (families, rendering) and chat_file.c (recognition, the simple file format). Calls go
 * one way: chat.c -> chat_file.c -> chat_base.c. */
#ifndef UPQ_CHAT_INTERNAL_H
#define UPQ_CHAT_INTERNAL_H

#include <stdint.h>

#include "chat.h"

enum { CHAT_PREFIX, CHAT_SYSTEM, CHAT_USER, CHAT_ASSISTANT, CHAT_GENERATION, CHAT_NPARTS };

struct chat_template {
    chat_family fam;
    char *bos, *eos;          /* token strings, "" when the tokenizer has none */
    char *default_system;     /* ChatML/simple: system prompt used when none is given */
    char *part[CHAT_NPARTS];  /* simple format strings (NULL when absent) */
};

typedef struct {
    char *buf;
    int64_t len, cap;
    chat_span *spans;
    int nspans, capspans;
} chat_sb;

/* chat_base.c */
/* A template of family fam with copies of bos/eos (NULL: ""). */
int chat_template_new(chat_family fam, const char *bos, const char *eos, chat_template **out);
/* Appends n bytes (n < 0: strlen). */
int chat_sb_put(chat_sb *s, const char *p, int64_t n);
/* Records an assistant span [start, current end). */
int chat_span_add(chat_sb *s, int64_t start);
/* chat_file.c */
/* CHAT_SYSTEM/USER/ASSISTANT for a role name, -1 otherwise. */
int chat_simple_part(const char *role);
int chat_render_simple(const chat_template *t, const chat_msg *m, int n, int gen, chat_sb *b);

#endif
