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

#include "linear_packed.h"
#include "model.h"

/* Saved activations. Per-layer tensors have a leading Ls dim: Ls = L when
 * training, 1 otherwise. Inside a layer slice the layout is packed (B,T,...)
 * for the B,T of the last call (slices are spaced for Bmax,Tmax). */
typedef struct {
    int64_t Bmax, Tmax, Ls;
    int64_t B, T;      /* of the last tfm_forward (tfm_backward checks them) */
    int training;
    tfm_config cfg;
    float *mem;        /* one allocation carved below */
    float *rope_cos;   /* (Tmax, D/2) */
    float *rope_sin;   /* (Tmax, D/2) */
    float *resid;      /* (L+1, B, T, C) residual stream entering layer l; [L] = after last layer */
    float *ln1;        /* (Ls, B, T, C) input_layernorm output */
    float *ln1_rstd;   /* (Ls, B, T) */
    float *q;          /* (Ls, B, T, H*D) after bias and RoPE */
    float *k;          /* (Ls, B, T, KV*D) after bias and RoPE */
    float *v;          /* (Ls, B, T, KV*D) */
    float *att;        /* (Ls, B, H, T, T) softmax probabilities: row t holds cols 0..t, zeros
                        * up to the end of its 64-row block, the rest is undefined */
    float *atty;       /* (Ls, B, T, H*D) attention output (input of o_proj) */
    float *resid_mid;  /* (Ls, B, T, C) residual after attention */
    float *ln2;        /* (Ls, B, T, C) post_attention_layernorm output */
    float *ln2_rstd;   /* (Ls, B, T) */
    float *gate;       /* (Ls, B, T, F) gate_proj output (pre-activation) */
    float *up;         /* (Ls, B, T, F) up_proj output */
    float *act;        /* (Ls, B, T, F) silu(gate) * up (input of down_proj) */
    float *lnf;        /* (B, T, C) final norm output */
    float *lnf_rstd;   /* (B, T) */
    float *logits;     /* (B, T, V) */
    /* backward scratch (training only; NULL otherwise) */
    float *dlogits;    /* (B, T, V) filled by tfm_ce_loss before tfm_backward */
    float *dresid;     /* (B, T, C) */
    float *dln;        /* (B, T, C) */
    float *dq;         /* (B, T, H*D) */
    float *dk;         /* (B, T, KV*D) */
    float *dv;         /* (B, T, KV*D) */
    float *datty;      /* (B, T, H*D) */
    float *dgate;      /* (B, T, F) */
    float *dup;        /* (B, T, F) */
    float *datt;       /* (B, H, T, T) */
    tfm_pws pws;       /* packed-linear workspace (tfm_acts_alloc_model); zeroed otherwise */
} tfm_acts;

/* Sizes every buffer for Bmax sequences of Tmax tokens; UPQ_EIO when out of memory,
 * UPQ_EINPUT when Tmax > cfg->max_T. */
int tfm_acts_alloc(tfm_acts *a, const tfm_config *cfg, int64_t Bmax, int64_t Tmax, int training);
/* Inference activations (training 0) for model m, plus the workspace of its packed
 * linears for Bmax*Tmax rows: what tfm_forward needs when m has packed layers. */
int tfm_acts_alloc_model(tfm_acts *a, const tfm_model *m, int64_t Bmax, int64_t Tmax);
void tfm_acts_free(tfm_acts *a);

/* Runs the model on tokens (B,T). Logits land in a->logits (B,T,V). hidden_out, if not
 * NULL, receives (L+1,B,T,C) as transformers' output_hidden_states: [0] embeddings,
 * [l] residual after layer l-1 for l < L, [L] the final norm's output.
 * UPQ_EINPUT naming the position when a token id is outside [0, V). */
int tfm_forward(const tfm_model *m, tfm_acts *a, const int32_t *tokens, int64_t B, int64_t T,
                float *hidden_out);

#endif
