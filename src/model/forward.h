/* forward.h - the forward pass of a tfm_model over a batch of B sequences of T
 * tokens (causal, positions 0..T-1 in every sequence), and the activation buffers it
 * saves for tfm_backward (backward.h). Exact FP32; a model with packed linears
 * (tfm_model_alloc_packed, inference only) runs those on kq_gemm / kq_gemv
 * (linear_packed.h) with the workspace tfm_acts_alloc_model sizes. Not the loss (loss.h).
 *
 * Usage: tfm_acts_alloc(&a, &m.cfg, Bmax, Tmax, training); tfm_forward(&m, &a,
 * tokens, B, T, hidden_or_NULL) with B <= Bmax, T <= Tmax; logits are in
 * a.logits as (B,T,V) packed with the B,T of the call. With training == 0 the
 * per-layer buffers hold one layer (reused), so tfm_backward needs training != 0. */
#ifndef UPQ_FORWARD_H
#define UPQ_FORWARD_H

#include <stdint.h>

#include "block.h"
#include "linear_packed.h"
#include "model.h"

/* Saved activations of layers [l0, l1) (the whole model: [0, L) with the embedding and
 * the head). Per-layer tensors have a leading Ls dim: Ls = l1 - l0 when training, 1
 * otherwise (index l - l0). Inside a layer slice the layout is packed (B,T,...) for the
 * B,T of the last call (slices are spaced for Bmax,Tmax). Attention keeps no T x T
 * probabilities (layers.h): activation memory per layer is O(B T C), plus one shared
 * attention scratch of 2 * 64 * Tmax floats per thread. */
typedef struct {
    int64_t Bmax, Tmax, Ls;
    int64_t B, T;      /* of the last forward (the backward checks them) */
    int training;
    int64_t l0, l1;    /* the layers held */
    int emb, head;     /* the range starts at the token embedding / ends with the LM head */
    int64_t nthreads;  /* OpenMP threads the attention scratch is sized for */
    tfm_config cfg;
    float *mem;        /* one allocation carved below */
    float *rope_cos;   /* (Tmax, D/2) */
    float *rope_sin;   /* (Tmax, D/2) */
    float *resid;      /* (l1-l0+1, B, T, C) residual stream entering layer l (slice l - l0);
                        * [l1-l0] = after the last layer. Inference: 2 slices, used alternately */
    float *ln1;        /* (Ls, B, T, C) input_layernorm output */
    float *ln1_rstd;   /* (Ls, B, T) */
    float *q;          /* (Ls, B, T, H*D) after bias and RoPE */
    float *k;          /* (Ls, B, T, KV*D) after bias and RoPE */
    float *v;          /* (Ls, B, T, KV*D) */
    float *att_stats;  /* (Ls, B, H, T, 2) softmax (max, 1/sum) per attention row */
    float *att_ws;     /* (nthreads, 2, 64, Tmax) attention scratch (attention_scratch_floats) */
    float *atty;       /* (Ls, B, T, H*D) attention output (input of o_proj) */
    float *resid_mid;  /* (Ls, B, T, C) residual after attention */
    float *ln2;        /* (Ls, B, T, C) post_attention_layernorm output */
    float *ln2_rstd;   /* (Ls, B, T) */
    float *gate;       /* (Ls, B, T, F) gate_proj output (pre-activation) */
    float *up;         /* (Ls, B, T, F) up_proj output */
    float *act;        /* (Ls, B, T, F) silu(gate) * up (input of down_proj) */
    float *lnf;        /* (B, T, C) final norm output (head only) */
    float *lnf_rstd;   /* (B, T) (head only) */
    float *logits;     /* (B, T, V) (head only) */
    /* backward scratch (training only; NULL otherwise) */
    float *dlogits;    /* (B, T, V) filled by tfm_ce_loss before tfm_backward (head only) */
    float *dresid;     /* (B, T, C) */
    float *dln;        /* (B, T, C) */
    float *dq;         /* (B, T, H*D) */
    float *dk;         /* (B, T, KV*D) */
    float *dv;         /* (B, T, KV*D) */
    float *datty;      /* (B, T, H*D) */
    float *dgate;      /* (B, T, F) */
    float *dup;        /* (B, T, F) */
    tfm_pws pws;       /* packed-linear workspace (tfm_acts_alloc_model); zeroed otherwise */
} tfm_acts;

