/* prepare_pack.c - rows of seq_len tokens for upq prepare: tokens stream into the
 * current row of their split; complete rows fill a shard buffer that is written
 * (io/h5shard.h, atomically) as soon as it holds shard_rows rows. Not the input side. */
#include "prepare_pack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "upq_err.h"

static const char *split_name[PREP_NSPLIT] = {"train", "validation", "test"};

int prep_pack_init(prep_packer *p, const prep_opts *o, prep_stats *st, int32_t pad)
{
    memset(p->sp, 0, sizeof p->sp);
    p->o = o;
    p->st = st;
    p->pad = pad;
    int64_t n = o->shard_rows * o->seq_len;
    for (int s = 0; s < PREP_NSPLIT; s++) {
        p->sp[s].tok = upq_malloc((size_t)n * sizeof(int32_t), "shard buffer");
        p->sp[s].mask = upq_malloc((size_t)n, "shard mask buffer");
        if (!p->sp[s].tok || !p->sp[s].mask) return UPQ_EIO;
    }
    return UPQ_OK;
}

void prep_pack_free(prep_packer *p)
{
    for (int s = 0; s < PREP_NSPLIT; s++) {
        free(p->sp[s].tok);
        free(p->sp[s].mask);
    }
    memset(p->sp, 0, sizeof p->sp);
}

static int flush(prep_packer *p, int s)
{
    prep_split *sp = &p->sp[s];
    if (sp->rows == 0) return UPQ_OK;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s-%05lld.h5", p->o->out_dir, split_name[s],
             (long long)p->st->shards[s]);
    h5shard_meta m = p->meta;
    m.split = split_name[s];
    m.shard_index = p->st->shards[s];
    TRY(h5shard_write(path, sp->tok, sp->mask, sp->rows, p->o->seq_len, &m));
    p->st->shards[s]++;
    p->st->rows[s] += sp->rows;
    sp->rows = 0;
    return UPQ_OK;
}

/* The current row is complete: count it, flush a full shard. */
static int row_done(prep_packer *p, int s)
{
    prep_split *sp = &p->sp[s];
    sp->fill = 0;
    sp->rows++;
    p->st->tokens += p->o->seq_len;
    return sp->rows == p->o->shard_rows ? flush(p, s) : UPQ_OK;
}

int prep_pack_push(prep_packer *p, int s, const int32_t *ids, const uint8_t *m, int64_t n)
{
    prep_split *sp = &p->sp[s];
    int64_t T = p->o->seq_len;
    for (int64_t i = 0; i < n;) {
        int64_t take = T - sp->fill < n - i ? T - sp->fill : n - i;
        int64_t at = sp->rows * T + sp->fill;
        memcpy(sp->tok + at, ids + i, (size_t)take * sizeof(int32_t));
        if (m) memcpy(sp->mask + at, m + i, (size_t)take);
        else memset(sp->mask + at, 1, (size_t)take);
        for (int64_t j = 0; j < take; j++) p->st->masked += sp->mask[at + j];
        sp->fill += take;
        i += take;
        if (sp->fill == T) TRY(row_done(p, s));
    }
    return UPQ_OK;
}

int prep_pack_break(prep_packer *p, int s)
{
    prep_split *sp = &p->sp[s];
    if (sp->fill == 0) return UPQ_OK;
    int64_t T = p->o->seq_len, at = sp->rows * T + sp->fill;
    for (int64_t j = 0; j < T - sp->fill; j++) sp->tok[at + j] = p->pad;
    memset(sp->mask + at, 0, (size_t)(T - sp->fill));
    return row_done(p, s);
}

int prep_pack_finish(prep_packer *p, int drop_tail)
{
    for (int s = 0; s < PREP_NSPLIT; s++) {
        if (drop_tail) {
            int64_t at = p->sp[s].rows * p->o->seq_len;
            for (int64_t j = 0; j < p->sp[s].fill; j++) p->st->masked -= p->sp[s].mask[at + j];
            p->sp[s].fill = 0;
        }
        TRY(prep_pack_break(p, s));
        TRY(flush(p, s));
    }
    return UPQ_OK;
}
