/* h5model.h - the upq HDF5 model container (prefix h5m_): one self-describing file
 * holding a tfm_model's config (attributes on /config), its FP32 tensors (one group per
 * module, HF names as attributes) and provenance (sources' SHA-256, upq version,
 * command line, creation time). Layout, including the planned packed INT2/INT4 layers:
 * docs/container.md. Files are written to "<path>.tmp", marked complete, then renamed. */
#ifndef UPQ_H5MODEL_H
#define UPQ_H5MODEL_H

#include <stdint.h>

#include "model.h"

#define H5M_FORMAT "upq-model"
#define H5M_FORMAT_VERSION 1
#define H5M_MAX_SOURCES 64 /* config, index, up to 61 weight shards, calibration data */

/* What made the file. Strings are NUL-terminated; empty ones are written as "". */
typedef struct {
    int n_sources;
    char source[H5M_MAX_SOURCES][512];       /* input files (config.json, *.safetensors, ...) */
    char source_sha256[H5M_MAX_SOURCES][65]; /* lowercase hex SHA-256 of each */
    char method[64];                         /* "fp32", "ptq-int4", "qat-int2", "demo" ... */
    char params[1024];                       /* the method's parameters, e.g. JSON */
    char command[2048];                      /* the command line */
    char created[32];                        /* ISO 8601 UTC; h5m_prov_stamp fills it when "" */
    char upq_version[32];                    /* filled by h5m_prov_stamp */
} h5m_provenance;

/* Zeroes *p and records method and the command line (argv joined by spaces, truncated
 * with "..." when too long). argv may be NULL. */
void h5m_prov_init(h5m_provenance *p, const char *method, int argc, char *const *argv);
/* Appends a source file and its SHA-256 (64 lowercase hex digits, e.g. from
 * sha256_file in src/base/sha256.h); UPQ_EINPUT for a malformed digest. Adding more than
 * H5M_MAX_SOURCES is a bug (assert). */
int h5m_prov_add_source(h5m_provenance *p, const char *path, const char *sha256_hex);
/* Hashes `path` (sha256_file) and appends it: UPQ_EINPUT/UPQ_EIO naming the file. */
int h5m_prov_add_file(h5m_provenance *p, const char *path);
/* Appends every file that defines an HF model folder DIR: config.json, then either
 * model.safetensors or model.safetensors.index.json followed by each weight shard it
 * names (model-0000k-of-0000n.safetensors), in shard-name order. UPQ_EINPUT naming DIR
 * when the folder does not open or has more shards than room is left. */
int h5m_prov_add_model_dir(h5m_provenance *p, const char *dir);

/* Fills upq_version, and created (now, UTC) when it is "". h5m_write does it itself. */
void h5m_prov_stamp(h5m_provenance *p);
/* Writes `m` (FP32 tensors) with `prov` (may be NULL) to `path`, atomically (path.tmp,
 * then ss_commit). UPQ_EIO naming the file and dataset on failure; the temp file is
 * removed then. Serial. */
int h5m_write(const char *path, const tfm_model *m, const h5m_provenance *prov);
/* The begin half of a collective write: every rank of comm (par_comm_world()) calls it
 * with the same model and the same stamped provenance (h5m_prov_stamp on one rank,
 * then shared: prov->created must be set), and only the rank with writer != 0
 * contributes the data; the file is written to `tmp` (ss_tmp_name of the path) and
 * closed, not renamed. The caller agrees on the outcome and commits: par_commit
 * (mpi/par.h) with ss_commit / ss_abort (stage_state.h). comm NULL: serial. */
int h5m_write_begin(const char *tmp, const tfm_model *m, const h5m_provenance *prov, void *comm, int writer);

/* Reads the config only (cheap: no tensors). UPQ_EINPUT when the file is not an HDF5
 * file, not an upq model, of a newer format version, or incomplete. */
int h5m_read_config(const char *path, tfm_config *cfg);
/* Reads the provenance only (FP32 or quantized container). */
int h5m_read_provenance(const char *path, h5m_provenance *prov);
/* Allocates and reads the whole model (tfm_model_alloc; caller frees with tfm_model_free),
 * and the provenance when prov != NULL. comm: NULL (serial), or par_comm_world() to read
 * collectively with MPI-IO. */
int h5m_read(const char *path, tfm_model *m, h5m_provenance *prov, void *comm);

/* The container path of a parameter from its HF name, e.g.
 * "model.layers.3.self_attn.q_proj.weight" -> "/model/layers/03/q_proj/weight".
 * UPQ_EINPUT for a name outside the llama family's list. */
int h5m_path_of(const char *hf_name, char *path, size_t cap);

#endif
