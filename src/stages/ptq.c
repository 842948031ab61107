/* ptq.c - the steps of `upq ptq` (ptq.h) that every driver shares (ptq_internal.h): the
 * run state, then per block: the FP block's outputs on the block's inputs (and X^T X of
 * every linear input when gptq or --clip needs it), RTN (the init), GPTQ when asked, the
 * reconstruction errors, a part file per finished block, and the final container, CSV and
 * SVG. Not the order of blocks over ranks (ptq_main.c one rank, ptq_mpi*.c several), the
 * math (quant.c, gptq.c, ptq_block.c) nor the file layout (io/h5qmodel.c). */
#include "ptq.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gptq.h"
#include "h5qmodel.h"
#include "par.h"
#include "ppl.h"
#include "progress.h"
#include "ptq_block.h"
#include "ptq_internal.h"
#include "quant.h"
#include "upq_err.h"

#ifndef UPQ_VERSION
#define UPQ_VERSION "unknown"
#endif

void ptq_opts_default(ptq_opts *o)
{
    memset(o, 0, sizeof *o);
    o->bits = 4;
    o->group = 128;
    o->method = PTQ_RTN;
    o->calib_samples = 128;
    o->seq_len = 512;
    o->damp = 0.01;
    o->gptq_block = 128;
    o->progress = 1;
    o->tsq_init_gptq = 1;
    o->scalapack_min_dim = SL_MIN_DIM_DEFAULT;
    tsq_opts_default(&o->tsq);
}

static const char *method_name(int m) { return m == PTQ_TESSERAQ ? "tesseraq" : m == PTQ_GPTQ ? "gptq" : "rtn"; }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Shapes of linear p: N outputs, K inputs; H index of its input. */
static void proj_shape(const tfm_config *c, int p, int64_t *N, int64_t *K, int *hi)
{
    static const int h[TFM_NPROJ] = {0, 0, 0, 1, 2, 2, 3};
    tfm_proj_shape(c, p, N, K);
    *hi = h[p];
}

static float **proj_ptr(tfm_layer *w, int p)
{
    float **ps[TFM_NPROJ] = {&w->wq, &w->wk, &w->wv, &w->wo, &w->w_gate, &w->w_up, &w->w_down};
    return ps[p];
}

/* A copy of layer l whose linears point at the dequantization of ql[0..TFM_NPROJ). */
static tfm_layer dekq_qmat(ptq_ctx *x, int64_t l, const kq_qmat *ql)
{
    tfm_layer w = x->m.layers[l];
    float *dst = x->wq;
    for (int p = 0; p < TFM_NPROJ; p++) {
        quant_dequant(&ql[p], dst, ql[p].K);
        *proj_ptr(&w, p) = dst;
        dst += ql[p].N * ql[p].K;
    }
    return w;
}

/* X^T X of one window's linear inputs ln1 (T, C), atty (T, HD), ln2 (T, C), act (T, F)
 * added to x->H. */
static int hessian_add_from(ptq_ctx *x, const float *ln1, const float *atty, const float *ln2, const float *act)
{
    int64_t T = x->T, C = x->c.C, HD = x->c.H * x->c.D;
    TRY(gptq_hessian_add(x->H[0], ln1, T, C));
    TRY(gptq_hessian_add(x->H[1], atty, T, HD));
    TRY(gptq_hessian_add(x->H[2], ln2, T, C));
    return gptq_hessian_add(x->H[3], act, T, x->c.F);
}

/* X^T X of the linear inputs of the window just forwarded (x->ws) added to x->H. */
static int hessian_add(ptq_ctx *x) { return hessian_add_from(x, x->ws.ln1, x->ws.atty, x->ws.ln2, x->ws.act); }

