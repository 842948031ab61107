/* test_nonfinite_weights.c - a model file holding one NaN or Inf weight is refused, not
 * loaded: hf_model_load (safetensors, F16 and F32, one file and shards) and h5m_read
 * return UPQ_EINPUT (exit 2 in the CLI) with a message naming the file, the tensor and
 * the first bad element; the same models without the bad value load. A quantized
 * container (h5q) whose q_proj has one NaN fp16 scale is refused by h5q_read (the
 * dequantized weights) and h5q_read_packed (the scales themselves). With an argument
 * DIR it only writes DIR, a one-file F32 safetensors model with a NaN at element 7 of
 * model.layers.1.self_attn.q_proj.weight (tests/e2e/nonfinite_weights.sh uses it). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "h5model.h"
#include "h5qmodel.h"
#include "hf_model.h"
#include "rand_model.h"
#include "quant.h"
#include "safetensors.h"
#include "test_util.h"
#include "upq_err.h"

#define BAD_TENSOR "model.layers.1.self_attn.q_proj.weight"
#define BAD_INDEX 7

typedef struct {
    const char *name;
    float *data;
} find_ctx;

static int find_param(void *ctx, const char *name, float *data, int ndim, const int64_t shape[2])
{
    find_ctx *f = ctx;
    if (!strcmp(name, f->name)) f->data = data;
    return UPQ_OK;
}

static float *param(tfm_model *m, const char *name)
{
    find_ctx f = {name, NULL};
    tfm_params_foreach(m, find_param, &f);
    UPQ_ASSERT(f.data);
    return f.data;
}

/* Loading `dir` fails with UPQ_EINPUT and a message holding each of the needles. */
static void expect_refused(const char *dir, const char *n1, const char *n2, const char *n3)
{
    tfm_model got;
    upq_err_clear();
    int rc = hf_model_load(dir, &got);
    const char *msg = upq_errmsg();
    CHECK_MSG(rc == UPQ_EINPUT, "%s: loaded with rc %d (expected %d)", dir, rc, UPQ_EINPUT);
    if (rc == UPQ_OK) tfm_model_free(&got);
    CHECK_MSG(strstr(msg, n1) && strstr(msg, n2) && strstr(msg, n3), "message '%s' lacks '%s', '%s' or '%s'", msg,
              n1, n2, n3);
    printf("  refused: %s\n", msg);
}

static void write_hf(const char *dir, const tfm_model *m, int dtype, int nshards)
{
    mkdir(dir, 0755);
    CHECK_OK(hf_model_write(dir, m, dtype, nshards));
}

