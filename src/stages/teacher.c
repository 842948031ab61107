/* teacher.c - the teacher stage (teacher.h): per data shard, every rank runs the FP32
 * teacher over its contiguous rows (one row per forward, so a row's numbers do not
 * depend on how rows are grouped), builds the records (log-softmax in double; top-K and
 * sample records through distill_loss.h's builders), the rows are gathered on rank 0 by
 * an exact integer sum (each row is non-zero on one rank only) and rank 0 writes the
 * shard (temp + rename). Not the format (io/h5teacher.c) nor the CLI (cmd_teacher.c). */
#include "teacher.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "distill_loss.h"
#include "f16.h"
#include "h5shard.h"
#include "par.h"
#include "ppl.h"
#include "progress.h"
#include "rng.h"
#include "sha256.h"
#include "signals.h"
#include "upq_err.h"

static int ends_with(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !strcmp(s + n - k, suf);
}

static int keep_model_file(const struct dirent *e)
{
    return !strcmp(e->d_name, "config.json") || ends_with(e->d_name, ".safetensors");
}

int teacher_model_sha256(const char *path, char hex[65])
{
    struct stat st;
    if (stat(path, &st) != 0) return UPQ_FAIL(UPQ_EINPUT, "%s: no such model folder or file", path);
    if (S_ISREG(st.st_mode)) return sha256_file(path, hex) ? UPQ_FAIL(UPQ_EIO, "%s: cannot read", path) : UPQ_OK;
    struct dirent **list = NULL;
    int n = scandir(path, &list, keep_model_file, alphasort), rc = UPQ_OK;
    if (n < 0) return UPQ_FAIL(UPQ_EIO, "%s: cannot list the model folder", path);
    sha256_ctx c;
    sha256_init(&c);
    for (int i = 0; i < n; i++) {
        char f[4096], h[65], line[4200];
        snprintf(f, sizeof f, "%s/%s", path, list[i]->d_name);
        if (!rc && sha256_file(f, h)) rc = UPQ_FAIL(UPQ_EIO, "%s: cannot read", f);
        int k = snprintf(line, sizeof line, "%s  %s\n", h, list[i]->d_name);
        if (!rc) sha256_update(&c, line, (size_t)k);
        free(list[i]);
    }
    free(list);
    uint8_t d[32];
    sha256_final(&c, d);
    sha256_hex(d, hex);
    return rc;
}

/* Per (seed, shard, row): independent of rank count and batching. */
static void row_rng(uint64_t s[4], uint64_t seed, int64_t shard, int64_t row)
{
    uint64_t x = seed;
    x = upq_splitmix64(&x) ^ (uint64_t)shard;
    x = upq_splitmix64(&x) ^ (uint64_t)row;
    upq_rng_seed(s, upq_splitmix64(&x));
}

void teacher_row_records(const float *logits, const int32_t *tok, int64_t T, int64_t V, int64_t row,
                         const teacher_opts *o, int64_t shard_index, h5teacher_data *d, int32_t *kbuf)
{
    float *z = malloc((size_t)V * sizeof *z);
    int64_t K = o->topk, S = o->samples;
    int32_t *ti = NULL, *tc = NULL;
    float *tl = NULL;
    if (o->mode != H5T_MODE_FULL) {
        int64_t n = o->mode == H5T_MODE_TOPK ? K : S;
        ti = malloc((size_t)n * sizeof *ti);
        tc = malloc((size_t)n * sizeof *tc);
        tl = malloc((size_t)n * sizeof *tl);
    }
    UPQ_ASSERT(z && (o->mode == H5T_MODE_FULL || (ti && tc && tl)));
    uint64_t rng[4];
    row_rng(rng, o->seed, shard_index, row);
    float inv = (float)(1.0 / o->temperature);
    for (int64_t t = 0; t < T; t++) {
        const float *x = logits + t * V;
        int64_t p = row * T + t;
        for (int64_t j = 0; j < V; j++) z[j] = o->temperature == 1.0 ? x[j] : x[j] * inv;
        if (o->mode == H5T_MODE_FULL) {
            float mx = z[0];
            for (int64_t j = 1; j < V; j++) mx = z[j] > mx ? z[j] : mx;
            double s = 0;
            for (int64_t j = 0; j < V; j++) s += exp((double)z[j] - mx);
            double lse = mx + log(s);
            uint16_t *out = d->logp + p * V;
            for (int64_t j = 0; j < V; j++) out[j] = kq_f32_to_f16((float)((double)z[j] - lse));
        } else if (o->mode == H5T_MODE_TOPK) {
            float tail;
            d->lse[p] = dl_topk_build(ti, tl, &tail, z, V, (int32_t)K);
            d->log_tail[p] = tail;
            d->target_logit[p] = t + 1 < T ? z[tok[t + 1]] : NAN;
            memcpy(d->ids + p * K, ti, (size_t)K * sizeof *ti);
            for (int64_t j = 0; j < K; j++) d->logits[p * K + j] = kq_f32_to_f16(tl[j]);
        } else {
            int32_t k = 0;
            d->lse[p] = dl_sample_build(ti, tc, tl, &k, z, V, (int32_t)S, rng);
            kbuf[p] = k;
            memcpy(d->ids + p * S, ti, (size_t)k * sizeof *ti);
            memcpy(d->counts + p * S, tc, (size_t)k * sizeof *tc);
            for (int64_t j = 0; j < k; j++) d->logits[p * S + j] = kq_f32_to_f16(tl[j]);
        }
    }
    free(z);
    free(ti);
    free(tc);
    free(tl);
}

