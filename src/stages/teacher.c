/* teacher.c - the teacher stage (teacher.h): per data shard, blocks of P rows, one per
 * rank (one row per forward, so a row's numbers do not depend on how rows are grouped);
 * each rank builds its row's records (log-softmax in double; top-K and sample records
 * through distill_loss.h's builders), rank 0 receives the rows in order and appends them
 * to "<shard>.part" (io/teacher_part.h), and once all rows are there writes the shard
 * from it row by row (temp + rename). Memory: two rows per rank. Not the format
 * (io/h5teacher.c) nor the CLI (cmd_teacher.c). */
#include "teacher.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "distill_loss.h"
#include "f16.h"
#include "h5shard.h"
#include "par.h"
#include "ppl.h"
#include "progress.h"
#include "rng.h"
#include "sha256.h"
#include "signals.h"
#include "teacher_part.h"
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

/* The records of position t of a row into slot position p of d's arrays; z: V floats
 * of scratch, ti/tc/tl: K or S entries, draws: the position's S uniform draws (sample). */
static void pos_records(const float *x, const int32_t *tok, int64_t T, int64_t V, int64_t t, int64_t p,
                        const teacher_opts *o, h5teacher_data *d, int32_t *kbuf, float *zbuf, int32_t *ti,
                        int32_t *tc, float *tl, const double *draws)
{
    int64_t K = o->topk, S = o->samples;
    /* z = x exactly at T = 1: no copy (a row's logits are T V floats, 8 MB at T = 512,
     * V = 4096, that a copy would write through the caches between two forwards) */
    const float *z = x;
    if (o->temperature != 1.0) {
        float inv = (float)(1.0 / o->temperature);
        for (int64_t j = 0; j < V; j++) zbuf[j] = x[j] * inv;
        z = zbuf;
    }
    if (o->mode == H5T_MODE_FULL && d->logp32) {
        double lse = dl_logsumexp_exact(z, V); /* fp32: the exactness reference (docs/teacher.md) */
        float *out = d->logp32 + p * V;
        for (int64_t j = 0; j < V; j++) out[j] = (float)((double)z[j] - lse);
    } else if (o->mode == H5T_MODE_FULL) {
        double lse = dl_logsumexp(z, V, tl);
        for (int64_t j = 0; j < V; j++) tl[j] = (float)((double)z[j] - lse);
        kq_f32_to_f16_n(d->logp + p * V, tl, V);
    } else if (o->mode == H5T_MODE_TOPK) {
        float tail;
        d->lse[p] = dl_topk_build(ti, tl, &tail, z, V, (int32_t)K);
        d->log_tail[p] = tail;
        d->target_logit[p] = t + 1 < T ? z[tok[t + 1]] : NAN;
        memcpy(d->ids + p * K, ti, (size_t)K * sizeof *ti);
        for (int64_t j = 0; j < K; j++) d->logits[p * K + j] = kq_f32_to_f16(tl[j]);
    } else {
        int32_t k = 0;
        d->lse[p] = dl_sample_build_u(ti, tc, tl, &k, z, V, (int32_t)S, draws);
        kbuf[p] = k;
        memcpy(d->ids + p * S, ti, (size_t)k * sizeof *ti);
        memcpy(d->counts + p * S, tc, (size_t)k * sizeof *tc);
        for (int64_t j = 0; j < k; j++) d->logits[p * S + j] = kq_f32_to_f16(tl[j]);
    }
}

/* The records of row `row` (seeding the draws) into slot row `slot` of d's arrays.
 * Positions in parallel (OpenMP): each is independent, and the sample draws are taken
 * from the row's rng in position order first, so the bytes do not depend on threads. */
static void row_records(const float *logits, const int32_t *tok, int64_t T, int64_t V, int64_t row, int64_t slot,
                        const teacher_opts *o, int64_t shard_index, h5teacher_data *d, int32_t *kbuf)
{
    int64_t S = o->samples, n = o->mode == H5T_MODE_TOPK ? o->topk : o->mode == H5T_MODE_SAMPLE ? S : V;
    double *draws = NULL;
    if (o->mode == H5T_MODE_SAMPLE) {
        uint64_t rng[4];
        row_rng(rng, o->seed, shard_index, row);
        draws = upq_malloc((size_t)(T * S) * sizeof *draws, "sample draws");
        UPQ_ASSERT(draws);
        for (int64_t i = 0; i < T * S; i++) draws[i] = upq_rng_uniform(rng);
    }
#pragma omp parallel
    {
        float *z = malloc((size_t)V * sizeof *z), *tl = malloc((size_t)n * sizeof *tl);
        int32_t *ti = malloc((size_t)n * sizeof *ti), *tc = malloc((size_t)n * sizeof *tc);
        UPQ_ASSERT(z && tl && ti && tc);
#pragma omp for schedule(static)
        for (int64_t t = 0; t < T; t++)
            pos_records(logits + t * V, tok, T, V, t, slot * T + t, o, d, kbuf, z, ti, tc, tl,
                        draws ? draws + t * S : NULL);
        free(z);
        free(tl);
        free(ti);
        free(tc);
    }
    free(draws);
}

