/* test_teacher.c - the teacher stage's records against an independent reference (the
 * live FP32 forward's logits and a long-double log-softmax written here):
 * 1. full: every stored fp16 log-prob equals the reference within fp16 rounding
 *    (|err| <= 1.01 (2^-11 |ref| + 2^-24): the fp16 half-ulp, plus the float
 *    step before it), at temperature 1 and 2;
 * 2. topk: ids are the K largest reference logits, lse matches, log_tail is the log of
 *    the reference mass outside them, and sum exp(logit - lse) over the K + exp(log_tail)
 *    is 1 (the full distribution's mass); target_logit is the next token's, NaN at T-1;
 * 3. sample: counts sum to N, ids unique and increasing, logits at the ids, same draws
 *    for the same (seed, shard, row), different ones for another row.
 * Part A: a random model through teacher_row_records. Part B: stories260k (../shared)
 * through teacher_run and the written shard file (skipped when absent). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "f16.h"
#include "forward.h"
#include "h5shard.h"
#include "h5teacher.h"
#include "hf_model.h"
#include "rand_model.h"
#include "teacher.h"
#include "test_util.h"
#include "upq_err.h"

/* Reference log-softmax of logits/temp in long double. */
static void ref_logsoftmax(const float *x, int64_t V, double temp, long double *lp, long double *lse_out)
{
    long double mx = -INFINITY, s = 0;
    for (int64_t j = 0; j < V; j++) mx = fmaxl(mx, temp == 1.0 ? x[j] : (long double)(x[j] * (float)(1.0 / temp)));
    for (int64_t j = 0; j < V; j++) {
        long double z = temp == 1.0 ? x[j] : (long double)(x[j] * (float)(1.0 / temp));
        s += expl(z - mx);
    }
    long double lse = mx + logl(s);
    for (int64_t j = 0; j < V; j++) {
        long double z = temp == 1.0 ? x[j] : (long double)(x[j] * (float)(1.0 / temp));
        lp[j] = z - lse;
    }
    *lse_out = lse;
}

/* Checks one shard's records (rows 0..N-1) against logits (N,T,V) of the live forward. */
static void check_records(const h5teacher_data *d, int mode, int64_t K, int64_t S, double temp, const float *logits,
                          const int32_t *tok, const char *what)
{
    int64_t N = d->N, T = d->T, V = d->V;
    long double *lp = malloc((size_t)V * sizeof *lp), lse;
    double efull = 0, e_lse = 0, emass = 0, emass16 = 0, etail = 0;
    int bad_ids = 0, bad_target = 0, bad_sample = 0;
    for (int64_t p = 0; p < N * T; p++) {
        const float *x = logits + p * V;
        ref_logsoftmax(x, V, temp, lp, &lse);
        if (mode == H5T_MODE_FULL) {
            for (int64_t j = 0; j < V; j++) {
                double got = kq_f16_to_f32(d->logp[p * V + j]), ref = (double)lp[j];
                double err = fabs(got - ref) / (fabs(ref) * 0x1p-11 + 0x1p-24); /* in units of the bound */
                efull = tu_max(efull, err);
            }
            continue;
        }
        e_lse = tu_max(e_lse, fabs((double)d->lse[p] - (double)lse) / (1 + fabsl(lse)));
        if (mode == H5T_MODE_TOPK) {
            long double in = 0, in16 = 0;
            for (int64_t k = 0; k < K; k++) {
                int32_t id = d->ids[p * K + k];
                if (id < 0 || id >= V) { bad_ids++; continue; }
                /* every id outside the K has a reference log-prob <= the K-th */
                in += expl(lp[id]);
                in16 += expl((long double)kq_f16_to_f32(d->logits[p * K + k]) - d->lse[p]);
            }
            int64_t kth = d->ids[p * K + K - 1];
            for (int64_t j = 0; j < V && kth >= 0 && kth < V; j++) {
                int member = 0;
                for (int64_t k = 0; k < K; k++) member |= d->ids[p * K + k] == j;
                if (!member && lp[j] > lp[kth]) bad_ids++;
            }
            double tail_ref = K < V ? (double)logl(1 - in) : -INFINITY;
            etail = tu_max(etail, K < V ? fabs((double)d->log_tail[p] - tail_ref) / (1 + fabs(tail_ref))
                                        : (d->log_tail[p] == -INFINITY ? 0 : NAN));
            emass = tu_max(emass, fabs((double)(in + expl((long double)d->log_tail[p])) - 1));
            emass16 = tu_max(emass16, fabs((double)(in16 + expl((long double)d->log_tail[p])) - 1));
            int64_t t = p % T;
            float want = t + 1 < T ? (temp == 1.0 ? x[tok[p + 1]] : x[tok[p + 1]] * (float)(1.0 / temp)) : NAN;
            if (t + 1 < T ? d->target_logit[p] != want : !isnan(d->target_logit[p])) bad_target++;
        } else {
            int64_t s = 0;
            for (int64_t j = d->offsets[p]; j < d->offsets[p + 1]; j++) {
                int32_t id = d->ids[j];
                if (id < 0 || id >= V || (j > d->offsets[p] && id <= d->ids[j - 1]) || d->counts[j] < 1) { bad_sample++; continue; }
                s += d->counts[j];
                float z = temp == 1.0 ? x[id] : x[id] * (float)(1.0 / temp);
                if (d->logits[j] != kq_f32_to_f16(z)) bad_sample++;
            }
            if (s != S) bad_sample++;
        }
    }
    if (mode == H5T_MODE_FULL) {
        EXPECT_CLOSE(efull, 1.01, "%s: full log-probs off by %.3g fp16 rounding bounds", what, efull);
        printf("  %s full T=%g: max |err| = %.3g x (2^-11 |ref| + 2^-24)\n", what, temp, efull);
    } else {
        EXPECT_CLOSE(e_lse, 1e-6, "%s: lse relative error %.3g", what, e_lse);
        if (mode == H5T_MODE_TOPK) {
            CHECK_MSG(bad_ids == 0, "%s: %d top-K id errors", what, bad_ids);
            CHECK_MSG(bad_target == 0, "%s: %d target_logit errors", what, bad_target);
            EXPECT_CLOSE(etail, 1e-5, "%s: log_tail error %.3g", what, etail);
            EXPECT_CLOSE(emass, 1e-6, "%s: mass (exact logits) off by %.3g", what, emass);
            EXPECT_CLOSE(emass16, 1e-2, "%s: mass (fp16 logits) off by %.3g", what, emass16);
            printf("  %s topk K=%lld T=%g: lse err %.2g, log_tail err %.2g, mass-1 %.2g (fp16 logits %.2g)\n", what,
                   (long long)K, temp, e_lse, etail, emass, emass16);
        } else {
            CHECK_MSG(bad_sample == 0, "%s: %d sample record errors", what, bad_sample);
            printf("  %s sample N=%lld: lse err %.2g, %lld unique ids over %lld positions\n", what, (long long)S, e_lse,
                   (long long)d->offsets[N * T], (long long)(N * T));
        }
    }
    free(lp);
}

