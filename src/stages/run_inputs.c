/* run_inputs.c - what every later `upq run` stage shares about its inputs (run_internal.h):
 * the SHA-256 of an input file or folder, the decision "complete / redo" from the stage
 * record whose key holds the options and the input hashes (io/stage_state.h), the
 * message that names the changed input and the stages downstream of it, where a stage
 * writes (the point's directory, or DIR/shared when no swept key reaches it), the lock
 * beside a shared output, and the hard-linked shard folder teacher and qat read.
 * Rank-local helpers except run_stage_decide (collective). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "par.h"
#include "run_internal.h"
#include "sha256.h"
#include "signals.h"
#include "teacher.h"
#include "upq_err.h"

static int skip_name(const char *n)
{
    size_t l = strlen(n);
    return n[0] == '.' || (l > 4 && !strcmp(n + l - 4, ".tmp")) || (l > 5 && !strcmp(n + l - 5, ".lock"));
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* A folder: SHA-256 of the lines "<sha256>  <name>\n" of its regular files in name order
 * (hidden, *.tmp and *.lock left out); a model folder: teacher_model_sha256's rule. */
int run_sha256_path(const char *path, char hex[65])
{
    struct stat st;
    if (stat(path, &st)) return UPQ_FAIL(UPQ_EINPUT, "%s: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return sha256_file(path, hex);
    char cfg[RUN_PATH_MAX + 16];
    snprintf(cfg, sizeof cfg, "%s/config.json", path);
    if (run_exists(cfg)) return teacher_model_sha256(path, hex);
    DIR *d = opendir(path);
    if (!d) return UPQ_FAIL(UPQ_EIO, "%s: %s", path, strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = UPQ_OK;
    for (struct dirent *e; !rc && (e = readdir(d));) {
        if (skip_name(e->d_name)) continue;
        if (n == cap) {
            char **p = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names);
            if (!p) rc = UPQ_FAIL(UPQ_EIO, "out of memory");
            else names = p;
        }
        if (!rc && !(names[n++] = strdup(e->d_name))) rc = UPQ_FAIL(UPQ_EIO, "out of memory");
    }
    closedir(d);
    if (!rc) qsort(names, n, sizeof *names, cmp_str);
    sha256_ctx c;
    sha256_init(&c);
    for (size_t i = 0; !rc && i < n; i++) {
        char f[RUN_PATH_MAX + 300], h[65], line[400];
        snprintf(f, sizeof f, "%s/%s", path, names[i]);
        if (stat(f, &st) || !S_ISREG(st.st_mode)) continue;
        rc = sha256_file(f, h);
        int k = snprintf(line, sizeof line, "%s  %s\n", h, names[i]);
        if (!rc) sha256_update(&c, line, (size_t)k);
    }
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
    uint8_t dg[32];
    sha256_final(&c, dg);
    sha256_hex(dg, hex);
    return rc;
}

/* Stages downstream of each (in run order, the stage itself first): what reads its output. */
static const char *downstream(const char *stage)
{
    static const struct { const char *s, *d; } t[] = {
        {"prepare", "prepare ptq gen-data teacher qat eval export"},
        {"ptq", "ptq qat eval export"},
        {"gen-data", "gen-data teacher qat eval export"},
        {"teacher", "teacher qat eval export"},
        {"qat", "qat eval export"},
        {"eval", "eval"},
        {"export", "export"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (!strcmp(t[i].s, stage)) return t[i].d;
    return stage;
}

/* "ptq, qat, eval, export": the downstream stages this job enables. */
static void downstream_list(const run_ctx *r, const char *stage, char *buf, size_t cap)
{
    char list[256];
    snprintf(list, sizeof list, "%s", downstream(stage));
    size_t n = 0;
    buf[0] = '\0';
    for (char *save = NULL, *t = strtok_r(list, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        int on = 0;
        if (job_get_bool(r->job, t, "enabled", 0, &on)) upq_err_clear();
        if (!on && strcmp(t, stage)) continue;
        int w = snprintf(buf + n, cap - n, "%s%s", n ? ", " : "", t);
        if (w > 0 && (size_t)w < cap - n) n += (size_t)w;
    }
}

/* The key line of a stage record (the file's "key " line), or "" when absent/unreadable. */
static void old_key(const char *rec, char *buf, size_t cap)
{
    buf[0] = '\0';
    FILE *f = fopen(rec, "r");
    if (!f) return;
    char *line = NULL;
    size_t lc = 0;
    for (int i = 0; i < 4 && getline(&line, &lc, f) > 0; i++)
        if (!strncmp(line, "key ", 4)) {
            line[strcspn(line, "\n")] = '\0';
            snprintf(buf, cap, "%s", line + 4);
            break;
        }
    free(line);
    fclose(f);
}

/* The sha256 recorded for input `name` in a key (" name=HEX"), copied into h (or ""). */
static void key_input(const char *key, const char *name, char h[65])
{
    h[0] = '\0';
    const char *in = strstr(key, " | inputs:");
    if (!in) return;
    char pat[96];
    snprintf(pat, sizeof pat, " %s=", name);
    const char *p = strstr(in, pat);
    if (p) snprintf(h, 65, "%.64s", p + strlen(pat));
}

/* Rank 0: the hashes, the full key, and whether the record matches; prints why not. */
static int decide_root(const run_ctx *r, const char *stage, const char *rec, const char *begun, const char *opts,
                       const run_input *in, int nin, int out_ok, char *key, size_t cap, int *done, int *stale)
{
    static char hex[RUN_INPUTS_MAX][65];
    size_t n = (size_t)snprintf(key, cap, "%s | inputs:", opts);
    for (int i = 0; i < nin; i++) {
        TRY(run_sha256_path(in[i].path, hex[i]));
        int w = snprintf(key + n, cap - n, " %s=%s", in[i].name, hex[i]);
        if (w < 0 || (size_t)w >= cap - n) return UPQ_FAIL(UPQ_EINPUT, "%s: stage %s options too long", r->job->path, stage);
        n += (size_t)w;
    }
    *done = out_ok && run_record_is(rec, stage, key);
    if (*done) return UPQ_OK;
    static char prev[RUN_INPUTS_MAX * 100 + 8192];
    old_key(rec, prev, sizeof prev);
    if (!prev[0]) old_key(begun, prev, sizeof prev);
    *stale = prev[0] && strcmp(prev, key) != 0;
    if (!*stale) return UPQ_OK;
    char list[256], what[600] = "";
    downstream_list(r, stage, list, sizeof list);
    for (int i = 0; i < nin && !what[0]; i++) {
        char was[65];
        key_input(prev, in[i].name, was);
        if (strcmp(was, hex[i]))
            snprintf(what, sizeof what, "input %s changed (sha256 %.16s -> %.16s)", in[i].name, was[0] ? was : "none",
                     hex[i]);
    }
    if (!what[0]) snprintf(what, sizeof what, "options changed");
    fprintf(stderr, "%s: %s, re-running %s\n", stage, what, list);
    fflush(stderr);
    return UPQ_OK;
}

int run_stage_decide(const run_ctx *r, const char *stage, const char *rec, const char *begun, const char *opts,
                     const run_input *in, int nin, int out_ok, char *key, size_t cap, int *done, int *stale)
{
    UPQ_ASSERT(nin <= RUN_INPUTS_MAX);
    *done = 0, *stale = 0;
    int rc = par_rank() == 0 ? decide_root(r, stage, rec, begun, opts, in, nin, out_ok, key, cap, done, stale)
                             : UPQ_OK;
    TRY(par_agree(rc));
    int v[2] = {*done, *stale};
    TRY(par_bcast(v, sizeof v, 0));
    *done = v[0], *stale = v[1];
    return par_bcast(key, (int64_t)cap, 0);
}

/* Which sections each stage's output depends on (itself and upstream). */
static const char *upstream(const char *stage)
{
    if (!strcmp(stage, "prepare")) return " model data prepare ";
    if (!strcmp(stage, "ptq")) return " model data prepare ptq ";
    if (!strcmp(stage, "gen-data")) return " model gen-data ";
    if (!strcmp(stage, "teacher")) return " model data prepare gen-data teacher ";
    return NULL; /* qat, eval, export: always per point */
}

void run_stage_dir(const run_ctx *r, const char *stage, char *buf, size_t cap)
{
    const char *up = upstream(stage);
    int shared = r->sweep_index >= 0 && up;
    for (int i = 0; shared && i < r->job->n; i++) {
        const job_entry *e = &r->job->e[i];
        if (strcmp(e->sect, "sweep")) continue;
        char s[JOB_NAME_MAX + 2];
        snprintf(s, sizeof s, " %.*s ", (int)strcspn(e->key, "."), e->key);
        if (strstr(up, s)) shared = 0;
    }
    snprintf(buf, cap, "%s", shared ? r->shared : r->dir);
}

int run_lock(const char *path, int *fd)
{
    *fd = open(path, O_RDWR | O_CREAT, 0666);
    if (*fd < 0) return UPQ_FAIL(UPQ_EIO, "%s: %s", path, strerror(errno));
    int said = 0;
    while (flock(*fd, LOCK_EX | LOCK_NB)) {
        if (errno != EWOULDBLOCK && errno != EINTR) {
            close(*fd);
            *fd = -1;
            return UPQ_FAIL(UPQ_EIO, "flock %s: %s", path, strerror(errno));
        }
        if (sig_pending()) {
            close(*fd);
            *fd = -1;
            return UPQ_EPREEMPT;
        }
        if (!said++) {
            printf("upq run: waiting for %s (another task is making this shared output)\n", path);
            fflush(stdout);
        }
        struct timespec ts = {0, 200000000};
        nanosleep(&ts, NULL);
    }
    return UPQ_OK;
}

void run_unlock(int fd)
{
    if (fd >= 0) close(fd);
}

static int copy_file(const char *a, const char *b)
{
    FILE *in = fopen(a, "rb"), *out = in ? fopen(b, "wb") : NULL;
    int rc = in && out ? UPQ_OK : UPQ_FAIL(UPQ_EIO, "copying %s -> %s: %s", a, b, strerror(errno));
    char buf[1 << 16];
    for (size_t n; !rc && (n = fread(buf, 1, sizeof buf, in)) > 0;)
        if (fwrite(buf, 1, n, out) != n) rc = UPQ_FAIL(UPQ_EIO, "writing %s: %s", b, strerror(errno));
    if (!rc && ferror(in)) rc = UPQ_FAIL(UPQ_EIO, "reading %s", a);
    if (out && fclose(out) && !rc) rc = UPQ_FAIL(UPQ_EIO, "writing %s: %s", b, strerror(errno));
    if (in) fclose(in);
    return rc;
}

int run_link_shards(const char *src, const char *prefix, const char *dst)
{
    TRY(run_mkdir_p(dst));
    TRY(run_clear_dir(dst));
    DIR *d = opendir(src);
    if (!d) return UPQ_FAIL(UPQ_EIO, "%s: %s", src, strerror(errno));
    int rc = UPQ_OK, n = 0;
    for (struct dirent *e; !rc && (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (strncmp(e->d_name, prefix, strlen(prefix)) || l < 4 || strcmp(e->d_name + l - 3, ".h5")) continue;
        char a[RUN_PATH_MAX + 300], b[RUN_PATH_MAX + 300];
        snprintf(a, sizeof a, "%s/%s", src, e->d_name);
        snprintf(b, sizeof b, "%s/%s", dst, e->d_name);
        if (link(a, b)) rc = copy_file(a, b); /* a file system without hard links */
        n++;
    }
    closedir(d);
    if (!rc && !n) rc = UPQ_FAIL(UPQ_EINPUT, "%s: no %s*.h5 token shards", src, prefix);
    return rc;
}

int run_on_root(int (*fn)(void *), void *ctx, int solo, const char *what)
{
    int mine = UPQ_OK;
    if (par_rank() == 0) {
        if (solo) mine = par_solo(1);
        if (!mine) mine = fn(ctx);
        if (solo) {
            int e = par_solo(0);
            if (!mine) mine = e;
        }
    }
    int all = par_agree_timeout(mine, 1e9); /* the other ranks sleep-wait */
    if (all < 0) return UPQ_FAIL(UPQ_EIO, "%s: ranks could not agree", what);
    return all ? (mine ? mine : all) : UPQ_OK;
}

int run_on_ranks(int (*fn)(void *), void *ctx, int n, const char *what)
{
    int r0 = par_rank(), mine = par_subset(n); /* collective: ranks [0, n) get their own world */
    if (!mine && r0 < n) {
        mine = fn(ctx);
        int e = par_subset(0);
        if (!mine) mine = e;
    }
    int all = par_agree_timeout(mine, 1e9); /* the other ranks sleep-wait */
    if (all < 0) return UPQ_FAIL(UPQ_EIO, "%s: ranks could not agree", what);
    return all ? (mine ? mine : all) : UPQ_OK;
}
