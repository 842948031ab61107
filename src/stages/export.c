/* export.c - `upq export`: reads the container, writes the chosen format into OUT.tmp
 * (removed first if a killed run left it), copies the tokenizer files, then renames OUT.tmp
 * to OUT (an existing OUT, with --force, is moved aside first and removed after). A run
 * killed midway leaves only OUT.tmp, never a complete-looking OUT. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "export.h"
#include "h5model.h"
#include "h5qmodel.h"
#include "hf_model.h"
#include "upq_err.h"
#include "export_gptq.h"

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb, (void)flag, (void)f;
    return remove(p);
}

static int rmtree(const char *dir)
{
    struct stat st;
    if (lstat(dir, &st) != 0) return UPQ_OK;
    if (nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0) return UPQ_FAIL(UPQ_EIO, "%s: cannot remove: %s", dir, strerror(errno));
    return UPQ_OK;
}

static int copy_file(const char *src, const char *dst)
{
    FILE *in = fopen(src, "rb");
    if (!in) return UPQ_FAIL(UPQ_EIO, "%s: cannot open: %s", src, strerror(errno));
    FILE *out = fopen(dst, "wb");
    if (!out) {
        fclose(in);
        return UPQ_FAIL(UPQ_EIO, "%s: cannot create: %s", dst, strerror(errno));
    }
    char buf[65536];
    size_t n;
    int rc = UPQ_OK;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) rc = UPQ_FAIL(UPQ_EIO, "%s: write failed: %s", dst, strerror(errno));
    if (ferror(in)) rc = UPQ_FAIL(UPQ_EIO, "%s: read failed", src);
    if ((fflush(out) || fsync(fileno(out))) && !rc) rc = UPQ_FAIL(UPQ_EIO, "%s: flush failed", dst);
    fclose(in);
    if (fclose(out) && !rc) rc = UPQ_FAIL(UPQ_EIO, "%s: close failed", dst);
    return rc;
}

static const char *const TOKENIZER_FILES[] = {"tokenizer.json",          "tokenizer_config.json", "special_tokens_map.json",
                                              "generation_config.json",  "chat_template.jinja",  "tokenizer.model"};

/* The folder of the container's first recorded source (its config.json), or o->tokenizer. */
static int tokenizer_dir(const export_opts *o, char *dir, size_t cap)
{
    if (o->tokenizer) {
        snprintf(dir, cap, "%s", o->tokenizer);
        return UPQ_OK;
    }
    h5m_provenance *prov = upq_calloc(1, sizeof *prov, "provenance");
    if (!prov) return UPQ_EIO;
    int rc = h5m_read_provenance(o->model, prov);
    dir[0] = 0;
    if (!rc && prov->n_sources > 0) {
        char *copy = strdup(prov->source[0]);
        if (copy) snprintf(dir, cap, "%s", dirname(copy));
        free(copy);
    }
    free(prov);
    return rc;
}

static int copy_tokenizer(const export_opts *o, const char *tmp)
{
    char dir[4096], src[4400], dst[4400];
    TRY(tokenizer_dir(o, dir, sizeof dir));
    snprintf(src, sizeof src, "%s/tokenizer.json", dir);
    if (!dir[0] || access(src, R_OK) != 0) {
        if (o->tokenizer) return UPQ_FAIL(UPQ_EINPUT, "--tokenizer %s: no tokenizer.json there", o->tokenizer);
        fprintf(stderr, "upq export: warning: no tokenizer.json in the container's source folder '%s' "
                        "(give --tokenizer DIR); the export has weights and config only\n", dir);
        return UPQ_OK;
    }
    for (size_t i = 0; i < sizeof TOKENIZER_FILES / sizeof TOKENIZER_FILES[0]; i++) {
        snprintf(src, sizeof src, "%s/%s", dir, TOKENIZER_FILES[i]);
        snprintf(dst, sizeof dst, "%s/%s", tmp, TOKENIZER_FILES[i]);
        if (access(src, R_OK) == 0) TRY(copy_file(src, dst));
    }
    return UPQ_OK;
}

static void sync_path(const char *p)
{
    int fd = open(p, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int export_run(const export_opts *o)
{
    int gptq = !strcmp(o->format, "gptq");
    if (!gptq && strcmp(o->format, "hf")) return UPQ_FAIL(UPQ_EUSAGE, "--format %s: expected hf or gptq", o->format);
    char outb[4096];
    snprintf(outb, sizeof outb, "%s", o->out);
    for (size_t n = strlen(outb); n > 1 && outb[n - 1] == '/'; n--) outb[n - 1] = 0; /* "DIR/" -> "DIR" */
    export_opts oo = *o;
    oo.out = outb;
    o = &oo;
    struct stat st;
    if (lstat(o->out, &st) == 0 && !o->force)
        return UPQ_FAIL(UPQ_EINPUT, "%s exists (--force replaces it)", o->out);
    char tmp[4200], old[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", o->out);
    snprintf(old, sizeof old, "%s.old", o->out);
    TRY(rmtree(tmp));
    if (mkdir(tmp, 0755) != 0) return UPQ_FAIL(UPQ_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    tfm_model m = {0};
    int rc = h5q_read(o->model, &m);
    if (!rc) rc = gptq ? exp_gptq_write(tmp, o->model, &m, o->gptq_v2, o->force_requantize) : exp_hf_write(tmp, &m);
    if (rc == UPQ_EINPUT && gptq && strncmp(upq_errmsg(), o->model, strlen(o->model))) {
        char why[1024]; /* a layer the format cannot hold: name the container too */
        snprintf(why, sizeof why, "%s", upq_errmsg());
        UPQ_FAIL(rc, "%s: %s", o->model, why);
    }
    tfm_model_free(&m);
    if (!rc) rc = copy_tokenizer(o, tmp);
    if (!rc) {
        sync_path(tmp);
        int had = lstat(o->out, &st) == 0;
        if (had) rc = rmtree(old);
        if (!rc && had && rename(o->out, old) != 0)
            rc = UPQ_FAIL(UPQ_EIO, "%s: cannot move aside to %s: %s", o->out, old, strerror(errno));
        if (!rc && rename(tmp, o->out) != 0)
            rc = UPQ_FAIL(UPQ_EIO, "%s: rename to %s failed: %s", tmp, o->out, strerror(errno));
        if (!rc && had) rc = rmtree(old);
        if (!rc) {
            char *copy = strdup(o->out);
            if (copy) sync_path(dirname(copy));
            free(copy);
        }
    }
    if (rc) rmtree(tmp);
    return rc;
}