/* Builds one row's records via teacher_row_records into whole-shard style arrays. */
static void part_a(void)
{
    tfm_config c = rm_config(0, 0);
    tfm_model m;
    CHECK_OK(tfm_model_alloc(&m, &c));
    rm_model_init(&m);
    const int64_t N = 3, T = 12, V = c.V, K = 5, S = 7;
    int32_t tok[36];
    for (int i = 0; i < N * T; i++) tok[i] = (int32_t)((i * 7 + 3) % V);
    tfm_acts a = {0};
    CHECK_OK(tfm_acts_alloc(&a, &c, 1, T, 0));
    float *logits = malloc((size_t)(N * T * V) * sizeof *logits);
    for (int64_t r = 0; r < N; r++) {
        CHECK_OK(tfm_forward(&m, &a, tok + r * T, 1, T, NULL));
        memcpy(logits + r * T * V, a.logits, (size_t)(T * V) * sizeof *logits);
    }
    double temps[2] = {1.0, 2.0};
    for (int ti = 0; ti < 2; ti++)
        for (int mode = 0; mode < 3; mode++) {
            teacher_opts o = {.mode = mode, .topk = K, .samples = S, .temperature = temps[ti], .seed = 5};
            h5teacher_data d = {.N = N, .T = T, .V = V};
            int64_t NT = N * T, W = mode == H5T_MODE_TOPK ? K : S;
            d.logp = calloc((size_t)(NT * V), 2);
            d.ids = calloc((size_t)(NT * W), 4);
            d.logits = calloc((size_t)(NT * W), 2);
            d.counts = calloc((size_t)(NT * W), 4);
            d.lse = calloc((size_t)NT, 4);
            d.log_tail = calloc((size_t)NT, 4);
            d.target_logit = calloc((size_t)NT, 4);
            int32_t *kb = calloc((size_t)NT, 4);
            for (int64_t r = 0; r < N; r++)
                teacher_row_records(logits + r * T * V, tok + r * T, T, V, r, &o, 2, &d, kb);
            if (mode == H5T_MODE_SAMPLE) { /* the compaction the driver does on rank 0 */
                d.offsets = calloc((size_t)(NT + 1), 8);
                int64_t mm = 0;
                for (int64_t p = 0; p < NT; p++) {
                    d.offsets[p] = mm;
                    for (int64_t j = 0; j < kb[p]; j++, mm++) {
                        d.ids[mm] = d.ids[p * S + j];
                        d.counts[mm] = d.counts[p * S + j];
                        d.logits[mm] = d.logits[p * S + j];
                    }
                }
                d.offsets[NT] = mm;
                /* same (seed, shard, row) -> same draws; another shard index -> other draws */
                h5teacher_data e = d;
                e.ids = calloc((size_t)(NT * S), 4);
                e.counts = calloc((size_t)(NT * S), 4);
                e.logits = calloc((size_t)(NT * S), 2);
                e.lse = calloc((size_t)NT, 4);
                int32_t *kb2 = calloc((size_t)NT, 4), *kb3 = calloc((size_t)NT, 4);
                teacher_row_records(logits + T * V, tok + T, T, V, 1, &o, 2, &e, kb2);
                int same = 1;
                for (int64_t t = 0; t < T; t++) same &= kb2[T + t] == kb[T + t];
                CHECK_MSG(same, "row 1 redrawn alone gives other unique counts");
                teacher_row_records(logits + T * V, tok + T, T, V, 1, &o, 3, &e, kb3);
                int differ = 0;
                for (int64_t t = 0; t < T; t++) differ |= kb3[T + t] != kb[T + t] || e.ids[(T + t) * S] != d.ids[d.offsets[T + t]];
                CHECK_MSG(differ, "another shard index draws the same ids");
                free(e.ids), free(e.counts), free(e.logits), free(e.lse), free(kb2), free(kb3);
            }
            check_records(&d, mode, K, S, temps[ti], logits, tok, "random model");
            free(kb);
            h5teacher_free(&d);
        }
    free(logits);
    tfm_acts_free(&a);
    tfm_model_free(&m);
}

