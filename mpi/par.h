/* par.h - the MPI world as the rest of upq sees it: start/stop, rank/size, and a
 * few collectives on plain buffers. The only place (with io/ for parallel HDF5)
 * that includes <mpi.h>; callers pass (rank, nranks) on to math code. */
#ifndef UPQ_PAR_H
#define UPQ_PAR_H

#include <stdint.h>

int par_init(int *argc, char ***argv); /* MPI_Init (singleton works without mpirun) */
void par_finalize(void);
int par_rank(void);
int par_size(void);
int par_active(void);                  /* MPI initialised and not finalised */

/* All ranks agree on a status: returns the largest code any rank passed (0 if all ok).
 * Call it before a collective that a failing rank would never reach. */
int par_agree(int status);
/* Like par_agree, but gives up after `seconds` (a rank that is stuck elsewhere, e.g.
 * in a collective the failing rank never reached): returns the agreed code, or -1 on
 * timeout, in which case the caller should par_abort. */
int par_agree_timeout(int status, double seconds);
/* Element-wise sums over all ranks, in place; fixed reduction order for a fixed size. */
int par_sum_f64(double *buf, int64_t n);
int par_sum_i64(int64_t *buf, int64_t n);
int par_bcast(void *buf, int64_t bytes, int root);
void par_barrier(void);
/* Ends every rank now with `code` (a rank's unrecoverable error). */
void par_abort(int code);
/* The commit of a file every rank helped to write (begin: each wrote its part under a
 * temp name and closed it, with `status` its own outcome). All ranks agree on the
 * statuses; when all succeeded rank 0 runs commit(ctx) (e.g. ss_commit: fsync, rename),
 * else rank 0 runs abort(ctx) (e.g. ss_abort: remove the temp file); then every rank
 * learns rank 0's outcome. Returns the same code on every rank: 0, the largest failing
 * code (this rank's message when it failed itself), or commit's code. Without MPI (or on
 * one rank) it is the serial begin/commit. */
typedef int (*par_commit_fn)(void *ctx);
typedef void (*par_abort_fn)(void *ctx);
int par_commit(int status, par_commit_fn commit, par_abort_fn abort, void *ctx);
/* Solo mode (rank-local, not collective): on = 1 makes this rank a world of its own
 * (MPI_COMM_SELF: par_size() 1, par_rank() 0, every collective and par_comm_world
 * local) until par_solo(0) restores the world. For a one-rank stage (qat) inside a
 * multi-rank job: rank 0 runs it solo while the other ranks wait in par_agree_timeout. */
int par_solo(int on);
/* Subset mode (collective over the current world): n > 0 makes ranks [0, n) a world of
 * their own (ranks keep their numbers; par_size() n) until each member calls
 * par_subset(0); the other ranks stay in the old world and must not use it for
 * collectives until the members are back (they wait in par_agree_timeout). For a stage
 * that runs on S x R ranks of a larger job (qat). */
int par_subset(int n);
/* The communicator as an opaque handle for io/'s parallel HDF5 (MPI_Comm inside). */
void *par_comm_world(void);

#endif