void teacher_row_records(const float *logits, const int32_t *tok, int64_t T, int64_t V, int64_t row,
                         const teacher_opts *o, int64_t shard_index, h5teacher_data *d, int32_t *kbuf)
{
    row_records(logits, tok, T, V, row, row, o, shard_index, d, kbuf);
}

static int keep_h5(const struct dirent *e) { return ends_with(e->d_name, ".h5") && e->d_name[0] != '.'; }

/* One row's records as stored in the partial shard (teacher_part.h): fixed-size fields,
 * 4-byte ones first. S slots per position (K, or the draws N: sample ids are compacted
 * when the shard is written). */
typedef struct {
    int64_t bytes, S;
    int64_t o_ids, o_counts, o_lse, o_tail, o_target, o_k, o_logits; /* byte offsets */
} row_layout;

static void layout_init(row_layout *L, const teacher_opts *o, int64_t T, int64_t V)
{
    memset(L, 0, sizeof *L);
    if (o->mode == H5T_MODE_FULL) {
        L->bytes = T * V * (o->fp32 ? 4 : 2);
        return;
    }
    int64_t S = L->S = o->mode == H5T_MODE_TOPK ? o->topk : o->samples, at = 0;
    L->o_ids = at, at += T * S * 4;
    if (o->mode == H5T_MODE_SAMPLE) L->o_counts = at, at += T * S * 4;
    L->o_lse = at, at += T * 4;
    if (o->mode == H5T_MODE_TOPK) L->o_tail = at, at += T * 4, L->o_target = at, at += T * 4;
    else L->o_k = at, at += T * 4;
    L->o_logits = at, at += T * S * 2;
    L->bytes = (at + 7) / 8 * 8;
}

/* d: a one-row view of the record buffer buf (slot 0). */
static void layout_view(const row_layout *L, const teacher_opts *o, uint8_t *buf, int64_t T, int64_t V,
                        h5teacher_data *d, int32_t **kbuf)
{
    *d = (h5teacher_data){.N = 1, .T = T, .V = V};
    *kbuf = NULL;
    if (o->mode == H5T_MODE_FULL) {
        if (o->fp32) d->logp32 = (float *)buf;
        else d->logp = (uint16_t *)buf;
        return;
    }
    d->ids = (int32_t *)(buf + L->o_ids);
    d->lse = (float *)(buf + L->o_lse);
    d->logits = (uint16_t *)(buf + L->o_logits);
    if (o->mode == H5T_MODE_TOPK) {
        d->log_tail = (float *)(buf + L->o_tail);
        d->target_logit = (float *)(buf + L->o_target);
    } else {
        d->counts = (int32_t *)(buf + L->o_counts);
        *kbuf = (int32_t *)(buf + L->o_k);
    }
}

/* Rows of the partial shard as the HDF5 writer wants them (h5teacher_row_fn). */
typedef struct {
    const teacher_opts *o;
    const row_layout *L;
    tpart *part;
    int64_t T, V;
    uint8_t *buf;           /* one record */
    int32_t *ids, *counts;  /* sample: (T*S) compacted */
    uint16_t *logits;
    int64_t *off;           /* sample: (T+1) */
} part_rows;

static int part_row(void *vc, int64_t r, h5teacher_data *v)
{
    part_rows *c = vc;
    int32_t *kbuf;
    TRY(tpart_read(c->part, r, c->buf));
    layout_view(c->L, c->o, c->buf, c->T, c->V, v, &kbuf);
    if (c->o->mode != H5T_MODE_SAMPLE) return UPQ_OK;
    int64_t m = 0, S = c->L->S;
    for (int64_t t = 0; t < c->T; t++) {
        c->off[t] = m;
        if (kbuf[t] < 1 || kbuf[t] > S)
            return UPQ_FAIL(UPQ_EIO, "%s: row %lld position %lld has %d ids (damaged partial shard)", c->part->path,
                            (long long)r, (long long)t, kbuf[t]);
        for (int64_t j = 0; j < kbuf[t]; j++, m++) {
            c->ids[m] = v->ids[t * S + j];
            c->counts[m] = v->counts[t * S + j];
            c->logits[m] = v->logits[t * S + j];
        }
    }
    c->off[c->T] = m;
    v->ids = c->ids, v->counts = c->counts, v->logits = c->logits, v->offsets = c->off, v->M = m;
    return UPQ_OK;
}

