/* gguf_ggml_check.c - a GGUF written by `upq export --format gguf`, read by ggml's own gguf
 * parser (gguf_init_from_file) and every tensor dequantized by ggml's to_float
 * (dequantize_row_q4_0/q4_1/q2_K, fp16->fp32), against upq's decoder (src/quant/ggml_quant.c)
 * on the same bytes: the number of weights that differ and the largest difference, per type.
 * Built outside the project against ggml from source (never vendored), by
 * tests/bench/gguf_ggml_check.sh. Usage: gguf_ggml_check FILE.gguf */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ggml.h"
#include "ggml_quant.h"
#include "gguf.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FILE.gguf\n", argv[0]);
        return 1;
    }
    struct ggml_context *ctx = NULL;
    struct gguf_init_params ip = {.no_alloc = false, .ctx = &ctx};
    struct gguf_context *g = gguf_init_from_file(argv[1], ip);
    if (!g) {
        fprintf(stderr, "%s: ggml's gguf parser refused the file\n", argv[1]);
        return 2;
    }
    int64_t ka = gguf_find_key(g, "general.architecture");
    printf("ggml read %s: version %u, %lld KVs, %lld tensors, alignment %zu, architecture %s\n", argv[1],
           gguf_get_version(g), (long long)gguf_get_n_kv(g), (long long)gguf_get_n_tensors(g), gguf_get_alignment(g),
           ka >= 0 ? gguf_get_val_str(g, ka) : "(none)");
    long long differ[64] = {0}, count[64] = {0};
    double maxd[64] = {0};
    int bad = 0;
    for (int64_t i = 0; i < gguf_get_n_tensors(g); i++) {
        const char *name = gguf_get_tensor_name(g, i);
        struct ggml_tensor *t = ggml_get_tensor(ctx, name);
        int type = (int)t->type;
        int64_t K = t->ne[0], N = ggml_nrows(t);
        const struct ggml_type_traits *tr = ggml_get_type_traits(t->type);
        float *a = malloc((size_t)K * sizeof *a), *b = malloc((size_t)K * sizeof *b);
        for (int64_t r = 0; r < N; r++) {
            const char *row = (const char *)t->data + r * t->nb[1];
            if (type == GGML_TYPE_F32) memcpy(a, row, (size_t)K * 4);
            else tr->to_float(row, a, K);
            gq_decode_row(type, row, b, K);
            for (int64_t k = 0; k < K; k++) {
                double d = fabs((double)a[k] - b[k]);
                if (!(a[k] == b[k])) differ[type]++;
                if (!(d <= maxd[type])) maxd[type] = isnan(d) ? INFINITY : d;
            }
            count[type] += K;
        }
        free(a);
        free(b);
    }
    for (int ty = 0; ty < 64; ty++)
        if (count[ty]) {
            printf("  %-5s %10lld weights: %lld differ between ggml's dequantize and upq's decoder, max |d| %.3g\n",
                   ggml_type_name((enum ggml_type)ty), count[ty], differ[ty], maxd[ty]);
            bad |= differ[ty] != 0;
        }
    gguf_free(g);
    ggml_free(ctx);
    printf("%s\n", bad ? "FAIL: decoders differ" : "ok: bit-identical");
    return bad;
}