/* Sizes every buffer for Bmax sequences of Tmax tokens; UPQ_EIO when out of memory,
 * UPQ_EINPUT when Tmax > cfg->max_T. The whole model: tfm_acts_alloc_range(a, cfg, 0, L,
 * 1, 1, ...). */
int tfm_acts_alloc(tfm_acts *a, const tfm_config *cfg, int64_t Bmax, int64_t Tmax, int training);
/* Activations of layers [l0, l1) only (a pipeline stage), with the token embedding in
 * front when emb and the final norm + LM head behind when head. UPQ_EINPUT for a range
 * outside [0, L] or an empty one without embedding and head. */
int tfm_acts_alloc_range(tfm_acts *a, const tfm_config *cfg, int64_t l0, int64_t l1, int emb,
                         int head, int64_t Bmax, int64_t Tmax, int training);
/* Inference activations (training 0) for model m, plus the workspace of its packed
 * linears for Bmax*Tmax rows: what tfm_forward needs when m has packed layers. */
int tfm_acts_alloc_model(tfm_acts *a, const tfm_model *m, int64_t Bmax, int64_t Tmax);
/* The same for layers [l0, l1) of m (an inference pipeline stage, packed layers allowed). */
int tfm_acts_alloc_range_model(tfm_acts *a, const tfm_model *m, int64_t l0, int64_t l1, int emb,
                               int head, int64_t Bmax, int64_t Tmax);
void tfm_acts_free(tfm_acts *a);

/* Runs the model on tokens (B,T). Logits land in a->logits (B,T,V). hidden_out, if not
 * NULL, receives (L+1,B,T,C) as transformers' output_hidden_states: [0] embeddings,
 * [l] residual after layer l-1 for l < L, [L] the final norm's output.
 * UPQ_EINPUT naming the position when a token id is outside [0, V). */
int tfm_forward(const tfm_model *m, tfm_acts *a, const int32_t *tokens, int64_t B, int64_t T,
                float *hidden_out);

/* The input of a layer range into dst (B*T*C floats): the embedding rows of tokens (each id
 * checked against V: UPQ_EINPUT naming the position) or, with tokens NULL, a copy of x. */
int tfm_range_input(const tfm_model *m, const int32_t *tokens, const float *x, float *dst, int64_t B,
                    int64_t T);

/* The forward of a's range [l0, l1): from tokens (B,T) when a->emb, else from x
 * (B,T,C), the residual entering layer l0. Output: a->logits (B,T,V) when a->head, else
 * tfm_range_out(a) (B,T,C), the residual after layer l1-1. lw: the blocks' weights
 * indexed by layer (lw[l] for l in [l0, l1), linear kinds may mix), or NULL for those of
 * m. hidden_out as tfm_forward's, (l1-l0+1,B,T,C), may be NULL. */
int tfm_range_forward(const tfm_model *m, const blk_weights *lw, tfm_acts *a,
                      const int32_t *tokens, const float *x, int64_t B, int64_t T,
                      float *hidden_out);
/* The residual after the range's last layer (B,T,C) of the last forward. */
float *tfm_range_out(const tfm_acts *a);
/* Views for the backward (backward.c): the saved activations of layer l, and the
 * residual entering layer l (l0 <= l <= l1). */
blk_acts tfm_acts_layer(const tfm_acts *a, int64_t l);
float *tfm_acts_resid(const tfm_acts *a, int64_t l);

#endif
