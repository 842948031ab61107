/* eval_mc.h - the multiple-choice evaluation driver of `upq eval --mc` (docs/eval.md):
 * every rank tokenizes every request (context + " " + choice, mc.h), the requests are
 * ordered by length and cut into batches once for all ranks, rank r scores batches
 * [nb*r/P, nb*(r+1)/P), and the log-likelihoods are summed over ranks (zeros elsewhere),
 * so the result does not depend on the rank count. Also the built-in task, generated
 * from the corpus's held-out tail. Not the scoring math (src/eval/mc.c), not the printing. */
#ifndef UPQ_EVAL_MC_H
#define UPQ_EVAL_MC_H

#include <stdint.h>

#include "mc.h"
#include "model.h"
#include "tokenizer.h"

typedef struct {
    int64_t shots; /* k-shot examples per item (default 0) */
    uint64_t seed; /* of the k-shot draw (default 1234, the harness's) */
    int64_t batch; /* sequences per forward pass */
    int progress;  /* rank 0 prints tokens done, tokens/s and ETA on stderr (progress.h) */
} eval_mc_opts;

typedef struct {
    int64_t items, choices;    /* choices: requests scored */
    int64_t correct, correct_norm;
    int64_t fed_tokens;        /* tokens through the model (padding excluded) */
    int64_t cont_tokens;       /* continuation tokens scored */
    int64_t truncated;         /* requests cut on the left to the model's positions */
    double seconds;            /* scoring wall time of the slowest rank */
} eval_mc_summary;

/* Scores n items. ll (sum of choices' counts) gets every choice's log-likelihood in item
 * order; pick/pick_norm (n) the acc and acc_norm picks. Same results on every rank; all
 * ranks return the same status (UPQ_EINPUT naming the item for a request that cannot be
 * scored or a non-finite log-likelihood). */
int eval_mc(const tfm_model *m, tok_tokenizer *tok, const mc_item *items, int64_t n, const eval_mc_opts *o,
            double *ll, int32_t *pick, int32_t *pick_norm, eval_mc_summary *s);

/* One JSON line per item: index, context, choices, answer, ll, chars, pick, pick_norm. */
int eval_mc_write_jsonl(const char *path, const mc_item *items, int64_t n, const double *ll, const int32_t *pick,
                        const int32_t *pick_norm);

/* The built-in task "continuation" (docs/eval.md): up to nitems items from the held-out
 * tail of corpus_xz (pd-english/corpus.txt.xz, code points 35,307,859 to the end), a
 * sentence's first half as context, its true second half against the second halves of
 * three other sentences; chance 0.25. Deterministic. UPQ_EINPUT naming the file. */
int eval_mc_builtin(const char *corpus_xz, int64_t nitems, mc_item **items, int64_t *n);

#endif
