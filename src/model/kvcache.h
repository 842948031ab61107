/* kvcache.h - incremental (KV-cached) forward for decoding: each sequence slot
 * keeps its keys/values (after RoPE) for positions 0..len-1, and a call feeds new
 * tokens to several slots at once (all projections over all new rows in one BLIS
 * call). Same math as tfm_forward (forward.h), checked against it; packed linears run
 * on kq_gemv (decode, <= KQ_GEMV_MAX_M rows) or kq_gemm (linear_packed.h). Not
 * training. Owned by generate.c's decode loop. */
#ifndef UPQ_KVCACHE_H
#define UPQ_KVCACHE_H

#include <stdint.h>

#include "linear_packed.h"
#include "model.h"

typedef struct {
    tfm_config cfg;
    int64_t Bmax, Tmax, Rmax; /* slots, positions per slot, rows per call */
    int64_t *len;             /* (Bmax) positions filled per slot */
    float *mem;               /* one allocation carved below */
    float *kc;                /* (L, Bmax, Tmax, KV*D) keys after RoPE */
    float *vc;                /* (L, Bmax, Tmax, KV*D) values */
    float *rope_cos;          /* (Tmax, D/2) */
    float *rope_sin;          /* (Tmax, D/2) */
    float *x;                 /* (Rmax, C) residual stream of the new rows */
    float *ln;                /* (Rmax, C) */
    float *rstd;              /* (Rmax) */
    float *q;                 /* (Rmax, H*D) */
    float *k;                 /* (Rmax, KV*D) */
    float *v;                 /* (Rmax, KV*D) */
    float *atty;              /* (Rmax, H*D) */
    float *gate;              /* (Rmax, F) */
    float *up;                /* (Rmax, F) */
    float *scores;            /* (threads, Tmax) attention scratch */
    float *logits;            /* (Rmax, V) */
    tfm_pws pws;              /* packed-linear workspace (tfm_kv_init_model); zeroed otherwise */
} tfm_kv;

/* Sizes the cache for Bmax slots of Tmax positions and calls of up to Rmax new rows
 * in all. UPQ_EINPUT when Tmax > cfg->max_T, UPQ_EIO when out of memory. */
int tfm_kv_init(tfm_kv *kv, const tfm_config *cfg, int64_t Bmax, int64_t Tmax, int64_t Rmax);
/* tfm_kv_init for model m, with the workspace of its packed linears for Rmax rows:
 * what tfm_kv_forward needs when m has packed layers. */
int tfm_kv_init_model(tfm_kv *kv, const tfm_model *m, int64_t Bmax, int64_t Tmax, int64_t Rmax);
void tfm_kv_free(tfm_kv *kv);
/* Empties slot b (its next token is position 0). */
void tfm_kv_reset(tfm_kv *kv, int64_t b);

/* Feeds S new tokens to each of nb slots (slots[i], tokens (nb, S)) at positions
 * len[slot]..len[slot]+S-1 and advances len. Logits land in kv->logits: (nb*S, V) when
 * all_rows, else (nb, V) for the last new token of each slot. UPQ_EINPUT when a token is
 * outside [0, V) or a slot would pass Tmax. */
int tfm_kv_forward(const tfm_model *m, tfm_kv *kv, const int64_t *slots, int64_t nb,
                   const int32_t *tokens, int64_t S, int all_rows);

#endif
