/* demo_train.h - the built-in demo model: a small llama trained from scratch on the
 * procedural corpus (corpus.h) with the demo BPE (demo_tok.h), written as a
 * HuggingFace folder. demo_train runs the optimisation (init, AdamW with warmup and
 * cosine decay, random windows); demo_model_build is the whole stage (corpus,
 * tokenizer, training, evaluation, DIR.tmp then rename to DIR). Single process.
 * Deterministic: the same options and thread count give the same bytes. */
#ifndef UPQ_DEMO_TRAIN_H
#define UPQ_DEMO_TRAIN_H

#include <stdint.h>
#include <stdio.h>

#include "model.h"

typedef struct {
    uint64_t seed;          /* corpus, tokenizer text, weight init and batch order */
    int64_t steps;          /* optimizer steps (the default is step-based: deterministic) */
    int64_t batch;          /* sequences per step */
    int64_t ctx;            /* tokens per training sequence and per evaluation window */
    int64_t corpus_bytes;   /* training text */
    int64_t heldout_bytes;  /* held-out text (seed ^ CORPUS_HELDOUT_SALT) */
    int64_t vocab;          /* BPE vocabulary, specials included */
    double lr;              /* peak learning rate */
    double min_lr_frac;     /* cosine decays to lr * min_lr_frac at the last step */
    int64_t warmup;         /* linear warmup steps */
    double weight_decay;    /* on matrices and embeddings only */
    double clip;            /* global gradient-norm clip (0: none) */
    double max_seconds;     /* > 0: also stop training after this many seconds and run
                             * the cosine by elapsed time (not deterministic); 0: off */
    int64_t log_every;      /* progress line every N steps (0: none) */
    FILE *progress;         /* where progress lines go (NULL: silent) */
} demo_opts;

typedef struct {
    int64_t n_params, steps, train_tokens, heldout_tokens, heldout_predicted;
    double first_loss;      /* loss of step 1 (about ln V at init) */
    double final_loss;      /* mean training loss of the last 10% of steps */
    double heldout_loss;    /* mean NLL on the held-out windows, FP16-rounded weights */
    double heldout_ppl;
    double unigram_ppl;     /* baseline: add-one unigram model of the training tokens */
    double train_seconds, tokens_per_s, total_seconds;
} demo_result;

void demo_opts_default(demo_opts *o);
/* The demo architecture for a vocabulary of V tokens (GQA, untied head). */
void demo_config(tfm_config *cfg, int64_t V);
/* One line naming every option that changes the output, e.g. "seed=1 steps=600 ...". */
void demo_opts_key(const demo_opts *o, char *buf, size_t cap);

/* Deterministic init: N(0, 0.02) matrices, the residual projections (o_proj,
 * down_proj) scaled by 1/sqrt(2L), norms 1. */
void demo_init_weights(tfm_model *m, uint64_t seed);
/* Trains m in place on tokens (n) for o->steps steps; fills the training fields of r. */
int demo_train(tfm_model *m, const int32_t *tokens, int64_t n, const demo_opts *o, demo_result *r);
/* Mean NLL over the floor(n/ctx) non-overlapping windows (tokens 1..ctx-1 of each
 * scored, as `upq ppl`); *predicted gets the number of scored tokens. */
int demo_eval(const tfm_model *m, const int32_t *tokens, int64_t n, int64_t ctx, double *mean_nll,
              int64_t *predicted);
/* Cross-entropy (nats) of the add-one unigram model of train on the tokens demo_eval scores. */
int demo_unigram_nll(const int32_t *train, int64_t n_train, const int32_t *eval, int64_t n_eval,
                     int64_t ctx, int64_t V, double *mean_nll);
/* Rounds every parameter to FP16 and back: the weights model.safetensors holds. */
void demo_round_f16(tfm_model *m);

/* 1 when DIR holds a complete demo model made with the same options (demo_model.json
 * records them), else 0. */
int demo_model_is_complete(const char *dir, const demo_opts *o);
/* The whole stage: writes DIR.tmp (config.json, model.safetensors in F16, tokenizer.json,
 * tokenizer_config.json, generation_config.json, eval_tokens.h5 with /tokens, heldout.txt,
 * demo_model.json) and renames it to DIR. DIR must not exist. */
int demo_model_build(const char *dir, const demo_opts *o, demo_result *r);

#endif