int main(int argc, char **argv)
{
    tfm_config c = rm_config(0, 0);
    c.qkv_bias = 0; /* a plain LlamaForCausalLM: the HF writer has no q/k/v biases */
    tfm_model m;
    CHECK_OK(tfm_model_alloc(&m, &c));
    rm_model_init(&m);
    float *q = param(&m, BAD_TENSOR), *down = param(&m, "model.layers.1.mlp.down_proj.weight");
    if (argc > 1) { /* for the e2e test: the folder only */
        q[BAD_INDEX] = NAN;
        write_hf(argv[1], &m, ST_F32, 1);
        tfm_model_free(&m);
        return tu_finish("test_nonfinite_weights (writer)");
    }
    char tmpl[] = "/tmp/upq_nonfinite_XXXXXX", p[4200];
    const char *W = mkdtemp(tmpl);
    UPQ_ASSERT(W);

    /* the control: the clean model loads from every writer */
    snprintf(p, sizeof p, "%s/clean", W);
    write_hf(p, &m, ST_F16, 1);
    tfm_model got;
    CHECK_OK(hf_model_load(p, &got));
    tfm_model_free(&got);

    /* one NaN: F16 and F32 files */
    float keep = q[BAD_INDEX];
    q[BAD_INDEX] = NAN;
    snprintf(p, sizeof p, "%s/nan_f16", W);
    write_hf(p, &m, ST_F16, 1);
    expect_refused(p, "nan_f16/model.safetensors", BAD_TENSOR, "element 7 is nan");
    snprintf(p, sizeof p, "%s/nan_f32", W);
    write_hf(p, &m, ST_F32, 1);
    expect_refused(p, "nan_f32/model.safetensors", BAD_TENSOR, "element 7 is nan");
    q[BAD_INDEX] = keep;

    /* -Inf in a later tensor of a 3-shard copy: the message names its shard */
    down[123] = -INFINITY;
    snprintf(p, sizeof p, "%s/inf_sharded", W);
    write_hf(p, &m, ST_F16, 3);
    expect_refused(p, "-of-00003.safetensors", "model.layers.1.mlp.down_proj.weight", "element 123 is -inf");
    /* and +Inf in BF16 */
    down[123] = INFINITY;
    snprintf(p, sizeof p, "%s/inf_bf16", W);
    write_hf(p, &m, ST_BF16, 1);
    expect_refused(p, "inf_bf16/model.safetensors", "down_proj", "element 123 is inf");

    /* the HDF5 FP32 container: the same refusal from h5m_read */
    snprintf(p, sizeof p, "%s/inf.h5", W);
    CHECK_OK(h5m_write(p, &m, NULL));
    upq_err_clear();
    int rc = h5m_read(p, &got, NULL, NULL);
    CHECK_MSG(rc == UPQ_EINPUT, "h5m_read of a model with Inf: rc %d", rc);
    if (rc == UPQ_OK) tfm_model_free(&got);
    CHECK_MSG(strstr(upq_errmsg(), "inf.h5") && strstr(upq_errmsg(), "down_proj") &&
                  strstr(upq_errmsg(), "element 123 is inf"),
              "message '%s'", upq_errmsg());
    printf("  refused: %s\n", upq_errmsg());
    down[123] = 0.5f;
    snprintf(p, sizeof p, "%s/clean.h5", W);
    CHECK_OK(h5m_write(p, &m, NULL));
    CHECK_OK(h5m_read(p, &got, NULL, NULL));
    tfm_model_free(&got);

    /* a quantized container: layer 0's q_proj at 4 bits per channel, one NaN fp16 scale */
    kq_qmat *ql = calloc((size_t)(c.L * TFM_NPROJ), sizeof *ql);
    CHECK_OK(quant_qmat_init(&ql[0], 4, 0, c.H * c.D, c.C));
    quant_rtn(&ql[0], param(&m, "model.layers.0.self_attn.q_proj.weight"), c.C, NULL, NULL, 0);
    h5m_provenance prov;
    memset(&prov, 0, sizeof prov);
    snprintf(prov.created, sizeof prov.created, "2026-01-01T00:00:00Z");
    snprintf(p, sizeof p, "%s/q_clean.h5", W);
    CHECK_OK(h5q_write(p, &m, ql, &prov, NULL, 0));
    int64_t ndq = 0;
    CHECK_OK(h5q_read(p, &got));
    tfm_model_free(&got);
    CHECK_OK(h5q_read_packed(p, &got, &ndq));
    tfm_model_free(&got);
    kq_params_set(&ql[0], 5, 0, 0x7e00, kq_offset_get(&ql[0], 5, 0)); /* row 5, block 0: NaN */
    snprintf(p, sizeof p, "%s/q_nan.h5", W);
    CHECK_OK(h5q_write(p, &m, ql, &prov, NULL, 0));
    upq_err_clear();
    rc = h5q_read(p, &got);
    CHECK_MSG(rc == UPQ_EINPUT && strstr(upq_errmsg(), "q_nan.h5") && strstr(upq_errmsg(), "q_proj") &&
                  strstr(upq_errmsg(), "is nan"),
              "h5q_read: rc %d, '%s'", rc, upq_errmsg());
    if (rc == UPQ_OK) tfm_model_free(&got);
    printf("  refused: %s\n", upq_errmsg());
    upq_err_clear();
    rc = h5q_read_packed(p, &got, &ndq);
    CHECK_MSG(rc == UPQ_EINPUT && strstr(upq_errmsg(), "q_proj/scales") && strstr(upq_errmsg(), "element 5 is nan"),
              "h5q_read_packed: rc %d, '%s'", rc, upq_errmsg());
    if (rc == UPQ_OK) tfm_model_free(&got);
    printf("  refused: %s\n", upq_errmsg());
    quant_qmat_free(&ql[0]);
    free(ql);

    tfm_model_free(&m);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", W);
    CHECK(system(cmd) == 0);
    return tu_finish("test_nonfinite_weights");
}