/* out[s] = block(w)(X[s]) for window s; with H: accumulate X^T X of the linear inputs. */
static int window_pass(ptq_ctx *x, const tfm_layer *w, float *out, int want_h, int64_t s)
{
    int64_t TC = x->T * x->c.C;
    ptq_block_forward(&x->c, w, &x->ws, x->X + s * TC, out + s * TC, x->T);
    ptq_ctx_release(x, x->X + s * TC, TC);
    ptq_ctx_release(x, out + s * TC, TC);
    return want_h ? hessian_add(x) : UPQ_OK;
}

/* out = block(w) over every sample; with H: accumulate X^T X of the linear inputs. */
static int block_pass(ptq_ctx *x, const tfm_layer *w, float *out, int want_h)
{
    for (int64_t s = 0; s < x->S; s++) TRY(window_pass(x, w, out, want_h, s));
    return UPQ_OK;
}

static int want_hessian(const ptq_ctx *x)
{
    return x->o->method == PTQ_GPTQ || x->o->clip || (x->o->method == PTQ_TESSERAQ && x->o->tsq_init_gptq);
}

static void zero_hessians(ptq_ctx *x)
{
    for (int i = 0; i < 4; i++) {
        int64_t K = i == 1 ? x->c.H * x->c.D : i == 3 ? x->c.F : x->c.C;
        memset(x->H[i], 0, (size_t)(K * K) * sizeof(double));
    }
}

/* RTN (with the clipping search when --clip) of the TFM_NPROJ linears of layer l into ql. */
static int quant_rtn_block(ptq_ctx *x, int64_t l, kq_qmat *ql)
{
    float grid[16];
    int ng = x->o->clip || x->o->grid == QUANT_GRID_SEQ ? quant_clip_grid(grid, 16) : 0;
    for (int p = 0; p < TFM_NPROJ; p++) {
        int64_t N, K;
        int hi;
        proj_shape(&x->c, p, &N, &K, &hi);
        TRY(quant_qmat_init(&ql[p], x->o->bits, x->o->group, N, K));
        ql[p].grid = x->o->grid; /* SEQ: clip search by weight error, by output error with --clip */
        quant_rtn(&ql[p], *proj_ptr(&x->m.layers[l], p), K, x->o->clip ? x->H[hi] : NULL, grid, ng);
    }
    return UPQ_OK;
}

static int quant_gptq_block(ptq_ctx *x, int64_t l, kq_qmat *ql)
{
    gptq_opts go = {x->o->damp, x->o->gptq_block, x->o->act_order};
    int rc = UPQ_OK;
    for (int p = 0; p < TFM_NPROJ && !rc; p++) {
        int64_t N, K;
        int hi;
        proj_shape(&x->c, p, &N, &K, &hi);
        TRY(quant_qmat_init(&ql[p], x->o->bits, x->o->group, N, K));
        ql[p].grid = x->o->grid;
        int64_t n0, n1; /* a block group: this member's rows (independent given H^-1), then gathered */
        ptq_group_rows(x, N, &n0, &n1);
        kq_qmat mine = ql[p];
        mine.N = n1 - n0, mine.data = kq_qmat_block(&ql[p], n0, 0);
        float *W = upq_malloc((size_t)((n1 - n0) * K) * sizeof(float), "GPTQ weight copy");
        double *H = upq_malloc((size_t)(K * K) * sizeof(double), "GPTQ X^T X copy");
        rc = W && H ? UPQ_OK : UPQ_EIO;
        if (!rc) {
            memcpy(W, *proj_ptr(&x->m.layers[l], p) + n0 * K, (size_t)((n1 - n0) * K) * sizeof(float));
            memcpy(H, x->H[hi], (size_t)(K * K) * sizeof(double));
            rc = gptq_quantize_inv(&mine, W, H, &go, ptq_group_inverse(x, K), &x->sl);
        }
        free(W), free(H);
        if (!rc) rc = ptq_group_gather_rows(x, &ql[p]);
    }
    return rc;
}

static void free_block(kq_qmat *ql)
{
    for (int p = 0; p < TFM_NPROJ; p++) quant_qmat_free(&ql[p]);
}

typedef struct {
    const ptq_ctx *x;
    int64_t l;
    double t0;
} round_ctx;

