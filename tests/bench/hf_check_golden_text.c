/* hf_check_golden_text.c - helper of tests/bench/hf_check_demo_prep.sh (not built by CMake,
 * not a test): writes the "text" attribute of every /tokenizer/<case> dataset of a golden.h5
 * to OUTDIR/<case>.txt, bytes as stored, so that the same strings can be encoded by upq here
 * and by HF `tokenizers` on another machine. Usage: hf_check_golden_text GOLDEN.h5 OUTDIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hdf5.h>

static int write_case(hid_t grp, const char *name, const char *outdir)
{
    hid_t d = H5Dopen2(grp, name, H5P_DEFAULT);
    if (d < 0) return 1;
    hid_t a = H5Aopen(d, "text", H5P_DEFAULT);
    hid_t mt = H5Tcopy(H5T_C_S1);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5T_CSET_UTF8);
    char *v = NULL;
    int rc = 1;
    if (a >= 0 && H5Aread(a, mt, &v) >= 0 && v) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.txt", outdir, name);
        FILE *f = fopen(path, "wb");
        if (f && fwrite(v, 1, strlen(v), f) == strlen(v) && fclose(f) == 0) rc = 0;
        H5free_memory(v);
    }
    H5Tclose(mt);
    if (a >= 0) H5Aclose(a);
    H5Dclose(d);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: hf_check_golden_text GOLDEN.h5 OUTDIR\n");
        return 1;
    }
    hid_t f = H5Fopen(argv[1], H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t g = f < 0 ? -1 : H5Gopen2(f, "/tokenizer", H5P_DEFAULT);
    if (g < 0) {
        fprintf(stderr, "hf_check_golden_text: %s has no /tokenizer group\n", argv[1]);
        return 2;
    }
    H5G_info_t info;
    H5Gget_info(g, &info);
    int bad = 0;
    for (hsize_t i = 0; i < info.nlinks; i++) {
        char name[256];
        H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT);
        if (write_case(g, name, argv[2])) {
            fprintf(stderr, "hf_check_golden_text: cannot write case %s\n", name);
            bad = 1;
        }
    }
    H5Gclose(g);
    H5Fclose(f);
    return bad ? 3 : 0;
}
