/* generate.h - text generation on the KV-cached forward (kvcache.h): a batch of prompts
 * decoded together (one cache slot each), greedy or sampled (temperature, top-k, top-p
 * as HF's logits warpers, in that order; a seeded generator per prompt so results do
 * not depend on the batch), stopping on EOS, a stop string or max_new_tokens.
 * Not chat formatting (chat.h) and not the CLI (cmd_generate.c). */
#ifndef UPQ_GENERATE_H
#define UPQ_GENERATE_H

#include <stdint.h>

#include "model.h"
#include "tokenizer.h"

typedef enum { GEN_LENGTH, GEN_EOS, GEN_STOP } gen_finish;

typedef struct {
    tok_ids ids;       /* generated ids, without the prompt; ends with EOS when it stopped there */
    char *text;        /* decode(ids, skip_special), cut where a stop string starts */
    gen_finish finish;
} gen_result;

typedef struct {
    int64_t max_new_tokens;  /* > 0 */
    float temperature;       /* 0: greedy (argmax, first index on ties) */
    int64_t top_k;           /* 0: off */
    float top_p;             /* 1: off; (0, 1] */
    uint64_t seed;
    int32_t eos;             /* -1: none */
    const char *const *stop; /* stop strings (nstop of them) */
    int nstop;
    int64_t batch;           /* prompts decoded together (>= 1) */
    int64_t index0;          /* prompts[0]'s index in a larger list (default 0): prompt i's
                              * generator is seeded from seed and index0 + i, so a list split
                              * into several gen_run calls gives the same results */
    /* Optional: called after each generated token (ids already appended to res[prompt].ids;
     * prompt counts from 0 in this call), e.g. to stream a batch-1 answer. Changes nothing. */
    void (*on_token)(void *ctx, int64_t prompt, const gen_result *r);
    void *on_token_ctx;
} gen_opts;

/* gen_opts with max_new_tokens 128, greedy, no top-k/top-p, seed 0, no EOS, batch 8. */
gen_opts gen_opts_default(void);

const char *gen_finish_name(gen_finish f);

/* Generates for n prompts (prompts[i], at least one id each); res (n) is filled (free
 * each with gen_result_free). tok is used to decode (text, stop strings). UPQ_EINPUT
 * when a prompt is empty, has ids outside the vocabulary or fills max_position_embeddings. */
int gen_run(const tfm_model *m, const tok_tokenizer *tok, const tok_ids *prompts, int64_t n,
            const gen_opts *o, gen_result *res);
void gen_result_free(gen_result *r);

/* Sampling pieces, exposed for tests. xoshiro256** seeded through splitmix64. */
typedef struct {
    uint64_t s[4];
} gen_rng;
void gen_rng_seed(gen_rng *r, uint64_t seed);
double gen_rng_uniform(gen_rng *r); /* [0, 1) with 53 bits */
typedef struct {
    float v;
    int32_t i;
} gen_pair;
/* The distribution sampling draws from: probs (V) after temperature, top-k (ties with the
 * k-th value kept), top-p (HF: ascending cumulative probability <= 1 - top_p removed,
 * the most likely token always kept) and softmax; zeros outside the kept set.
 * scratch (V) is workspace. temperature must be > 0. */
void gen_probs(float *probs, gen_pair *scratch, const float *logits, int64_t V, const gen_opts *o);
/* The next token: argmax when temperature == 0, else a draw from gen_probs. */
int32_t gen_sample(const float *logits, int64_t V, const gen_opts *o, gen_rng *r, float *probs,
                   gen_pair *scratch);

#endif
