/* treesum.h - gradient accumulation over micro-batches in a FIXED tree (prefix pipe_tree_):
 * the sum of n leaf buffers (one per micro-batch of a step) is the halving tree
 * sum(lo, hi) = sum(lo, mid) + sum(mid, hi), mid = lo + (hi - lo) / 2, in float, whoever
 * computes which part. A pipeline stage pushes its micro-batches' gradients as they come
 * (a stack of at most log2(n) + 1 partial sums); replicas that own contiguous blocks that
 * are nodes of the tree (R a power of two dividing n) combine their block sums on member 0
 * of their group in member order, continuing the same tree, so that R = 1, 2, 4 give the
 * same bits. Not MPI_Allreduce (its order is unspecified). */
#ifndef UPQ_TREESUM_H
#define UPQ_TREESUM_H

#include <stdint.h>

#include "group.h"

typedef struct pipe_tree pipe_tree;

/* A tree over n leaves of len floats each; buffers are allocated as the stack grows. */
int pipe_tree_create(int64_t n, int64_t len, pipe_tree **out);
void pipe_tree_destroy(pipe_tree *t); /* NULL is fine */
/* Empties the stack (the next step). */
void pipe_tree_reset(pipe_tree *t);
/* Floats per message of pipe_tree_reduce (default 1 << 20; tests use small ones). */
void pipe_tree_set_chunk(pipe_tree *t, int64_t floats);
/* 1 when [lo, hi) is a node of the halving tree over n leaves. */
int pipe_tree_is_node(int64_t n, int64_t lo, int64_t hi);
/* Pushes leaf i's buffer (copied), then merges the top two entries while they are the
 * two children of one node. */
int pipe_tree_push(pipe_tree *t, int64_t i, const float *buf);
/* The single entry when the stack holds exactly one (NULL otherwise), with its span. */
const float *pipe_tree_top(const pipe_tree *t, int64_t *lo, int64_t *hi);
/* Group-wide: every member holds one entry, the member order's spans adjacent; member 0
 * adds the members' entries as if it pushed each in member order (the same merges, so the
 * same bits), then every member gets the root's sum in out (len floats, not the top's
 * buffer). Pipelined by chunks: member 0 adds chunk k while chunk k+1 arrives and chunk
 * k-1 is broadcast (non-blocking receives two chunks ahead, MPI_Ibcast). UPQ_EIO on an MPI
 * error, UPQ_EUSAGE on every member when the spans do not form the whole tree. g NULL or
 * of one member: out = the top. */
int pipe_tree_reduce(grp *g, pipe_tree *t, float *out);

#endif