/* One progress line (progress.h) for item `at` of `total`, `counted` of them done
 * in this run since t0 (resumed ones are not in the rate). */
static void progress_line(const char *stage, const char *unit, int64_t at, int64_t total, int64_t counted, double t0,
                          const char *extra)
{
    prog p;
    prog_init(&p, stderr, stage, unit, total);
    p.t0 = t0; /* now_s and progress.c both read CLOCK_MONOTONIC */
    prog_set_start(&p, at - counted);
    prog_event(&p, at, extra);
}

static void round_progress(void *vctx, int round, double loss)
{
    const round_ctx *r = vctx;
    if (!r->x->o->progress || !ptq_group_leader(r->x)) return;
    char stage[64], extra[64];
    snprintf(stage, sizeof stage, "ptq: block %lld/%lld tesseraq", (long long)(r->l + 1), (long long)r->x->c.L);
    snprintf(extra, sizeof extra, "loss %.4e", loss);
    progress_line(stage, "round", round + 1, r->x->o->tsq.rounds, round + 1, r->t0, extra);
}

/* TesseraQ from the init in ql (rtn or gptq), on the block's inputs X and FP outputs Y. */
static int tesseraq_block(ptq_ctx *x, int64_t l, kq_qmat *ql)
{
    tsq_state st;
    tsq_opts to = x->o->tsq;
    int rc = tsq_init_h(&st, &x->c, &x->m.layers[l], ql, x->T, to.h_init);
    to.seed = x->o->seed * 1000003u + (uint64_t)l;
    round_ctx rc_ = {x, l, now_s()};
    double loss = 0.0;
    if (x->grp) /* this rank's windows [s0, s0+S) of S_all; gradients summed over the group */
        to.win_first = x->s0, to.win_count = x->S, to.reduce = ptq_group_tsq_reduce, to.reduce_ctx = x;
    if (!rc) rc = tsq_run(&st, x->X, x->Y, x->grp ? x->S_all : x->S, &to, ql, &loss, round_progress, &rc_);
    tsq_free(&st);
    return rc;
}

/* Quantizes block l from scratch: X -> Y (FP), errors, ql; leaves the next input in Yq
 * (quantized outputs). */
static int run_block(ptq_ctx *x, int64_t l, kq_qmat *ql)
{
    int want_h = want_hessian(x);
    if (x->pre_block != l) { /* else the FP chain made Y and this rank's X^T X window by window */
        if (want_h) zero_hessians(x);
        TRY(block_pass(x, &x->m.layers[l], x->Y, want_h));
    }
    x->pre_block = -1;
    for (int i = 0; i < 4 && want_h; i++) { /* partial sums of the block group's windows */
        int64_t K = i == 1 ? x->c.H * x->c.D : i == 3 ? x->c.F : x->c.C;
        TRY(ptq_group_sum(x, x->H[i], K * K));
    }
    TRY(quant_rtn_block(x, l, ql));
    tfm_layer w = dekq_qmat(x, l, ql);
    TRY(block_pass(x, &w, x->Yq, 0));
    TRY(ptq_group_mse(x, x->Yq, x->Y, &x->err0[l])); /* over the block group's windows */
    x->err1[l] = x->err0[l];
    if (x->o->method == PTQ_RTN) return UPQ_OK;
    if (x->o->method == PTQ_GPTQ || x->o->tsq_init_gptq) {
        free_block(ql);
        TRY(quant_gptq_block(x, l, ql));
    }
    if (x->o->method == PTQ_TESSERAQ) TRY(tesseraq_block(x, l, ql));
    TRY(ptq_group_bcast_block(x, ql)); /* the leader's block is the one committed */
    w = dekq_qmat(x, l, ql);
    TRY(block_pass(x, &w, x->Yq, 0));
    TRY(ptq_group_mse(x, x->Yq, x->Y, &x->err1[l]));
    return UPQ_OK;
}

