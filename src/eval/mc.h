/* mc.h - multiple-choice evaluation by log-likelihood, as lm-eval-harness scores
 * `multiple_choice` tasks (docs/eval.md): the items ({context, choices, answer} JSONL),
 * the k-shot context, the harness's context/continuation tokenization, batched scoring
 * with tfm_forward and the acc / acc_norm picks. Math and parsing only: no MPI, no HDF5
 * (the rank split is src/stages/eval_mc.c). */
#ifndef UPQ_MC_H
#define UPQ_MC_H

#include <stddef.h>
#include <stdint.h>

#include "forward.h"
#include "model.h"
#include "tokenizer.h"

#define MC_MAX_CHOICES 64

typedef struct {
    char *context;  /* NUL-terminated */
    char **choices; /* (nchoice) NUL-terminated, without the target delimiter */
    int32_t nchoice; /* 2..MC_MAX_CHOICES */
    int32_t answer;  /* index of the gold choice */
} mc_item;

/* One request: the harness's (context_enc + continuation_enc) after left truncation to
 * max_T + 1 tokens; the last n_cont tokens are the continuation. The model is fed ids[0..n-1)
 * (n - 1 tokens) and scores ids[n - n_cont .. n). */
typedef struct {
    int32_t *ids; /* (n) */
    int64_t n, n_cont;
    int64_t n_cut; /* tokens dropped on the left (0 unless longer than max_T + 1) */
} mc_request;

/* One JSON object {"context": str, "choices": [str, ...] (2 or more), "answer": int in
 * [0, nchoice)}; extra members are ignored. UPQ_EINPUT "label: reason". */
int mc_item_parse(const char *line, size_t len, const char *label, mc_item *it);
void mc_item_free(mc_item *it);
/* Every non-empty line of a JSONL file; UPQ_EINPUT naming file:line and the reason. */
int mc_read_file(const char *path, mc_item **items, int64_t *n);
void mc_items_free(mc_item *items, int64_t n);
/* SHA-256 (hex) of the items in a canonical form (context, choices, answer), so that two
 * generations of a task can be compared. */
void mc_items_sha256(const mc_item *items, int64_t n, char hex[65]);

/* The harness's k-shot context of item i: `shots` other items of the same list drawn
 * without replacement (xoshiro256** seeded with seed and i, see mc.c), each rendered as
 * context + " " + choices[answer], joined by "\n\n", then "\n\n" + items[i].context.
 * shots = 0 gives items[i].context. *out is malloc'ed. UPQ_EINPUT when shots > n - 1. */
int mc_context(const mc_item *items, int64_t n, int64_t i, int64_t shots, uint64_t seed, char **out);

/* The harness's _encode_pair for (context, " " + choice): trailing whitespace of context
 * moves to the front of the continuation, whole = encode(context + continuation) and
 * context_enc = encode(context) without special tokens, continuation = whole[len(context_enc):];
 * an empty context is [prefix_id] instead. UPQ_EINPUT (label) when the continuation has no
 * token or more than max_T. */
int mc_encode(tok_tokenizer *tok, const char *context, const char *choice, int32_t prefix_id, int64_t max_T,
              const char *label, mc_request *r);
void mc_request_free(mc_request *r);

/* Sum of log p(continuation token | preceding tokens) of requests req[0..nreq), in
 * batches of `batch` consecutive requests right-padded with token 0 to the longest of the
 * batch (causal attention: padding does not change earlier positions). ll (nreq) out;
 * log-softmax in double. a: inference activations for (batch, max_T). *fed += tokens fed
 * (padding excluded). */
int mc_score(const tfm_model *m, tfm_acts *a, const mc_request *req, int64_t nreq, int64_t batch, double *ll,
             int64_t *fed);

/* Length of a UTF-8 string in code points (Python's len of the str). */
int64_t mc_utf8_len(const char *s);
/* lm-eval-harness's picks: *acc = argmax ll, *acc_norm = argmax ll / mc_utf8_len(choice)
 * (first index on ties, as numpy.argmax). */
void mc_pick(const double *ll, char *const *choices, int32_t n, int32_t *acc, int32_t *acc_norm);

#endif
