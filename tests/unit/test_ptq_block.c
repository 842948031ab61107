/* test_ptq_block.c - ptq_block_forward reproduces tfm_forward's residual stream bit for
 * bit, block by block (random GQA model with q/k/v biases, default and llama3 RoPE). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "forward.h"
#include "ptq_block.h"
#include "rand_model.h"
#include "test_util.h"
#include "upq_err.h"

static void run(int llama3)
{
    tfm_config c = rm_config(0, llama3);
    c.L = 3;
    tfm_model m;
    CHECK_OK(tfm_model_alloc(&m, &c));
    rm_model_init(&m);
    int64_t T = 40;
    int32_t tok[40];
    for (int i = 0; i < T; i++) tok[i] = (i * 7 + 3) % (int)c.V;
    tfm_acts a;
    CHECK_OK(tfm_acts_alloc(&a, &c, 1, T, 1)); /* training: resid keeps every layer */
    float *hid = malloc((size_t)((c.L + 1) * T * c.C) * sizeof(float)), *out = malloc((size_t)(T * c.C) * sizeof(float));
    CHECK_OK(tfm_forward(&m, &a, tok, 1, T, hid));
    ptq_block_ws ws;
    CHECK_OK(ptq_block_ws_alloc(&ws, &c, T));
    for (int64_t l = 0; l < c.L; l++) {
        ptq_block_forward(&c, &m.layers[l], &ws, hid + l * T * c.C, out, T);
        const float *want = l + 1 < c.L ? hid + (l + 1) * T * c.C : a.resid + c.L * T * c.C;
        CHECK_MSG(!memcmp(out, want, (size_t)(T * c.C) * sizeof(float)), "llama3 %d: block %lld differs", llama3,
                  (long long)l);
    }
    ptq_block_ws_free(&ws);
    tfm_acts_free(&a);
    tfm_model_free(&m);
    free(hid), free(out);
}

int main(void)
{
    run(0);
    run(1);
    return tu_finish("test_ptq_block");
}
