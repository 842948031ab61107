/* scalapack.h - inverse of a symmetric positive definite matrix (GPTQ's damped X^T X) by
 * Cholesky (prefix sl_): ScaLAPACK pdpotrf/pdpotri on a BLACS grid over all ranks or over
 * one block group's communicator (group.h), or LAPACK dpotrf/dpotri on one; which one by the matrix size against --scalapack-min-dim.
 * The matrix is replicated on every rank before and after (the caller's data lives on
 * every rank of the group); only the factorisation is distributed. Not GPTQ itself. */
#ifndef UPQ_SCALAPACK_H
#define UPQ_SCALAPACK_H

#include <stdint.h>

/* Default --scalapack-min-dim: below it LAPACK on one rank is faster than the grid
 * (measured with `upq bench scalapack`, docs/ptq-mpi.md). */
enum { SL_MIN_DIM_DEFAULT = 4096, SL_BLOCK = 64 };

/* A (n, n) symmetric (row- or column-major: the same), both triangles set; on return
 * both triangles hold A^-1. LAPACK on this rank alone. UPQ_EINPUT naming the column when
 * A is not positive definite. */
int sl_spd_inverse_lapack(double *A, int64_t n);

/* The same through ScaLAPACK on a near-square grid of every MPI rank (collective: every
 * rank calls it with the same A); nb = block size (0: SL_BLOCK). The result is gathered
 * to every rank (each entry comes from one rank, so the gather is exact). */
int sl_spd_inverse_scalapack(double *A, int64_t n, int nb);
/* The same on the ranks of `comm` (an MPI_Comm *, e.g. grp_comm(); NULL: all ranks):
 * collective over comm only. */
int sl_spd_inverse_scalapack_comm(double *A, int64_t n, int nb, void *comm);

/* The dispatcher: ScaLAPACK when n >= min_dim (collective then), else LAPACK. */
typedef struct {
    int64_t min_dim; /* --scalapack-min-dim */
    int nb;          /* ScaLAPACK block size (0: SL_BLOCK) */
    void *comm;      /* the grid's ranks: an MPI_Comm * (grp_comm()), NULL = all ranks */
} sl_opts;
int sl_spd_inverse(double *A, int64_t n, const sl_opts *o);

/* The same shaped as gptq_opts' inverse hook (ctx = const sl_opts *). */
int sl_spd_inverse_hook(double *A, int64_t n, void *ctx);

#endif
