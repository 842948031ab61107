/* qat_init.c - the init model of `upq qat`, read per pipeline stage (qat_pipe.h,
 * docs/qat.md "Memory per rank"): an HF folder is opened and validated on every rank, the
 * model's memory allocated (calloc: pages nobody writes stay unmapped), and each rank then
 * converts only what it computes with - its stage's layers, the embedding on a first stage,
 * the final norm and head on a last one; world rank 0, which writes the container, also
 * the final norm and head (the other stages' layers reach it at the end, gather_student in
 * qat.c). A container (.h5) is still read whole on every rank. Not the student (qat.c). */
#include "qat_pipe.h"

#include <sys/stat.h>

#include "ppl.h"
#include "upq_err.h"

int qat_init_open(const char *path, tfm_model *m, hf_model_files **hf)
{
    *hf = NULL;
    struct stat st;
    if (stat(path, &st) != 0) return UPQ_FAIL(UPQ_EINPUT, "%s: no such model folder or file", path);
    if (S_ISREG(st.st_mode)) return ppl_load_model(path, m); /* dequantized whole */
    TRY(hf_model_open(path, hf));
    int rc = tfm_model_alloc(m, hf_model_config(*hf));
    if (rc) hf_model_close(*hf), *hf = NULL;
    return rc;
}

int qat_init_read(hf_model_files *hf, tfm_model *m, int64_t l0, int64_t l1, int first, int last, int all)
{
    if (!hf) return UPQ_OK;
    int rc = all ? hf_model_read_range(hf, m, 0, m->cfg.L, 1, 1) : hf_model_read_range(hf, m, l0, l1, first, last);
    hf_model_close(hf);
    return rc;
}
