/* hf_model.h - a HuggingFace model folder (config.json + model.safetensors or a
 * sharded model.safetensors.index.json) opened, fully validated against the config
 * (every tensor present with the exact shape, nothing unexpected), and loaded into
 * a tfm_model in FP32. hf_model_files owns the mapped shards until hf_model_close. */
#ifndef UPQ_HF_MODEL_H
#define UPQ_HF_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "safetensors.h"

enum { HF_T_PARAM = 0, HF_T_IGNORED = 1 }; /* ignored: tied lm_head, rotary inv_freq */

typedef struct {
    const st_tensor *t;  /* name, dtype, shape, bytes (points into an open shard) */
    int file;            /* index into the shard list */
    int role;            /* HF_T_* */
} hf_tensor_ref;

typedef struct hf_model_files hf_model_files;

/* Opens and validates DIR: config, index, shards, names and shapes. No conversion. */
int hf_model_open(const char *dir, hf_model_files **out);
void hf_model_close(hf_model_files *h);

const tfm_config *hf_model_config(const hf_model_files *h);
/* Every tensor found, in shard order then file offset; *list is owned by h. */
int hf_model_tensors(const hf_model_files *h, const hf_tensor_ref **list);
/* Shards: count, and i-th file's base name and size in bytes. */
int hf_model_nfiles(const hf_model_files *h);
const char *hf_model_file_name(const hf_model_files *h, int i);
size_t hf_model_file_bytes(const hf_model_files *h, int i);

/* Allocates m (tfm_model_alloc) and converts every parameter to FP32 (OpenMP over
 * tensors). m is untouched on failure. */
int hf_model_read(const hf_model_files *h, tfm_model *m);

/* Part `part` of `nparts` of hf_model_read into m, already allocated for this config
 * (e.g. tfm_model_alloc_at over memory shared by several processes, each converting its
 * part): the tensors in model order, cut into nparts contiguous runs of about equal
 * size. The parts together convert every parameter once. */
int hf_model_read_part(const hf_model_files *h, tfm_model *m, int part, int nparts);

/* The tensors of decoder layers [l0, l1) only, plus the token embedding when emb and the
 * final norm and LM head (the embedding when tied) when head, into m, already allocated
 * for this config (tfm_model_alloc): a pipeline stage's share; the pages of the other
 * parameters are never written (nor the shards' bytes of them read). */
int hf_model_read_range(const hf_model_files *h, tfm_model *m, int64_t l0, int64_t l1, int emb, int head);

/* open + read + close. */
int hf_model_load(const char *dir, tfm_model *m);

/* Writes m as a HuggingFace folder (DIR must exist): config.json, and the weights
 * converted to dtype (ST_*) in model.safetensors (nshards <= 1) or in nshards files
 * model-0000k-of-0000n.safetensors with model.safetensors.index.json. Tensors keep
 * tfm_params_foreach order and are split into shards of about equal bytes. */
int hf_model_write(const char *dir, const tfm_model *m, int dtype, int nshards);

#endif