static void part_path(const ptq_opts *o, int64_t l, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s.parts/block_%03lld.h5", o->out, (long long)l);
}

/* One block: resumed from its part file when there is one, else quantized and committed.
 * Afterwards X holds the next block's input. */
static int do_block(ptq_ctx *x, int64_t l, int *resumed)
{
    char part[4200];
    part_path(x->o, l, part, sizeof part);
    kq_qmat *ql = &x->ql[l * TFM_NPROJ];
    *resumed = access(part, R_OK) == 0;
    TRY(ptq_group_bcast_int(x, resumed)); /* the block group follows its leader */
    if (*resumed) {
        TRY(h5q_block_read(part, l, ql, &x->err0[l], &x->err1[l], x->params));
        tfm_layer w = dekq_qmat(x, l, ql);
        int fp = x->o->input_mode == PTQ_INPUT_FP;
        if (!(fp && x->pre_block == l)) TRY(block_pass(x, fp ? &x->m.layers[l] : &w, fp ? x->Y : x->Yq, 0));
        x->pre_block = -1;
    } else {
        TRY(run_block(x, l, ql));
        double tw = now_s();
        if (ptq_group_leader(x)) TRY(h5q_block_write(part, l, ql, x->err0[l], x->err1[l], x->params));
        x->tm[PTQ_T_WRITE] += now_s() - tw;
    }
    float *next = x->o->input_mode == PTQ_INPUT_FP ? x->Y : x->Yq, *t = x->X;
    x->X = next;
    if (next == x->Y) x->Y = t;
    else x->Yq = t;
    return UPQ_OK;
}

/* X, Y, Yq: in RAM, or with --scratch mapped from this rank's scratch file, named by the
 * Slurm job (else the process id) and the rank. */
static int ctx_acts(ptq_ctx *x, const ptq_opts *o)
{
    int64_t n = x->S * x->T * x->c.C;
    if (!o->scratch) {
        x->X = upq_malloc((size_t)n * sizeof(float), "calibration activations");
        x->Y = upq_malloc((size_t)n * sizeof(float), "FP block outputs");
        x->Yq = upq_malloc((size_t)n * sizeof(float), "quantized block outputs");
        return x->X && x->Y && x->Yq ? UPQ_OK : UPQ_EIO;
    }
    static const char *const names[3] = {"X", "Y", "Yq"};
    const int64_t shape[3] = {x->S, x->T, x->c.C};
    char job[64];
    const char *sj = getenv("SLURM_JOB_ID");
    if (sj && *sj) snprintf(job, sizeof job, "%s", sj);
    else snprintf(job, sizeof job, "%ld", (long)getpid());
    TRY(h5scratch_create(o->scratch, job, par_rank(), 3, names, shape, &x->scr));
    x->X = h5scratch_array(x->scr, 0), x->Y = h5scratch_array(x->scr, 1), x->Yq = h5scratch_array(x->scr, 2);
    return UPQ_OK;
}

static int ctx_init(ptq_ctx *x, const ptq_opts *o, const int32_t *ids)
{
    tfm_config *c = &x->c;
    x->S = x->S_all = o->calib_samples;
    x->pre_block = -1;
    x->sl.min_dim = o->scalapack_min_dim;
    x->T = o->seq_len;
    int64_t HD = c->H * c->D, KD = c->KV * c->D;
    TRY(ctx_acts(x, o));
    x->wq = upq_malloc((size_t)(2 * HD * c->C + 2 * KD * c->C + 3 * c->F * c->C) * sizeof(float), "block weights");
    int64_t hk[4] = {c->C, HD, c->C, c->F};
    for (int i = 0; i < 4; i++) x->H[i] = upq_malloc((size_t)(hk[i] * hk[i]) * sizeof(double), "X^T X");
    x->ql = upq_calloc((size_t)(c->L * TFM_NPROJ), sizeof *x->ql, "quantized layers");
    x->err0 = upq_calloc((size_t)c->L, sizeof(double), "block errors");
    x->err1 = upq_calloc((size_t)c->L, sizeof(double), "block errors");
    if (!x->wq || !x->H[0] || !x->H[1] || !x->H[2] || !x->H[3] || !x->ql ||
        !x->err0 || !x->err1)
        return UPQ_EIO;
    TRY(ptq_block_ws_alloc(&x->ws, c, x->T));
    for (int64_t i = 0; i < x->S * x->T; i++) {
        if (ids[i] < 0 || ids[i] >= c->V)
            return UPQ_FAIL(UPQ_EINPUT, "%s: calibration token %d (sample %lld) is outside the vocabulary [0, %lld)",
                            o->calib, ids[i], (long long)(i / x->T), (long long)c->V);
        memcpy(x->X + i * c->C, x->m.tok_emb + (int64_t)ids[i] * c->C, (size_t)c->C * sizeof(float));
        if ((i + 1) % x->T == 0) ptq_ctx_release(x, x->X + (i + 1 - x->T) * c->C, x->T * c->C);
    }
    return UPQ_OK;
}

