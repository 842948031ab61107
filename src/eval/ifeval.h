/* ifeval.h - the verifiable instruction checks of ../shared/data/instruct-eval/CHECKS.md
 * (12 instruction types, byte-exact string tests; the page's Python is the reference):
 * eval items parsed from JSONL, strict and loose verdicts per instruction, and the
 * prompt-, instruction- and type-level accuracies. Pure functions, no model, no I/O
 * beyond the caller's strings. Not generation (generate.h) and not the CLI (cmd_eval.c). */
#ifndef UPQ_IFEVAL_H
#define UPQ_IFEVAL_H

#include <stddef.h>
#include <stdint.h>

/* Content types first (exactly one per prompt), then the format types in the order
 * they are peeled off a response: end_with, json_answer, quotes. */
typedef enum {
    IFE_REPEAT,
    IFE_UPPERCASE,
    IFE_LOWERCASE,
    IFE_REVERSE_WORDS,
    IFE_FIRST_N_WORDS,
    IFE_LAST_WORD,
    IFE_COUNT_WORDS,
    IFE_REMOVE_COMMAS,
    IFE_NUMBER_WORDS,
    IFE_END_WITH,
    IFE_JSON_ANSWER,
    IFE_QUOTES,
    IFE_NTYPES
} ife_type;

#define IFE_MAX_INST 4 /* instructions per prompt (CHECKS.md: 1 content + at most 1 format) */
#define IFE_MAX_MSG 8  /* messages per prompt */

typedef struct {
    ife_type type;
    char *sentence; /* kwargs.sentence (content types), else NULL */
    int64_t n;      /* kwargs.n (first_n_words), else 0 */
    char *phrase;   /* kwargs.phrase (end_with), else NULL */
} ife_inst;

typedef struct {
    char *role, *content;
} ife_msg;

typedef struct {
    char *id;                    /* "id" */
    ife_msg msg[IFE_MAX_MSG];    /* "messages" (nmsg) */
    int nmsg;
    ife_inst inst[IFE_MAX_INST]; /* "instructions" (ninst), in file order */
    int ninst;
    char *reference;             /* "reference", NULL when absent */
    size_t reference_len;
} ife_item;

const char *ife_type_name(ife_type t);
/* The type named s, or -1. */
int ife_type_from_name(const char *s);
int ife_type_is_content(ife_type t);

/* Parses one JSONL line (len bytes) into it (free with ife_item_free). UPQ_EINPUT naming
 * label (file:line) and the field for malformed JSON, an unknown type, missing kwargs,
 * no content instruction or two instructions of one type. */
int ife_item_parse(const char *line, size_t len, const char *label, ife_item *it);
void ife_item_free(ife_item *it);

/* expected(type, kwargs) of a content instruction, malloc'ed into *out (NUL-terminated,
 * *len bytes). UPQ_EIO when out of memory. */
int ife_expected(const ife_inst *in, char **out, size_t *len);

/* The json_answer grammar of CHECKS.md on t[0..n) (already stripped): 1 and the payload
 * in payload[0..*plen) (payload has room for n bytes; the decoded string or the
 * integer's digits) when valid, else 0. */
int ife_json_answer(const char *t, size_t n, char *payload, size_t *plen);

/* CHECKS.md's check of response r (len bytes): pass[i] = 1/0 for it->inst[i]. */
int ife_check(const ife_item *it, const char *r, size_t len, uint8_t *pass);
/* Loose (IFEval's convention; CHECKS.md defines strict only): an instruction passes
 * when it passes on any of the response variants {r, r without its first line, without
 * its last line, without both} x {as is, every '*' removed}, the line-cut variants
 * stripped, skipping variants that are empty after stripping. */
int ife_check_loose(const ife_item *it, const char *r, size_t len, uint8_t *pass);

/* Accuracies: [0] strict, [1] loose. */
typedef struct {
    int64_t prompts, prompt_pass[2];
    int64_t insts, inst_pass[2];
    int64_t type_n[IFE_NTYPES], type_pass[2][IFE_NTYPES];
} ife_stats;

void ife_stats_add(ife_stats *s, const ife_item *it, const uint8_t *strict, const uint8_t *loose);

#endif