/* stories260k through the stage and the file. */
static void part_b(void)
{
    const char *sh = tu_shared_dir();
    char model[4096];
    snprintf(model, sizeof model, "%s/models/stories260k", sh ? sh : "");
    if (!sh || access(model, F_OK) != 0) {
        SKIP_PART("stories260k not found under UPQ_SHARED_DIR");
        return;
    }
    tfm_model m;
    CHECK_OK(hf_model_load(model, &m));
    const int64_t N = 3, T = 24, V = m.cfg.V;
    int32_t *tok = malloc((size_t)(N * T) * sizeof *tok);
    uint8_t *mask = malloc((size_t)(N * T));
    for (int64_t i = 0; i < N * T; i++) tok[i] = (int32_t)((i * 2654435761u) % (uint32_t)V), mask[i] = 1;
    char dir[] = "/tmp/upq_test_teacher_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char data[4200], out[4200], shard[4400], tshard[4400];
    snprintf(data, sizeof data, "%s/data", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    snprintf(shard, sizeof shard, "%s/train-00000.h5", data);
    snprintf(tshard, sizeof tshard, "%s/train-00000.h5", out);
    CHECK(mkdir(data, 0777) == 0);
    h5shard_meta sm = {.tokenizer_sha256 = "0", .sources = "", .packing = "concat", .split = "train", .seq_len = T};
    CHECK_OK(h5shard_write(shard, tok, mask, N, T, &sm));
    tfm_acts a = {0};
    CHECK_OK(tfm_acts_alloc(&a, &m.cfg, 1, T, 0));
    float *logits = malloc((size_t)(N * T * V) * sizeof *logits);
    for (int64_t r = 0; r < N; r++) {
        CHECK_OK(tfm_forward(&m, &a, tok + r * T, 1, T, NULL));
        memcpy(logits + r * T * V, a.logits, (size_t)(T * V) * sizeof *logits);
    }
    for (int mode = 0; mode < 3; mode++) {
        teacher_opts o = {.model = model, .data_dir = data, .out_dir = out, .mode = mode, .topk = 16, .samples = 32,
                          .temperature = mode == H5T_MODE_FULL ? 1.0 : 1.5, .seed = 1, .compress = 1};
        teacher_stats st;
        remove(tshard);
        CHECK_OK(teacher_run(&o, &st));
        CHECK(st.computed == 1 && st.rows == N);
        h5teacher_data d;
        h5teacher_meta hm;
        char sha[65];
        CHECK_OK(h5teacher_read(tshard, &d, &hm, sha));
        CHECK(d.N == N && d.T == T && d.V == V && hm.mode == mode);
        if (d.N == N && d.T == T && d.V == V) check_records(&d, mode, 16, 32, o.temperature, logits, tok, "stories260k file");
        h5teacher_free(&d);
        CHECK_OK(teacher_run(&o, &st)); /* complete: skipped */
        CHECK(st.skipped == 1 && st.computed == 0);
        o.verify = 1;
        CHECK_OK(teacher_run(&o, &st));
    }
    free(logits);
    free(tok);
    free(mask);
    tfm_acts_free(&a);
    tfm_model_free(&m);
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

int main(void)
{
    part_a();
    part_b();
    return tu_finish("test_teacher");
}