/* Rank 0: the complete partial shard -> the teacher shard (temp + rename), row by row. */
static int part_commit(const teacher_opts *o, const row_layout *L, tpart *part, const char *tpath, int64_t N,
                       int64_t T, int64_t V, const h5teacher_meta *want)
{
    int64_t S = o->mode == H5T_MODE_SAMPLE ? L->S : 0;
    part_rows c = {.o = o, .L = L, .part = part, .T = T, .V = V};
    c.buf = upq_malloc((size_t)L->bytes, "teacher row");
    int ok = c.buf != NULL;
    if (ok && S) {
        c.ids = upq_malloc((size_t)(T * S) * 4, "sample ids");
        c.counts = upq_malloc((size_t)(T * S) * 4, "sample counts");
        c.logits = upq_malloc((size_t)(T * S) * 2, "sample logits");
        c.off = upq_malloc((size_t)(T + 1) * 8, "sample offsets");
        ok = c.ids && c.counts && c.logits && c.off;
    }
    int rc = ok ? h5teacher_write_rows(tpath, N, T, V, want, o->compress, part_row, &c) : UPQ_EIO;
    free(c.buf), free(c.ids), free(c.counts), free(c.logits), free(c.off);
    return rc;
}

/* Names the run of one shard: a partial shard with another key is started afresh. */
static void part_key(char hex[65], const h5teacher_meta *m, int64_t N, int64_t T, int64_t V)
{
    char s[1024];
    int n = snprintf(s, sizeof s, "%s|%s|%s|%s|%lld|%lld|%lld|%llu|%.17g|%d|%lld|%lld|%lld|%s", h5teacher_mode_name(m->mode),
                     m->data_sha256, m->teacher_sha256, m->data_file, (long long)m->shard_index, (long long)m->topk,
                     (long long)m->samples, (unsigned long long)m->seed, m->temperature, m->fp32, (long long)N,
                     (long long)T, (long long)V, m->upq_version);
    uint8_t d[32];
    sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, s, (size_t)n);
    sha256_final(&c, d);
    sha256_hex(d, hex);
}

typedef struct {
    prog p;
    int64_t before;  /* rows of the shards before this one */
    int64_t not_run; /* rows skipped or resumed, not computed by this run (not in the rate) */
} progress;

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
    m->fp32 = o->mode == H5T_MODE_FULL && o->fp32;
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
          : a->fp32 != want->fp32 ? "dtype"
          : dims[0] != N || dims[1] != T ? "shape (n_rows, seq_len)" : NULL;
    return *what == NULL;
}

