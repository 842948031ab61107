/* test_export_gptq.c - `upq export --format gptq` against a GPTQ dequantizer written here
 * from the published format (AutoGPTQ / transformers "gptq" checkpoints, docs/export.md),
 * not from io/export_gptq.c: a plain safetensors parser (8-byte header length, JSON header,
 * little-endian data), an IEEE fp16 decoder (export_read.h, shared with test_export_gguf.c),
 * and per linear
 *   q(n,k) = (qweight[k/P][n] >> (B*(k%P))) & (2^B-1),      P = 32/B
 *   z(g,n) = ((qzeros[g][n/P] >> (B*(n%P))) & (2^B-1)) + 1 (v1) or + 0 (v2)
 *   w(n,k) = scales[g_idx[k]][n] * (q(n,k) - z(g_idx[k],n)).
 * Reference: the container's own dequantization w = s*q + m (h5q_read).
 * Cases on tinyllama-15m RTN W2 g32 (`upq ptq` run here):
 *   asym grid, gptq_v2: every weight within the fp16 rounding of m = fp16(-s*z) (bound below);
 *   asym grid, v1 (default): groups with z = 0 cannot be stored (qzeros hold z-1): exit 2,
 *     and with --force-requantize every weight within s/2 of the container's (s: the
 *     exported scale, re-fitted for those groups);
 *   seq grid (z = 1.5): exit 2 naming a layer without the flag; with it, within s/2;
 *   W4 per output channel (group_size -1), gptq_v2: exact as above.
 * Needs env UPQ (ctest sets it) and ../shared; skips (77) otherwise. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "export_read.h"
#include "h5qmodel.h"
#include "model.h"
#include "test_util.h"
#include "upq_err.h"

static char root[] = "/tmp/upq_export_gptq_XXXXXX";

typedef struct {
    uint8_t *buf;
    size_t n, base; /* base: offset of the data section */
    json_t *hdr;
} sfile;

static int sf_open(const char *path, sfile *f)
{
    f->buf = ex_slurp(path, &f->n);
    if (!f->buf || f->n < 8) return 1;
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)f->buf[i] << (8 * i);
    f->base = 8 + hl;
    json_error_t e;
    f->hdr = json_loadb((const char *)f->buf + 8, hl, 0, &e);
    return f->hdr ? 0 : 1;
}

/* Data of tensor `name` if its dtype and 1-2 dims match (d1 = 0: 1-D), else NULL. */
static const uint8_t *sf_get(const sfile *f, const char *name, const char *dtype, int64_t d0, int64_t d1)
{
    json_t *t = json_object_get(f->hdr, name);
    if (!t) {
        fprintf(stderr, "FAIL: tensor %s missing\n", name);
        return NULL;
    }
    json_t *sh = json_object_get(t, "shape");
    int nd = (int)json_array_size(sh);
    int ok = !strcmp(json_string_value(json_object_get(t, "dtype")), dtype) && nd == (d1 ? 2 : 1) &&
             json_integer_value(json_array_get(sh, 0)) == d0 && (!d1 || json_integer_value(json_array_get(sh, 1)) == d1);
    if (!ok) {
        fprintf(stderr, "FAIL: tensor %s: dtype/shape differ from %s (%lld, %lld)\n", name, dtype, (long long)d0, (long long)d1);
        return NULL;
    }
    size_t off = (size_t)json_integer_value(json_array_get(json_object_get(t, "data_offsets"), 0));
    return f->buf + f->base + off;
}