static int keep_h5(const struct dirent *e) { return ends_with(e->d_name, ".h5") && e->d_name[0] != '.'; }

/* Zeroed buffer of n bytes rounded up to 8 (the gather sums int64 words). */
static void *zbuf(int64_t n, const char *what) { return upq_calloc((size_t)((n + 7) / 8), 8, what); }

/* In pieces of 2^27 words (1 GiB): par_sum_i64 takes an int count. */
static int gather(void *p, int64_t bytes)
{
    int64_t n = (bytes + 7) / 8, piece = (int64_t)1 << 27;
    for (int64_t i = 0; i < n; i += piece) TRY(par_sum_i64((int64_t *)p + i, n - i < piece ? n - i : piece));
    return UPQ_OK;
}

typedef struct {
    h5teacher_data d;
    int32_t *kbuf; /* sample: unique ids per position */
    int64_t S;     /* slots per position (K or samples) */
} shard_buf;

static void shard_buf_free(shard_buf *b)
{
    h5teacher_free(&b->d);
    free(b->kbuf);
    b->kbuf = NULL;
}

static int shard_buf_alloc(shard_buf *b, const teacher_opts *o, int64_t N, int64_t T, int64_t V)
{
    memset(b, 0, sizeof *b);
    h5teacher_data *d = &b->d;
    d->N = N, d->T = T, d->V = V;
    int64_t NT = N * T;
    b->S = o->mode == H5T_MODE_TOPK ? o->topk : o->samples;
    int ok = 1;
    if (o->mode == H5T_MODE_FULL) ok = (d->logp = zbuf(NT * V * 2, "full log-probs")) != NULL;
    else {
        ok = (d->ids = zbuf(NT * b->S * 4, "teacher ids")) && (d->logits = zbuf(NT * b->S * 2, "teacher logits")) &&
             (d->lse = zbuf(NT * 4, "lse"));
        if (ok && o->mode == H5T_MODE_TOPK)
            ok = (d->log_tail = zbuf(NT * 4, "log_tail")) && (d->target_logit = zbuf(NT * 4, "target logits"));
        if (ok && o->mode == H5T_MODE_SAMPLE)
            ok = (d->counts = zbuf(NT * b->S * 4, "counts")) && (b->kbuf = zbuf(NT * 4, "unique counts"));
    }
    if (!ok) shard_buf_free(b);
    return ok ? UPQ_OK : UPQ_EIO;
}

static int shard_gather(shard_buf *b, int mode)
{
    h5teacher_data *d = &b->d;
    int64_t NT = d->N * d->T;
    if (mode == H5T_MODE_FULL) return gather(d->logp, NT * d->V * 2);
    TRY(gather(d->ids, NT * b->S * 4));
    TRY(gather(d->logits, NT * b->S * 2));
    TRY(gather(d->lse, NT * 4));
    if (mode == H5T_MODE_TOPK) {
        TRY(gather(d->log_tail, NT * 4));
        return gather(d->target_logit, NT * 4);
    }
    TRY(gather(d->counts, NT * b->S * 4));
    return gather(b->kbuf, NT * 4);
}

