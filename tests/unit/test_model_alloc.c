/* test_model_alloc.c - the parameter size table: count, carving and the HF name list agree. */
#include <string.h>

#include "model.h"
#include "test_util.h"
#include "upq_err.h"

static int visit(void *ctx, const char *name, float *data, int ndim, const int64_t shape[2])
{
    int64_t *acc = ctx;
    acc[0] += ndim == 1 ? shape[0] : shape[0] * shape[1];
    acc[1]++;
    for (int64_t i = 0; i < (ndim == 1 ? shape[0] : shape[0] * shape[1]); i++) data[i] += 1.0f;
    (void)name;
    return 0;
}

int main(void)
{
    for (int tie = 0; tie < 2; tie++)
        for (int bias = 0; bias < 2; bias++) {
            tfm_config c = {.V = 50, .C = 16, .F = 40, .L = 3, .H = 4, .KV = 2, .D = 4, .max_T = 64,
                            .rope_theta = 1e4, .norm_eps = 1e-5, .tie_embeddings = tie, .qkv_bias = bias};
            CHECK_OK(tfm_config_check(&c, "test"));
            tfm_model m;
            CHECK_OK(tfm_model_alloc(&m, &c));
            int64_t acc[2] = {0, 0};
            CHECK_OK(tfm_params_foreach(&m, visit, acc));
            CHECK(acc[0] == m.n_params);
            CHECK(acc[1] == 2 + 3 * (9 + 3 * bias) + !tie);
            /* every float visited exactly once: no overlap, no gap */
            for (int64_t i = 0; i < m.n_params; i++) CHECK(m.mem[i] == 1.0f);
            tfm_model_free(&m);
        }
    tfm_config bad = {.V = 50, .C = 16, .F = 40, .L = 3, .H = 3, .KV = 2, .D = 4, .max_T = 64,
                      .rope_theta = 1e4, .norm_eps = 1e-5};
    CHECK(tfm_config_check(&bad, "bad") == UPQ_EINPUT);
    CHECK(strstr(upq_errmsg(), "num_key_value_heads") != NULL);
    return tu_finish("test_model_alloc");
}