/* --verify of one teacher shard against its data shard (rank 0). */
static int verify_one(const char *tpath, const h5teacher_meta *want, int64_t N, int64_t T)
{
    h5teacher_data d;
    h5teacher_meta m;
    char stored[65];
    struct stat st;
    if (stat(tpath, &st) != 0) return UPQ_FAIL(UPQ_EINPUT, "%s: missing teacher shard", tpath);
    TRY(h5teacher_read(tpath, &d, &m, stored));
    int64_t dims[3] = {d.N, d.T, d.V};
    const char *what = NULL;
    int rc = UPQ_OK;
    if (!meta_matches(&m, dims, want, N, T, &what))
        rc = UPQ_FAIL(UPQ_EINPUT, "%s: attribute %s does not match", tpath, what);
    if (!rc) rc = h5teacher_check(&d, &m, stored, tpath);
    h5teacher_free(&d);
    return rc;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
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

/* Rows [done, N) of one shard in blocks of P rows, one per rank, appended by rank 0 to
 * part in row order; a signal stops the loop after a block (UPQ_EPREEMPT). Collective. */
static int rows_compute(run_ctx *x, const row_layout *L, tpart *part, const int32_t *tok, int64_t N, int64_t T,
                        int64_t done, int64_t index, const char *name)
{
    const teacher_opts *o = x->o;
    int rank = par_rank(), P = par_size(), rc = UPQ_OK;
    int64_t V = x->m->cfg.V;
    uint8_t *mine = upq_malloc((size_t)L->bytes, "teacher row"), *theirs = upq_malloc((size_t)L->bytes, "teacher row");
    rc = par_agree(mine && theirs ? UPQ_OK : UPQ_EIO);
    for (int64_t c = done; c < N && !rc; c += P) {
        int64_t nb = N - c < P ? N - c : P;
        if (rank < nb) {
            h5teacher_data d;
            int32_t *kbuf;
            memset(mine, 0, (size_t)L->bytes);
            layout_view(L, o, mine, T, V, &d, &kbuf);
            double t0 = now_s();
            rc = tfm_forward(x->m, x->a, tok + (c + rank) * T, 1, T, NULL);
            double t1 = now_s();
            if (!rc) row_records(x->a->logits, tok + (c + rank) * T, T, V, c + rank, 0, o, index, &d, kbuf);
            x->st->seconds_forward += t1 - t0;
            if (x->st->n_row_forward < TEACHER_ROW_TIMES) x->st->row_forward[x->st->n_row_forward++] = t1 - t0;
            x->st->seconds_records += now_s() - t1;
            if (x->pause_ms) {
                struct timespec ts = {x->pause_ms / 1000, (long)(x->pause_ms % 1000) * 1000000L};
                nanosleep(&ts, NULL);
            }
        }
        rc = par_agree(rc);
        for (int64_t q = 0; q < nb && !rc; q++) {
            uint8_t *row = q == rank ? mine : theirs;
            if (q > 0) rc = par_bcast(row, L->bytes, (int)q);
            if (!rc && rank == 0) rc = tpart_append(part, row, 1);
            rc = par_agree(rc);
        }
        if (!rc) rc = par_agree(rank == 0 ? tpart_sync(part) : UPQ_OK);
        if (!rc && rank == 0) prog_update(&x->g->p, x->g->before + c + nb, NULL);
        if (!rc && c + nb < N && sig_agree_stop())
            rc = UPQ_FAIL(UPQ_EPREEMPT, "teacher: signal: stopped after row %lld of %lld of %s (rerun to continue)",
                          (long long)(c + nb), (long long)N, name);
    }
    free(mine);
    free(theirs);
    return rc;
}

/* One data shard: skip, verify, or compute + write. Collective. */
static int one_shard(run_ctx *x, const char *name, int64_t index)
{
    const teacher_opts *o = x->o;
    char dpath[4096], tpath[4096], dsha[65] = "";
    snprintf(dpath, sizeof dpath, "%s/%s", o->data_dir, name);
    snprintf(tpath, sizeof tpath, "%s/%s", o->out_dir, name);
    int rank = par_rank(), rc = UPQ_OK;
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
        if (skip) { /* a kill between the commit and the removal leaves the rows behind */
            char pp[4200];
            snprintf(pp, sizeof pp, "%s.part", tpath);
            unlink(pp);
        }
    }
    int32_t sk = skip;
    if ((rc = par_bcast(&sk, sizeof sk, 0))) goto out;
    if (sk) {
        x->st->skipped++;
        x->g->before += N;
        x->g->not_run += N;
        prog_set_start(&x->g->p, x->g->not_run);
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
    row_layout L;
    layout_init(&L, o, T, V);
    char key[65], ppath[4200];
    part_key(key, &want, N, T, V);
    snprintf(ppath, sizeof ppath, "%s.part", tpath);
    tpart part = {.fd = -1};
    int64_t done = 0;
    if (!rc && rank == 0) {
        rc = tpart_open(&part, ppath, key, L.bytes);
        done = part.rows;
    }
    rc = par_agree(rc);
    if (!rc) rc = par_bcast(&done, sizeof done, 0);
    int64_t first = done;
    x->g->not_run += done;
    prog_set_start(&x->g->p, x->g->not_run);
    if (!rc) rc = rows_compute(x, &L, &part, tok, N, T, done, index, name);
    if (!rc && rank == 0) {
        double t0 = now_s();
        rc = part_commit(o, &L, &part, tpath, N, T, V, &want);
        if (!rc) tpart_remove(&part);
        x->st->seconds_commit += now_s() - t0;
    }
    if (rank == 0) tpart_close(&part);
    rc = par_agree(rc);
    x->g->before += N;
    if (!rc) {
        x->st->computed++;
        x->st->rows += N - first;
        x->st->tokens += (N - first) * T;
    }
out:
    free(tok);
    free(mask);
    return rc;
}


int teacher_run(const teacher_opts *o, teacher_stats *st)
{
    memset(st, 0, sizeof *st);
    if (o->temperature <= 0 || !isfinite(o->temperature))
        return UPQ_FAIL(UPQ_EUSAGE, "teacher: --temperature must be > 0");
    double t0 = now_s(), t1 = t0;
    struct dirent **list = NULL;
    int n = scandir(o->data_dir, &list, keep_h5, alphasort);
    if (n < 0) return UPQ_FAIL(UPQ_EINPUT, "%s: cannot list the data folder", o->data_dir);
    int rc = n == 0 ? UPQ_FAIL(UPQ_EINPUT, "%s: no *.h5 token shards", o->data_dir) : UPQ_OK;
    run_ctx x = {.o = o};
    tfm_model m = {0};
    tfm_acts a = {0};
    progress g = {0};
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
    /* the activations before the clock starts, as `upq bench forward` allocates them
     * before timing (a shard with longer rows reallocates them in one_shard) */
    if (!rc && !o->verify && T0 > 0 && T0 <= m.cfg.max_T) rc = tfm_acts_alloc_model(&a, &m, 1, T0);
    rc = par_agree(rc);
    t1 = now_s();
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
    st->seconds_rows = now_s() - t1;
    return rc;
}