/* Sample mode on rank 0: fixed slots -> flat arrays + offsets (in place: entries move left). */
static int compact(shard_buf *b)
{
    h5teacher_data *d = &b->d;
    int64_t NT = d->N * d->T, m = 0;
    d->offsets = upq_malloc((size_t)(NT + 1) * sizeof *d->offsets, "offsets");
    if (!d->offsets) return UPQ_EIO;
    for (int64_t p = 0; p < NT; p++) {
        d->offsets[p] = m;
        for (int64_t j = 0; j < b->kbuf[p]; j++, m++) {
            d->ids[m] = d->ids[p * b->S + j];
            d->counts[m] = d->counts[p * b->S + j];
            d->logits[m] = d->logits[p * b->S + j];
        }
    }
    d->offsets[NT] = m;
    d->M = m;
    return UPQ_OK;
}

typedef struct {
    prog p;
    int64_t before, shard_rows, local, nranks;
} progress;

static void progress_row(progress *g, int64_t done_local)
{
    int64_t est = g->local > 0 ? (int64_t)((double)done_local / (double)g->local * (double)g->shard_rows) : 0;
    if (done_local == g->local) est = g->shard_rows;
    prog_update(&g->p, g->before + est, g->nranks > 1 ? "(rank 0's share scaled)" : NULL);
}

static void make_meta(h5teacher_meta *m, const teacher_opts *o, const char *data_sha, const char *teacher_sha,
                      const char *name, int64_t shard_index)
{
    memset(m, 0, sizeof *m);
    m->mode = o->mode;
    snprintf(m->data_sha256, sizeof m->data_sha256, "%s", data_sha);
    snprintf(m->teacher_sha256, sizeof m->teacher_sha256, "%s", teacher_sha);
    snprintf(m->data_file, sizeof m->data_file, "%s", name);
    snprintf(m->upq_version, sizeof m->upq_version, "%s", UPQ_VERSION);
    m->shard_index = shard_index;
    m->topk = o->mode == H5T_MODE_TOPK ? o->topk : 0;
    m->samples = o->mode == H5T_MODE_SAMPLE ? o->samples : 0;
    m->seed = o->mode == H5T_MODE_SAMPLE ? o->seed : 0;
    m->temperature = o->temperature;
}

/* Does the shard at path carry exactly the record `want` (with rows N, T)? Version aside. */
static int meta_matches(const h5teacher_meta *a, const int64_t dims[3], const h5teacher_meta *want, int64_t N,
                        int64_t T, const char **what)
{
    *what = a->mode != want->mode ? "mode"
          : strcmp(a->data_sha256, want->data_sha256) ? "data_sha256 (the data shard changed)"
          : strcmp(a->teacher_sha256, want->teacher_sha256) ? "teacher_sha256 (another teacher)"
          : strcmp(a->data_file, want->data_file) ? "data_file"
          : a->shard_index != want->shard_index ? "shard_index"
          : a->topk != want->topk ? "topk"
          : a->samples != want->samples ? "samples"
          : a->seed != want->seed ? "seed"
          : a->temperature != want->temperature ? "temperature"
          : dims[0] != N || dims[1] != T ? "shape (n_rows, seq_len)" : NULL;
    return *what == NULL;
}

/* --verify of one teacher shard against its data shard (rank 0). */
static int verify_one(const char *tpath, const h5teacher_meta *want, int64_t N, int64_t T)
{
    h5teacher_data d;
    h5teacher_meta m;
    char stored[65], now[65];
    struct stat st;
    if (stat(tpath, &st) != 0) return UPQ_FAIL(UPQ_EINPUT, "%s: missing teacher shard", tpath);
    TRY(h5teacher_read(tpath, &d, &m, stored));
    int64_t dims[3] = {d.N, d.T, d.V};
    const char *what = NULL;
    int rc = UPQ_OK;
    if (!meta_matches(&m, dims, want, N, T, &what))
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: attribute %s does not match", tpath, what);
    if (!rc) {
        h5teacher_content_sha256(&d, m.mode, m.topk, now);
        if (strcmp(now, stored)) rc = UPQ_FAIL(UPQ_EINPUT, "%s: content SHA-256 %s differs from the stored %s", tpath, now, stored);
    }
    int64_t NT = d.N * d.T;
    for (int64_t p = 0; !rc && m.mode == H5T_MODE_TOPK && p < NT * m.topk; p++)
        if (d.ids[p] < 0 || d.ids[p] >= d.V) rc = UPQ_FAIL(UPQ_EINPUT, "%s: id %d out of range", tpath, d.ids[p]);
    for (int64_t p = 0; !rc && m.mode == H5T_MODE_SAMPLE && p < NT; p++) {
        int64_t s = 0;
        for (int64_t j = d.offsets[p]; j < d.offsets[p + 1]; j++) {
            s += d.counts[j];
            if (d.ids[j] < 0 || d.ids[j] >= d.V) rc = UPQ_FAIL(UPQ_EINPUT, "%s: id %d out of range", tpath, d.ids[j]);
        }
        if (!rc && s != m.samples)
            rc = UPQ_FAIL(UPQ_EINPUT, "%s: position %lld has %lld draws, not %lld", tpath, (long long)p, (long long)s,
                          (long long)m.samples);
    }
    h5teacher_free(&d);
    return rc;
}