static void ctx_free(ptq_ctx *x)
{
    for (int64_t i = 0; x->ql && i < x->c.L * TFM_NPROJ; i++) quant_qmat_free(&x->ql[i]);
    if (x->scr) h5scratch_destroy(x->scr);
    else free(x->X), free(x->Y), free(x->Yq);
    free(x->ql), free(x->wq), free(x->err0), free(x->err1);
    for (int i = 0; i < 4; i++) free(x->H[i]);
    ptq_block_ws_free(&x->ws);
    tfm_model_free(&x->m);
    free(x->prov);
    x->prov = NULL;
}

/* The parameters as one JSON line through jansson. ", " / ": " separators and reals
 * with 6 significant digits keep the text the former printf ("%g") wrote for every
 * value whose %g form has a '.' and no exponent (all defaults), so containers and
 * part files stay byte-identical. */
static int make_params(ptq_ctx *x, const char *calib_sha)
{
    const ptq_opts *o = x->o;
    json_t *tsq = json_pack("{s:s, s:i, s:i, s:f, s:f, s:f, s:I, s:s}", "init", o->tsq_init_gptq ? "gptq" : "rtn",
                            "rounds", o->tsq.rounds, "steps", o->tsq.steps, "lr", o->tsq.lr, "lr_scale",
                            o->tsq.lr_scale, "final_frac", o->tsq.final_frac, "batch", (json_int_t)o->tsq.batch,
                            "h_init", o->tsq.h_init == TSQ_H_FRAC ? "frac" : "code");
    json_t *j = json_pack("{s:s, s:i, s:i, s:s, s:i, s:s, s:s, s:I, s:I, s:I, s:f, s:I, s:i, s:s, s:o}", "method",
                          method_name(o->method), "bits", o->bits, "group", o->group, "grid",
                          o->grid == QUANT_GRID_SEQ ? "seq" : "asym", "clip", o->clip, "input",
                          o->input_mode == PTQ_INPUT_FP ? "fp" : "quant", "calib_sha256", calib_sha, "calib_samples",
                          (json_int_t)o->calib_samples, "seq_len", (json_int_t)o->seq_len, "seed",
                          (json_int_t)o->seed, "damp", o->damp, "gptq_block", (json_int_t)o->gptq_block, "act_order",
                          o->act_order, "quantized", "q,k,v,o,gate,up,down", "tesseraq", tsq);
    char *txt = j ? json_dumps(j, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : NULL;
    json_decref(j);
    int fits = txt && snprintf(x->params, sizeof x->params, "%s", txt) < (int)sizeof x->params;
    free(txt);
    return fits ? UPQ_OK : UPQ_FAIL(UPQ_EUSAGE, "ptq: cannot encode the parameters (a non-finite --damp or --tsq-lr?)");
}

/* Provenance: method, parameters, sources; `created` from SOURCE_DATE_EPOCH when set
 * (reproducible files), else now. */
static int make_prov(ptq_ctx *x, h5m_provenance *p, const char *calib_path)
{
    const ptq_opts *o = x->o;
    char method[64];
    snprintf(method, sizeof method, "ptq-%s-int%d", method_name(o->method), o->bits);
    h5m_prov_init(p, method, o->argc, o->argv);
    snprintf(p->params, sizeof p->params, "%s", x->params);
    snprintf(p->upq_version, sizeof p->upq_version, "%s", UPQ_VERSION);
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    time_t t = sde && *sde ? (time_t)atoll(sde) : time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(p->created, sizeof p->created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    struct stat st;
    if (stat(o->model, &st) == 0 && S_ISREG(st.st_mode)) TRY(h5m_prov_add_file(p, o->model));
    else TRY(h5m_prov_add_model_dir(p, o->model));
    return h5m_prov_add_file(p, calib_path);
}

static void progress(const ptq_ctx *x, int64_t l, int resumed, double t0, double tb, int64_t done)
{
    if (!x->o->progress) return;
    const char *m = method_name(x->o->method);
    char extra[160];
    if (resumed)
        snprintf(extra, sizeof extra, "resumed from its part file: err rtn %.4e -> %s %.4e", x->err0[l], m, x->err1[l]);
    else
        snprintf(extra, sizeof extra, "%s: err rtn %.4e -> %s %.4e (%.1f s)", m, x->err0[l], m, x->err1[l],
                 now_s() - tb);
    progress_line("ptq", "block", l + 1, x->c.L, done, t0, extra);
}

static int check_opts(const ptq_opts *o, const tfm_config *c)
{
    if (!quant_format_valid(o->bits, o->group))
        return UPQ_FAIL(UPQ_EUSAGE, "--bits %d --group %d: bits must be 2, 3, 4 or 8 and group 0, 32, 64 or 128",
                        o->bits, o->group);
    if (o->calib_samples < 1 || o->seq_len < 2 || o->seq_len > c->max_T)
        return UPQ_FAIL(UPQ_EUSAGE, "--calib-samples %lld --seq-len %lld: need >= 1 sample and 2 <= seq-len <= %lld",
                        (long long)o->calib_samples, (long long)o->seq_len, (long long)c->max_T);
    if (o->damp <= 0.0 || o->gptq_block < 1)
        return UPQ_FAIL(UPQ_EUSAGE, "--damp must be > 0 and --gptq-block >= 1");
    return UPQ_OK;
}

static int remove_parts(const ptq_opts *o, int64_t L)
{
    char p[4200];
    for (int64_t l = 0; l < L; l++) {
        part_path(o, l, p, sizeof p);
        unlink(p);
    }
    snprintf(p, sizeof p, "%s.parts", o->out);
    rmdir(p);
    return UPQ_OK;
}

/* x->prov (heap: it is large) made once. */
static int ctx_prov(ptq_ctx *x, const char *calib_path)
{
    double t0 = now_s();
    if (!x->prov && !(x->prov = upq_malloc(sizeof *x->prov, "container provenance"))) return UPQ_EIO;
    int rc = make_prov(x, x->prov, calib_path);
    if (rc) free(x->prov), x->prov = NULL;
    x->tm[PTQ_T_PROV] += now_s() - t0;
    return rc;
}

static int finish(ptq_ctx *x, const char *calib_path)
{
    const ptq_opts *o = x->o;
    if (!x->prov) TRY(ctx_prov(x, calib_path));
    double tf = now_s();
    h5q_vec v[2] = {{"block_err_rtn", x->c.L, x->err0}, {"block_err_final", x->c.L, x->err1}};
    TRY(h5q_write(o->out, &x->m, x->ql, x->prov, v, 2));
    char csv[4200], svg[4200], base[4200];
    snprintf(base, sizeof base, "%s", o->out);
    size_t n = strlen(base);
    if (n > 3 && !strcmp(base + n - 3, ".h5")) base[n - 3] = 0;
    snprintf(csv, sizeof csv, "%s", o->csv ? o->csv : "");
    if (!o->csv) snprintf(csv, sizeof csv, "%s.blocks.csv", base);
    snprintf(svg, sizeof svg, "%s.blocks.svg", base);
    TRY(ptq_report_write(csv, svg, method_name(o->method), x->err0, x->err1, x->c.L));
    printf("block  err_rtn      err_%-8s ratio\n", method_name(o->method));
    for (int64_t l = 0; l < x->c.L; l++)
        printf("%5lld  %.5e  %.5e  %.3f\n", (long long)l, x->err0[l], x->err1[l],
               x->err0[l] > 0 ? x->err1[l] / x->err0[l] : 1.0);
    printf("wrote %s (table %s, plot %s)\n", o->out, csv, svg);
    fflush(stdout);
    TRY(remove_parts(o, x->c.L));
    x->tm[PTQ_T_FINAL] += now_s() - tf;
    return UPQ_OK;
}

/* For ptq_main.c and ptq_mpi*.c (ptq_internal.h). */
int ptq_check_opts(const ptq_opts *o, const tfm_config *c) { return check_opts(o, c); }
int ptq_ctx_init(ptq_ctx *x, const ptq_opts *o, const int32_t *ids) { return ctx_init(x, o, ids); }
void ptq_ctx_free(ptq_ctx *x) { ctx_free(x); }
int ptq_ctx_params(ptq_ctx *x, const char *calib_sha) { return make_params(x, calib_sha); }
const char *ptq_method_name(int method) { return method_name(method); }
int ptq_ctx_block(ptq_ctx *x, int64_t l, int *resumed) { return do_block(x, l, resumed); }
int ptq_ctx_finish(ptq_ctx *x, const char *calib_path) { return finish(x, calib_path); }
int ptq_ctx_prov(ptq_ctx *x, const char *calib_path) { return x->prov ? UPQ_OK : ctx_prov(x, calib_path); }
void ptq_ctx_progress(const ptq_ctx *x, int64_t l, int resumed, double t0, double tb, int64_t done)
{
    progress(x, l, resumed, t0, tb, done);
}
void ptq_ctx_part_path(const ptq_opts *o, int64_t l, char *buf, size_t cap) { part_path(o, l, buf, cap); }
double ptq_now_s(void) { return now_s(); }
int ptq_ctx_want_h(const ptq_ctx *x) { return want_hessian(x); }
void ptq_ctx_zero_h(ptq_ctx *x) { zero_hessians(x); }
int ptq_ctx_fp_window(ptq_ctx *x, int64_t l, const float *in, float *out)
{
    ptq_block_forward(&x->c, &x->m.layers[l], &x->ws, in, out, x->T);
    return want_hessian(x) ? hessian_add(x) : UPQ_OK;
}
int64_t ptq_ctx_h_floats(const ptq_ctx *x) { return x->T * (2 * x->c.C + x->c.H * x->c.D + x->c.F); }
void ptq_ctx_fp_window_save(ptq_ctx *x, int64_t l, const float *in, float *out, float *save)
{
    int64_t T = x->T, C = x->c.C, HD = x->c.H * x->c.D;
    ptq_block_forward(&x->c, &x->m.layers[l], &x->ws, in, out, T);
    if (!want_hessian(x)) return;
    memcpy(save, x->ws.ln1, (size_t)(T * C) * sizeof(float));
    memcpy(save + T * C, x->ws.atty, (size_t)(T * HD) * sizeof(float));
    memcpy(save + T * (C + HD), x->ws.ln2, (size_t)(T * C) * sizeof(float));
    memcpy(save + T * (2 * C + HD), x->ws.act, (size_t)(T * x->c.F) * sizeof(float));
}
int ptq_ctx_h_add_saved(ptq_ctx *x, const float *save)
{
    int64_t T = x->T, C = x->c.C, HD = x->c.H * x->c.D;
    return hessian_add_from(x, save, save + T * C, save + T * (C + HD), save + T * (2 * C + HD));
}
