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
#include "export_gguf.h"
#include "export_gptq.h"
#include "safetensors.h"

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

/* Moves the finished folder tmp to out (an existing out, allowed by --force, is moved to
 * out.old first and removed after); syncs the parent. */
static int commit_dir(const char *tmp, const char *out)
{
    char old[4200];
    snprintf(old, sizeof old, "%s.old", out);
    struct stat st;
    int rc = UPQ_OK;
    sync_path(tmp);
    int had = lstat(out, &st) == 0;
    if (had) rc = rmtree(old);
    if (!rc && had && rename(out, old) != 0)
        rc = UPQ_FAIL(UPQ_EIO, "%s: cannot move aside to %s: %s", out, old, strerror(errno));
    if (!rc && rename(tmp, out) != 0) rc = UPQ_FAIL(UPQ_EIO, "%s: rename to %s failed: %s", tmp, out, strerror(errno));
    if (!rc && had) rc = rmtree(old);
    if (!rc) {
        char *copy = strdup(out);
        if (copy) sync_path(dirname(copy));
        free(copy);
    }
    return rc;
}

static void strip_slash(char *p)
{
    for (size_t n = strlen(p); n > 1 && p[n - 1] == '/'; n--) p[n - 1] = 0; /* "DIR/" -> "DIR" */
}

/* --requantized DIR: the weights the GGUF decodes to, as an HF folder in fp32 (+ tokenizer),
 * so that `upq ppl --model DIR` scores exactly them. */
static int write_requantized(const export_opts *o, const tfm_model *m)
{
    char out[4096], tmp[4200];
    snprintf(out, sizeof out, "%s", o->requantized);
    strip_slash(out);
    snprintf(tmp, sizeof tmp, "%s.tmp", out);
    TRY(rmtree(tmp));
    if (mkdir(tmp, 0755) != 0) return UPQ_FAIL(UPQ_EIO, "%s: cannot create: %s", tmp, strerror(errno));
    int rc = hf_model_write(tmp, m, ST_F32, 1);
    if (!rc) rc = copy_tokenizer(o, tmp);
    if (!rc) rc = commit_dir(tmp, out);
    if (rc) rmtree(tmp);
    return rc;
}

/* --format gguf: OUT.tmp (and OUT.requant.tsv.tmp) written, then renamed: the report first,
 * the GGUF last, so a complete-looking OUT always has its report. */
static int export_gguf(const export_opts *o)
{
    struct stat st;
    if (lstat(o->out, &st) == 0 && !o->force) return UPQ_FAIL(UPQ_EINPUT, "%s exists (--force replaces it)", o->out);
    if (o->requantized && lstat(o->requantized, &st) == 0 && !o->force)
        return UPQ_FAIL(UPQ_EINPUT, "%s exists (--force replaces it)", o->requantized);
    char tmp[4200], rep[4200], rep_tmp[4300], dir[4096], name[256];
    snprintf(tmp, sizeof tmp, "%s.tmp", o->out);
    snprintf(rep, sizeof rep, "%s.requant.tsv", o->out);
    snprintf(rep_tmp, sizeof rep_tmp, "%s.tmp", rep);
    int hf = stat(o->model, &st) == 0 && S_ISDIR(st.st_mode); /* an FP HuggingFace folder */
    if (hf) snprintf(dir, sizeof dir, "%s", o->tokenizer ? o->tokenizer : o->model);
    else TRY(tokenizer_dir(o, dir, sizeof dir));
    if (!dir[0]) return UPQ_FAIL(UPQ_EINPUT, "%s: no recorded source folder for the tokenizer (give --tokenizer DIR)", o->model);
    char *mc = strdup(o->model);
    snprintf(name, sizeof name, "%s", mc ? basename(mc) : "upq");
    free(mc);
    char *dot = strrchr(name, '.');
    if (dot && !strcmp(dot, ".h5")) *dot = 0;
    FILE *r = fopen(rep_tmp, "w");
    if (!r) return UPQ_FAIL(UPQ_EIO, "%s: cannot create: %s", rep_tmp, strerror(errno));
    tfm_model m = {0};
    int rc = hf ? hf_model_load(o->model, &m) : h5q_read(o->model, &m);
    if (!rc) rc = exp_gguf_write(tmp, hf ? NULL : o->model, &m, dir, name, o->gguf_q4_0, r);
    if ((fflush(r) || fsync(fileno(r))) && !rc) rc = UPQ_FAIL(UPQ_EIO, "%s: write failed", rep_tmp);
    if (fclose(r) && !rc) rc = UPQ_FAIL(UPQ_EIO, "%s: write failed", rep_tmp);
    if (!rc && o->requantized) rc = write_requantized(o, &m);
    tfm_model_free(&m);
    if (!rc && rename(rep_tmp, rep) != 0) rc = UPQ_FAIL(UPQ_EIO, "%s: rename failed: %s", rep_tmp, strerror(errno));
    if (!rc && rename(tmp, o->out) != 0) rc = UPQ_FAIL(UPQ_EIO, "%s: rename to %s failed: %s", tmp, o->out, strerror(errno));
    if (!rc) {
        char *copy = strdup(o->out);
        if (copy) sync_path(dirname(copy));
        free(copy);
    }
    if (rc) remove(tmp), remove(rep_tmp);
    return rc;
}

int export_run(const export_opts *o)
{
    int gptq = !strcmp(o->format, "gptq"), gguf = !strcmp(o->format, "gguf");
    if (!gptq && !gguf && strcmp(o->format, "hf"))
        return UPQ_FAIL(UPQ_EUSAGE, "--format %s: expected hf, gptq or gguf", o->format);
    char outb[4096];
    snprintf(outb, sizeof outb, "%s", o->out);
    strip_slash(outb);
    export_opts oo = *o;
    oo.out = outb;
    o = &oo;
    if (gguf) return export_gguf(o);
    struct stat st;
    if (lstat(o->out, &st) == 0 && !o->force)
        return UPQ_FAIL(UPQ_EINPUT, "%s exists (--force replaces it)", o->out);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", o->out);
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
    if (!rc) rc = commit_dir(tmp, o->out);
    if (rc) rmtree(tmp);
    return rc;
}