typedef struct {
    const teacher_opts *o;
    const tfm_model *m;
    tfm_acts *a;
    char teacher_sha[65];
    teacher_stats *st;
    progress *g;
    long pause_ms; /* UPQ_TEACHER_PAUSE_MS: tests only, slows rows so a signal lands mid-run */
} run_ctx;

/* One data shard: skip, verify, or compute + write. Collective. */
static int one_shard(run_ctx *x, const char *name, int64_t index)
{
    const teacher_opts *o = x->o;
    char dpath[4096], tpath[4096], dsha[65] = "";
    snprintf(dpath, sizeof dpath, "%s/%s", o->data_dir, name);
    snprintf(tpath, sizeof tpath, "%s/%s", o->out_dir, name);
    int rank = par_rank(), P = par_size(), rc = UPQ_OK;
    int32_t *tok = NULL;
    uint8_t *mask = NULL;
    int64_t N = 0, T = 0;
    rc = h5shard_read(dpath, &tok, &mask, &N, &T);
    if (!rc && rank == 0 && sha256_file(dpath, dsha)) rc = UPQ_FAIL(UPQ_EIO, "%s: cannot read", dpath);
    rc = par_agree(rc);
    if (!rc) rc = par_bcast(dsha, sizeof dsha, 0);
    if (rc) goto out;
    h5teacher_meta want;
    make_meta(&want, o, dsha, x->teacher_sha, name, index);
    int skip = 0;
    if (o->verify) {
        if (rank == 0) rc = verify_one(tpath, &want, N, T);
        rc = par_agree(rc);
        x->g->before += N;
        goto out;
    }
    if (rank == 0) {
        h5teacher_meta have;
        int64_t dims[3];
        const char *what;
        struct stat sb;
        upq_err_clear();
        skip = stat(tpath, &sb) == 0 && h5teacher_read_meta(tpath, &have, dims, NULL) == UPQ_OK &&
               meta_matches(&have, dims, &want, N, T, &what);
        upq_err_clear();
    }
    int32_t sk = skip;
    if ((rc = par_bcast(&sk, sizeof sk, 0))) goto out;
    if (sk) {
        x->st->skipped++;
        x->g->before += N;
        prog_set_start(&x->g->p, x->g->before);
        goto out;
    }
    if (!o->verify && x->m->cfg.max_T < T)
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: rows of %lld tokens exceed the teacher's %lld positions", dpath, (long long)T,
                      (long long)x->m->cfg.max_T);
    int64_t V = x->m->cfg.V;
    for (int64_t i = 0; !rc && i < N * T; i++)
        if (tok[i] < 0 || tok[i] >= V)
            rc = UPQ_FAIL(UPQ_EINPUT, "%s: token %d at row %lld is outside the teacher's vocabulary", dpath, tok[i],
                          (long long)(i / T));
    if (!rc && !x->a->mem) rc = tfm_acts_alloc_model(x->a, x->m, 1, T);
    if (!rc && x->a->Tmax < T) {
        tfm_acts_free(x->a);
        rc = tfm_acts_alloc_model(x->a, x->m, 1, T);
    }
    shard_buf b = {0};
    if (!rc) rc = shard_buf_alloc(&b, o, N, T, V);
    int64_t r0 = N * rank / P, r1 = N * (rank + 1) / P;
    x->g->shard_rows = N;
    x->g->local = r1 - r0;
    for (int64_t r = r0; r < r1 && !rc; r++) {
        rc = tfm_forward(x->m, x->a, tok + r * T, 1, T, NULL);
        if (!rc) teacher_row_records(x->a->logits, tok + r * T, T, V, r, o, index, &b.d, b.kbuf);
        if (!rc && rank == 0) progress_row(x->g, r + 1 - r0);
        if (x->pause_ms) {
            struct timespec ts = {x->pause_ms / 1000, (long)(x->pause_ms % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    rc = par_agree(rc);
    if (!rc) rc = shard_gather(&b, o->mode);
    if (!rc && rank == 0 && o->mode == H5T_MODE_SAMPLE) rc = compact(&b);
    if (!rc && rank == 0) rc = h5teacher_write(tpath, &b.d, &want, o->compress);
    rc = par_agree(rc);
    shard_buf_free(&b);
    x->g->before += N;
    if (!rc) {
        x->st->computed++;
        x->st->rows += N;
        x->st->tokens += N * T;
    }
out:
    free(tok);
    free(mask);
    return rc;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int teacher_run(const teacher_opts *o, teacher_stats *st)
{
    memset(st, 0, sizeof *st);
    if (o->temperature <= 0 || !isfinite(o->temperature))
        return UPQ_FAIL(UPQ_EUSAGE, "teacher: --temperature must be > 0");
    double t0 = now_s();
    struct dirent **list = NULL;
    int n = scandir(o->data_dir, &list, keep_h5, alphasort);
    if (n < 0) return UPQ_FAIL(UPQ_EINPUT, "%s: cannot list the data folder", o->data_dir);
    int rc = n == 0 ? UPQ_FAIL(UPQ_EINPUT, "%s: no *.h5 token shards", o->data_dir) : UPQ_OK;
    run_ctx x = {.o = o};
    tfm_model m = {0};
    tfm_acts a = {0};
    progress g = {.nranks = par_size()};
    x.st = st;
    const char *pause = getenv("UPQ_TEACHER_PAUSE_MS");
    x.pause_ms = pause ? atol(pause) : 0;
    x.g = &g;
    x.a = &a;
    x.m = &m;
    if (!rc && par_rank() == 0) rc = teacher_model_sha256(o->model, x.teacher_sha);
    rc = par_agree(rc);
    if (!rc) rc = par_bcast(x.teacher_sha, sizeof x.teacher_sha, 0);
    if (!rc && !o->verify) rc = ppl_load_model(o->model, &m);
    if (!rc && !o->verify && o->mode == H5T_MODE_TOPK && (o->topk < 1 || o->topk > m.cfg.V))
        rc = UPQ_FAIL(UPQ_EUSAGE, "teacher: --topk must be in [1, %lld]", (long long)m.cfg.V);
    if (!rc && !o->verify && par_rank() == 0 && mkdir(o->out_dir, 0777) != 0 && errno != EEXIST)
        rc = UPQ_FAIL(UPQ_EIO, "%s: cannot create the output folder: %s", o->out_dir, strerror(errno));
    if (!rc && !o->verify) rc = sig_install();
    rc = par_agree(rc);
    int64_t total = 0, T0 = 0;
    for (int i = 0; !rc && i < n; i++) {
        char p[4096];
        int32_t *tk = NULL;
        uint8_t *mk = NULL;
        int64_t N = 0, T = 0;
        snprintf(p, sizeof p, "%s/%s", o->data_dir, list[i]->d_name);
        rc = h5shard_read(p, &tk, &mk, &N, &T);
        total += N;
        if (!T0) T0 = T;
        free(tk);
        free(mk);
    }
    rc = par_agree(rc);
    prog_init(&g.p, o->progress && par_rank() == 0 ? stderr : NULL, o->verify ? "teacher verify" : "teacher", "row", total);
    prog_set_rate(&g.p, "tokens/s", (double)T0);
    for (int i = 0; !rc && i < n; i++) {
        rc = one_shard(&x, list[i]->d_name, i);
        st->shards++;
        if (!rc && !o->verify && i + 1 < n && sig_agree_stop())
            rc = UPQ_FAIL(UPQ_EPREEMPT, "teacher: signal: stopped after shard %d of %d (rerun to continue)", i + 1, n);
    }
    prog_end(&g.p);
    for (int i = 0; i < n; i++) free(list[i]);
    free(list);
    tfm_acts_free(&a);
    if (!o->verify) tfm_model_free(&m);
    st->seconds = now_s() - t0;
    return rc;
}
