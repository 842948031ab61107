/* test_hf_copies.c - tinyllama-15m (F16, ../shared) rewritten as a BF16 copy and a
 * 3-shard F16 copy with index.json (through st_write), then all three loaded:
 * the sharded copy equals the original bit for bit (loaded floats and raw tensor
 * bytes), the BF16 copy equals a plain-C round-to-nearest-even of the original.
 * With an argument DIR the copies are kept in DIR/{bf16,sharded} (e2e uses them);
 * without, they go to a temporary folder that is removed. Skips without ../shared. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hf_model.h"
#include "test_util.h"
#include "upq_err.h"

static float bf16_ref(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    u += 0x7fffu + ((u >> 16) & 1u); /* finite weights only: no NaN case needed */
    u &= 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

/* Raw bytes of every tensor of the copy equal the original's, and the index's
 * total_size is the sum of the tensor bytes. */
static void same_bytes(const char *orig_dir, const char *copy_dir)
{
    hf_model_files *a = NULL, *b = NULL;
    CHECK_OK(hf_model_open(orig_dir, &a));
    CHECK_OK(hf_model_open(copy_dir, &b));
    if (!a || !b) goto out;
    CHECK(hf_model_nfiles(b) == 3);
    const hf_tensor_ref *la, *lb;
    int na = hf_model_tensors(a, &la), nb = hf_model_tensors(b, &lb);
    CHECK(na == nb);
    int64_t total = 0, mism = 0;
    for (int i = 0; i < nb; i++) {
        const st_tensor *t = lb[i].t;
        total += (int64_t)t->nbytes;
        const st_tensor *o = NULL;
        for (int k = 0; k < na && !o; k++)
            if (!strcmp(la[k].t->name, t->name)) o = la[k].t;
        mism += !o || o->nbytes != t->nbytes || memcmp(o->data, t->data, t->nbytes);
    }
    CHECK_MSG(mism == 0, "%lld tensors differ in raw bytes", (long long)mism);
    char p[8192];
    snprintf(p, sizeof p, "%s/model.safetensors.index.json", copy_dir);
    json_t *idx = json_load_file(p, 0, NULL);
    CHECK(idx && json_integer_value(json_object_get(json_object_get(idx, "metadata"), "total_size")) == total);
    json_decref(idx);
out:
    hf_model_close(a);
    hf_model_close(b);
}

int main(int argc, char **argv)
{
    const char *sd = tu_shared_dir();
    char src[4096], root[4096], dbf[4200], dsh[4200];
    snprintf(src, sizeof src, "%s/models/tinyllama-15m", sd);
    int keep = argc > 1;
    if (keep) snprintf(root, sizeof root, "%s", argv[1]);
    else snprintf(root, sizeof root, "/tmp/upq_test_copies_XXXXXX");
    if (keep ? (mkdir(root, 0755) != 0 && access(root, W_OK) != 0) : !mkdtemp(root)) {
        fprintf(stderr, "cannot create %s\n", root);
        return 1;
    }
    snprintf(dbf, sizeof dbf, "%s/bf16", root);
    snprintf(dsh, sizeof dsh, "%s/sharded", root);
    mkdir(dbf, 0755);
    mkdir(dsh, 0755);
    tfm_model m, bf, sh;
    CHECK_OK(hf_model_load(src, &m));
    if (!m.mem) return tu_finish("test_hf_copies");
    CHECK(m.n_params == 15735168);
    CHECK_OK(hf_model_write(dbf, &m, ST_BF16, 1));
    CHECK_OK(hf_model_write(dsh, &m, ST_F16, 3));
    CHECK_OK(hf_model_load(dsh, &sh));
    CHECK_OK(hf_model_load(dbf, &bf));
    if (sh.mem) CHECK(sh.n_params == m.n_params && !memcmp(sh.mem, m.mem, (size_t)m.n_params * sizeof(float)));
    if (bf.mem) {
        int64_t bad = 0, changed = 0;
        for (int64_t i = 0; i < m.n_params; i++) {
            bad += bf.mem[i] != bf16_ref(m.mem[i]);
            changed += bf.mem[i] != m.mem[i];
        }
        CHECK_MSG(bad == 0, "%lld BF16 values differ from bf16(original)", (long long)bad);
        printf("bf16 copy: %lld of %lld values changed by rounding\n", (long long)changed, (long long)m.n_params);
        CHECK(changed > 0); /* F16 has 3 more mantissa bits: most values must round */
    }
    same_bytes(src, dsh);
    tfm_model_free(&m);
    tfm_model_free(&sh);
    tfm_model_free(&bf);
    if (!keep) {
        char cmd[4300];
        snprintf(cmd, sizeof cmd, "rm -rf %s", root);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    }
    return tu_finish("test_hf_copies");
}
