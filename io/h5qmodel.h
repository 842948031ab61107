/* h5qmodel.h - the quantized form of the upq model container (prefix h5q_): the layout
 * of docs/container.md ("Quantized linear layers": codes, fp16 scales and offsets per
 * linear layer, encoding attributes) written deterministically (no HDF5 timestamps, so
 * equal inputs give byte-identical files), a reader that dequantizes into a tfm_model's
 * FP32 tensors, one that keeps bits 2/4 linears packed for the kernels, and the
 * one-block part files `upq ptq` commits as blocks finish.
 * Not the FP32-only writer (h5model.h), whose config/provenance layout it repeats. */
#ifndef UPQ_H5QMODEL_H
#define UPQ_H5QMODEL_H

#include <stdint.h>

#include "h5model.h"
#include "model.h"
#include "qlayer.h"

/* Linear p of layer l is ql[l*TFM_NPROJ + p], p in model.h's order (TFM_Q .. TFM_DOWN). */

/* Leaf module names in that order ("q_proj", ..., "down_proj"). */
const char *h5q_proj_name(int p);
/* HF name of linear p of layer l, e.g. "model.layers.3.self_attn.q_proj.weight". */
void h5q_hf_name(int64_t l, int p, char *out, size_t cap);

/* A named float64 vector stored under /ptq (per-block error tables). */
typedef struct {
    const char *name;
    int64_t n;
    const double *v;
} h5q_vec;

/* Writes the container at `path` (via path.tmp + rename): every parameter of m as float32
 * except the linear layers whose ql[l*TFM_NPROJ+p].data is non-NULL (ql may be NULL: FP32 only),
 * which are written quantized; plus the vectors under /ptq. prov->created must be set by
 * the caller (the writer adds no time, so the file is a function of its inputs). */
int h5q_write(const char *path, const tfm_model *m, const kq_qmat *ql, const h5m_provenance *prov,
              const h5q_vec *vecs, int n_vecs);

/* Reads a container, FP32 or quantized (dequantized into m, which is allocated here; free
 * with tfm_model_free). UPQ_EINPUT naming the file and group on anything malformed. */
int h5q_read(const char *path, tfm_model *m);
/* Reads a container for inference: quantized linears with bits 2 or 4 load as packed
 * kq_qmat (tfm_model_alloc_packed: blocks bit-exact from the file, no FP32 copy), the
 * rest as h5q_read does; *n_dequant counts quantized linears without a packed kernel
 * (bits 3/8), which are dequantized to FP32. An FP32 container gives an FP32 model. */
int h5q_read_packed(const char *path, tfm_model *m, int64_t *n_dequant);
/* Reads the quantized linear p of layer l into q (allocated; quant_qmat_free). *found = 0
 * when that layer is stored as float32. */
int h5q_read_layer(const char *path, int64_t l, int p, kq_qmat *q, int *found);

/* One block's part file: its TFM_NPROJ quantized linears, the errors before/after and the run's
 * parameter string (checked on resume). Written to path.tmp and renamed. */
int h5q_block_write(const char *path, int64_t l, const kq_qmat ql[TFM_NPROJ], double err_init,
                    double err_final, const char *params);
/* Reads it back; UPQ_EINPUT when it belongs to another layer or other parameters. */
int h5q_block_read(const char *path, int64_t l, kq_qmat ql[TFM_NPROJ], double *err_init,
                   double *err_final, const char *params);

#endif
