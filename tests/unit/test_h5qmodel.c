/* test_h5qmodel.c - the quantized container: write/read round trip (quantized layers come
 * back as their dequantized weights, everything else bit-exact, the config as
 * h5m_read_config reads it), byte-identical files from equal inputs written at different
 * times, an FP32-only file readable by h5m_read, mixed bits, and block part files
 * (round trip, wrong parameters refused). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5model.h"
#include "h5qmodel.h"
#include "quant.h"
#include "rand_model.h"
#include "test_util.h"
#include "upq_err.h"

static char *slurp(const char *path, long *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)*n);
    if (fread(b, 1, (size_t)*n, f) != (size_t)*n) *n = -1;
    fclose(f);
    return b;
}

static float *weight_of(tfm_model *m, int64_t l, int p)
{
    tfm_layer *w = &m->layers[l];
    float *ws[TFM_NPROJ] = {w->wq, w->wk, w->wv, w->wo, w->w_gate, w->w_up, w->w_down};
    return ws[p];
}

int main(void)
{
    char dir[] = "/tmp/test_h5qmodel_XXXXXX", p1[256], p2[256], pb[256];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(p1, sizeof p1, "%s/a.h5", dir);
    snprintf(p2, sizeof p2, "%s/b.h5", dir);
    snprintf(pb, sizeof pb, "%s/block.h5", dir);
    tfm_config c = rm_config(0, 0);
    tfm_model m, r;
    CHECK_OK(tfm_model_alloc(&m, &c));
    rm_model_init(&m);
    kq_qmat *ql = calloc((size_t)(c.L * TFM_NPROJ), sizeof *ql);
    int bits[] = {2, 3, 4, 8}, groups[] = {32, 0, 64, 128};
    for (int64_t l = 0; l < c.L; l++)
        for (int p = 0; p < TFM_NPROJ; p++) {
            int64_t N = p == 3 || p == 6 ? c.C : p == 4 || p == 5 ? c.F : p == 0 ? c.H * c.D : c.KV * c.D;
            int64_t K = p == 3 ? c.H * c.D : p == 6 ? c.F : c.C;
            kq_qmat *q = &ql[l * TFM_NPROJ + p];
            CHECK_OK(quant_qmat_init(q, bits[(l * TFM_NPROJ + p) % 4], groups[p % 4], N, K));
            quant_rtn(q, weight_of(&m, l, p), K, NULL, NULL, 0);
        }
    h5m_provenance prov;
    h5m_prov_init(&prov, "ptq-rtn", 0, NULL);
    snprintf(prov.created, sizeof prov.created, "2026-01-01T00:00:00Z");
    double ev[2] = {1.5, 0.25};
    h5q_vec vec = {"err_init", 2, ev};
    CHECK_OK(h5q_write(p1, &m, ql, &prov, &vec, 1));
    sleep(1); /* HDF5 time stamps would differ now */
    CHECK_OK(h5q_write(p2, &m, ql, &prov, &vec, 1));
    long n1 = 0, n2 = 0;
    char *b1 = slurp(p1, &n1), *b2 = slurp(p2, &n2);
    CHECK(b1 && b2 && n1 == n2 && n1 > 0 && !memcmp(b1, b2, (size_t)n1));
    free(b1), free(b2);
    tfm_config rc;
    CHECK_OK(h5m_read_config(p1, &rc));
    CHECK(rc.C == c.C && rc.F == c.F && rc.L == c.L && rc.KV == c.KV && rc.qkv_bias == 1 && !strcmp(rc.arch, c.arch));
    CHECK_OK(h5q_read(p1, &r));
    /* expected: the model with each linear replaced by its dequantization */
    for (int64_t l = 0; l < c.L; l++)
        for (int p = 0; p < TFM_NPROJ; p++) quant_dequant(&ql[l * TFM_NPROJ + p], weight_of(&m, l, p), ql[l * TFM_NPROJ + p].K);
    CHECK(r.n_params == m.n_params && !memcmp(r.mem, m.mem, (size_t)m.n_params * sizeof(float)));
    kq_qmat one;
    int found = 0;
    CHECK_OK(h5q_read_layer(p1, 1, 6, &one, &found));
    CHECK(found && one.bits == ql[13].bits && one.group == ql[13].group &&
          !memcmp(one.data, ql[13].data, quant_qmat_bytes(&one)));
    if (found) quant_qmat_free(&one);
    tfm_model_free(&r);
    /* FP32 only: D's reader agrees */
    CHECK_OK(h5q_write(p2, &m, NULL, &prov, NULL, 0));
    CHECK_OK(h5m_read(p2, &r, NULL, NULL));
    CHECK(!memcmp(r.mem, m.mem, (size_t)m.n_params * sizeof(float)));
    tfm_model_free(&r);
    /* block parts */
    kq_qmat back[TFM_NPROJ];
    double e0 = 0, e1 = 0;
    CHECK_OK(h5q_block_write(pb, 1, ql + TFM_NPROJ, 2.5, 0.5, "{\"bits\": 4}"));
    CHECK_OK(h5q_block_read(pb, 1, back, &e0, &e1, "{\"bits\": 4}"));
    CHECK(e0 == 2.5 && e1 == 0.5);
    for (int p = 0; p < TFM_NPROJ; p++) {
        const kq_qmat *a = &ql[TFM_NPROJ + p];
        CHECK(back[p].bits == a->bits && back[p].group == a->group &&
              !memcmp(back[p].data, a->data, quant_qmat_bytes(a)));
        quant_qmat_free(&back[p]);
    }
    CHECK(h5q_block_read(pb, 1, back, &e0, &e1, "{\"bits\": 2}") == UPQ_EINPUT);
    CHECK(h5q_block_read(pb, 0, back, &e0, &e1, "{\"bits\": 4}") == UPQ_EINPUT);
    for (int64_t i = 0; i < c.L * TFM_NPROJ; i++) quant_qmat_free(&ql[i]);
    free(ql);
    tfm_model_free(&m);
    unlink(p1), unlink(p2), unlink(pb), rmdir(dir);
    return tu_finish("test_h5qmodel");
}
