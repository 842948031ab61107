/* eval.h - the instruction-following evaluation driver of `upq eval`: eval.jsonl items
 * (ifeval.h) rendered in the model's chat template, decoded greedily with the KV cache
 * (generate.h), every response checked strict and loose. Under mpirun the ranks split
 * the prompts in contiguous ranges and every rank ends with every response (ids summed
 * with par_sum_i64); a prompt's ids do not depend on the rank count. Not the checks
 * themselves (ifeval.c) and not the printing (cmd_eval.c, eval_report.c). */
#ifndef UPQ_EVAL_H
#define UPQ_EVAL_H

#include <stdint.h>

#include "chat.h"
#include "ifeval.h"
#include "model.h"
#include "tokenizer.h"

typedef struct {
    int64_t max_new_tokens; /* CHECKS.md: 96 */
    int64_t batch;          /* prompts decoded together per rank */
    int32_t eos;            /* stop token (CHECKS.md: </s>, id 2) */
    int progress;           /* rank 0 prints prompts done, tokens/s and ETA on stderr (progress.h) */
} eval_opts;

typedef struct {
    tok_ids ids;      /* generated ids; the last is eos when the response ended there */
    char *text;       /* the response: decode(ids) with special tokens dropped (len bytes) */
    size_t len;
    int64_t n_prompt; /* prompt tokens */
    uint8_t strict[IFE_MAX_INST], loose[IFE_MAX_INST];
} eval_response;

typedef struct {
    ife_stats st;
    int64_t prompt_tokens, gen_tokens, n_eos;
    double seconds; /* generation wall time of the slowest rank */
} eval_summary;

/* Every non-empty line of a JSONL file (ifeval.h items); UPQ_EINPUT naming file:line. */
int eval_read_items(const char *path, ife_item **items, int64_t *n);
void eval_items_free(ife_item *items, int64_t n);

/* Generates and checks n items; res (n) and s are filled on every rank (free each
 * response with eval_response_free). All ranks return the same status. */
int eval_instruct(const tfm_model *m, tok_tokenizer *tok, const chat_template *t, const ife_item *items,
                  int64_t n, const eval_opts *o, eval_response *res, eval_summary *s);
void eval_response_free(eval_response *r);

/* One JSON line per item: id, config, response, ids, finish, n_prompt, pass (strict, per
 * instruction, as eval_outputs.jsonl), pass_loose, instructions (types). */
int eval_write_jsonl(const char *path, const char *config, const ife_item *items, const eval_response *res,
                     int64_t n, int32_t eos);

#endif