static int32_t rd32(const uint8_t *p, int64_t i)
{
    return (int32_t)((uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24);
}
static uint16_t rd16(const uint8_t *p, int64_t i) { return (uint16_t)(p[2 * i] | p[2 * i + 1] << 8); }

/* Compares every linear of dir/model.safetensors (dequantized as above) with m.
 * mode 0: within the fp16 rounding of m; mode 1: within s/2 (requantized). */
static void compare(const char *dir, tfm_model *m, int bits, int group, int v2, int mode, const char *label)
{
    char path[700];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    sfile f = {0};
    if (sf_open(path, &f)) {
        CHECK_MSG(0, "%s: cannot parse %s", label, path);
        return;
    }
    int P = 32 / bits, maxq = (1 << bits) - 1;
    double worst = 0, worst_ratio = 0;
    int64_t n_exact = 0, n_all = 0;
    for (int64_t l = 0; l < m->cfg.L; l++)
        for (int p = 0; p < TFM_NPROJ; p++) {
            int64_t N, K;
            tfm_proj_shape(&m->cfg, p, &N, &K);
            int64_t G = group > 0 ? K / group : 1; /* group_size -1: per output channel */
            char wname[128], base[128], tn[200];
            h5q_hf_name(l, p, wname, sizeof wname);
            snprintf(base, sizeof base, "%.*s", (int)(strlen(wname) - 7), wname);
            const float *wm = ex_param(m, wname);
            snprintf(tn, sizeof tn, "%s.qweight", base);
            const uint8_t *qw = sf_get(&f, tn, "I32", K / P, N);
            snprintf(tn, sizeof tn, "%s.qzeros", base);
            const uint8_t *qz = sf_get(&f, tn, "I32", G, N / P);
            snprintf(tn, sizeof tn, "%s.scales", base);
            const uint8_t *sc = sf_get(&f, tn, "F16", G, N);
            snprintf(tn, sizeof tn, "%s.g_idx", base);
            const uint8_t *gi = sf_get(&f, tn, "I32", K, 0);
            CHECK_MSG(qw && qz && sc && gi && wm, "%s: %s: tensors missing or malformed", label, base);
            if (!(qw && qz && sc && gi && wm)) continue;
            for (int64_t n = 0; n < N; n++)
                for (int64_t k = 0; k < K; k++) {
                    int32_t g = rd32(gi, k);
                    int q = (int)(((uint32_t)rd32(qw, (k / P) * N + n) >> (bits * (k % P))) & (uint32_t)maxq);
                    int z = (int)(((uint32_t)rd32(qz, (int64_t)g * (N / P) + n / P) >> (bits * (n % P))) & (uint32_t)maxq) + (v2 ? 0 : 1);
                    float s = ex_half(rd16(sc, (int64_t)g * N + n));
                    float w = s * (float)(q - z), ref = wm[n * K + k];
                    double d = fabs((double)w - ref);
                    /* m = fp16(-s*z) is within fp16's unit roundoff (2^-11 relative, 2^-25
                     * absolute for subnormals) of -s*z; plus the fp32 rounding of both products. */
                    double tol = mode == 0 ? ldexp(fabs((double)s * z), -11) + ldexp(1, -25) + ldexp((double)s * maxq + fabs(ref), -22)
                                           : 0.5 * s + ldexp((double)s * maxq + fabs(ref), -20);
                    double r = tol > 0 ? d / tol : (d > 0 ? INFINITY : 0);
                    if (!(r <= worst_ratio)) worst_ratio = isnan(r) ? NAN : tu_max(worst_ratio, r);
                    worst = tu_max(worst, d);
                    n_exact += d == 0;
                    n_all++;
                }
        }
    printf("%s: %lld weights, max |w_gptq - w_container| %.3g, %.4f%% bit-equal, worst error/bound %.3f\n", label,
           (long long)n_all, worst, 100.0 * n_exact / (n_all ? n_all : 1), worst_ratio);
    CHECK_MSG(n_all > 0, "%s: no weights compared", label);
    EXPECT_CLOSE(worst_ratio, 1.0, "%s: a weight outside its bound (worst error/bound %g)", label, worst_ratio);
    /* The non-quantized tensors: fp16 of the container's fp32. */
    const uint8_t *emb = sf_get(&f, "model.embed_tokens.weight", "F16", m->cfg.V, m->cfg.C);
    CHECK_MSG(emb != NULL, "%s: embed_tokens", label);
    double e_rel = 0; /* error / (half an fp16 ulp: 2^-11 relative, 2^-25 for subnormals) */
    for (int64_t i = 0; emb && i < m->cfg.V * m->cfg.C; i++)
        e_rel = tu_max(e_rel, fabs(ex_half(rd16(emb, i)) - m->tok_emb[i]) / (ldexp(fabs(m->tok_emb[i]), -11) + ldexp(1, -25)));
    EXPECT_CLOSE(e_rel, 1.0, "%s: embed_tokens fp16 error / bound %g", label, e_rel);
    json_decref(f.hdr);
    free(f.buf);
}

static int qconfig_ok(const char *dir, int bits, int group, const char *fmt)
{
    char path[700];
    snprintf(path, sizeof path, "%s/config.json", dir);
    json_error_t e;
    json_t *c = json_load_file(path, 0, &e), *q = json_object_get(c, "quantization_config");
    int ok = q && !strcmp(json_string_value(json_object_get(q, "quant_method")), "gptq") &&
             json_integer_value(json_object_get(q, "bits")) == bits &&
             json_integer_value(json_object_get(q, "group_size")) == group &&
             json_is_false(json_object_get(q, "desc_act")) && json_is_false(json_object_get(q, "sym")) &&
             !strcmp(json_string_value(json_object_get(q, "checkpoint_format")), fmt);
    json_decref(c);
    return ok;
}

int main(void)
{
    const char *upq = ex_upq();
    if (!upq) return TEST_SKIP_RC;
    const char *sh = tu_shared_dir();
    if (!mkdtemp(root)) return 1;
    char cmd[3000], a[700], s[700], out[700];
    snprintf(a, sizeof a, "%s/asym.h5", root);
    snprintf(s, sizeof s, "%s/seq.h5", root);
    const char *grids[2] = {"asym", "seq"};
    for (int i = 0; i < 2; i++) {
        snprintf(cmd, sizeof cmd,
                 "'%s' ptq --model '%s/models/tinyllama-15m' --calib '%s/data/tinyshakespeare/input.txt' --bits 2 "
                 "--group 32 --method rtn --grid %s --calib-samples 2 --seq-len 64 --out '%s' >/dev/null 2>&1",
                 upq, sh, sh, grids[i], i ? s : a);
        CHECK_MSG(ex_run(cmd) == 0, "ptq %s", grids[i]);
    }
    tfm_model ma = {0}, ms = {0};
    CHECK_OK(h5q_read(a, &ma));
    CHECK_OK(h5q_read(s, &ms));
    if (tu_failures) return tu_finish("test_export_gptq");

    /* asym, v2: exact */
    snprintf(out, sizeof out, "%s/asym_v2", root);
    snprintf(cmd, sizeof cmd, "'%s' export --model '%s' --format gptq --checkpoint-format gptq_v2 --out '%s'", upq, a, out);
    CHECK_MSG(ex_run(cmd) == 0, "export asym gptq_v2");
    CHECK_MSG(qconfig_ok(out, 2, 32, "gptq_v2"), "asym_v2 quantization_config");
    compare(out, &ma, 2, 32, 1, 0, "asym W2g32 gptq_v2");

    /* asym, v1: z = 0 groups refused; requantized within s/2 */
    snprintf(out, sizeof out, "%s/asym_v1", root);
    snprintf(cmd, sizeof cmd, "'%s' export --model '%s' --format gptq --out '%s' 2>'%s/err_v1'", upq, a, out, root);
    CHECK_MSG(ex_run(cmd) == 2, "export asym v1 with z = 0 groups: exit 2");
    CHECK_MSG(access(out, F_OK) != 0, "a refused export left %s", out);
    snprintf(cmd, sizeof cmd, "'%s' export --model '%s' --format gptq --force-requantize --out '%s' >/dev/null", upq, a, out);
    CHECK_MSG(ex_run(cmd) == 0, "export asym v1 --force-requantize");
    CHECK_MSG(qconfig_ok(out, 2, 32, "gptq"), "asym_v1 quantization_config");
    compare(out, &ma, 2, 32, 0, 1, "asym W2g32 gptq (v1) requantized");

    /* seq: refused naming a layer; requantized within s/2 */
    snprintf(out, sizeof out, "%s/seq", root);
    snprintf(cmd, sizeof cmd, "'%s' export --model '%s' --format gptq --checkpoint-format gptq_v2 --out '%s' 2>'%s/err_seq'", upq, s, out, root);
    CHECK_MSG(ex_run(cmd) == 2, "export seq grid: exit 2");
    snprintf(cmd, sizeof cmd, "grep -q 'model.layers.0.self_attn.q_proj.weight.*1.5' '%s/err_seq'", root);
    CHECK_MSG(ex_run(cmd) == 0, "seq refusal names the layer and z = 1.5");
    snprintf(cmd, sizeof cmd, "'%s' export --model '%s' --format gptq --checkpoint-format gptq_v2 --force-requantize --out '%s' >'%s/out_seq'", upq, s, out, root);
    CHECK_MSG(ex_run(cmd) == 0, "export seq --force-requantize");
    snprintf(cmd, sizeof cmd, "test $(grep -c '^export: requantized .* max .* rms ' '%s/out_seq') = %lld", root, (long long)(ms.cfg.L * TFM_NPROJ));
    CHECK_MSG(ex_run(cmd) == 0, "a requantization report per layer");
    compare(out, &ms, 2, 32, 1, 1, "seq W2g32 requantized");

    /* W4 per output channel (group_size -1, 4-bit packing), gptq_v2: exact */
    char c4[700];
    snprintf(c4, sizeof c4, "%s/w4ch.h5", root);
    snprintf(cmd, sizeof cmd,
             "'%s' ptq --model '%s/models/tinyllama-15m' --calib '%s/data/tinyshakespeare/input.txt' --bits 4 "
             "--group 0 --method rtn --calib-samples 2 --seq-len 64 --out '%s' >/dev/null 2>&1",
             upq, sh, sh, c4);
    CHECK_MSG(ex_run(cmd) == 0, "ptq W4 per channel");
    tfm_model m4 = {0};
    CHECK_OK(h5q_read(c4, &m4));
    snprintf(out, sizeof out, "%s/w4ch", root);
    snprintf(cmd, sizeof cmd, "'%s' export --model '%s' --format gptq --checkpoint-format gptq_v2 --out '%s'", upq, c4, out);
    CHECK_MSG(ex_run(cmd) == 0, "export W4 per channel gptq_v2");
    CHECK_MSG(qconfig_ok(out, 4, -1, "gptq_v2"), "w4ch quantization_config");
    if (m4.layers) compare(out, &m4, 4, 0, 1, 0, "asym W4 per-channel gptq_v2");
    tfm_model_free(&m4);

    tfm_model_free(&ma);
    tfm_model_free(&ms);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (!tu_failures && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    return tu_finish("test_export_gptq");
}
