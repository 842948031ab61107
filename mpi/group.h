/* group.h - block groups as MPI sub-communicators (prefix grp_): the ranks that share one
 * block range split it with MPI_Comm_split and reduce partial sums (X^T X, block errors,
 * TesseraQ gradients) in a FIXED order: every member's buffer goes to member 0, which adds
 * them in member order 0, 1, 2, ... and broadcasts the result, so every member holds the
 * same bits and a rerun gives the same bits (an MPI_Allreduce may pick its order by
 * message size or topology). Plain buffers in and out; not the partition (partition.h). */
#ifndef UPQ_GROUP_H
#define UPQ_GROUP_H

#include <stdint.h>

typedef struct grp grp;

/* Collective over the world: ranks passing the same color form one group, ordered by key.
 * *out is heap-owned (grp_destroy). */
int grp_create(int color, int key, grp **out);
void grp_destroy(grp *g); /* NULL is fine */

int grp_rank(const grp *g); /* 0 for NULL (a group of one) */
int grp_size(const grp *g); /* 1 for NULL */

/* In place, element-wise: buf = buf_0 + buf_1 + ... + buf_{R-1} added in member order on
 * member 0 (in chunks, so no member holds more than one extra chunk), then broadcast.
 * Identity on a group of one. UPQ_EIO on an MPI error. */
int grp_sum_f64(grp *g, double *buf, int64_t n);
int grp_sum_f32(grp *g, float *buf, int64_t n);
/* Bytes from member `root` to every member. */
int grp_bcast(grp *g, void *buf, int64_t bytes, int root);
/* The largest status of the members (a small allreduce: order does not matter for max). */
int grp_max_i32(grp *g, int status);

/* The communicator (an MPI_Comm *) for mpi/scalapack.c's grid over the group. */
void *grp_comm(grp *g);

#endif
