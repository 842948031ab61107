/* scalapack.c - SPD inverse through LAPACK or ScaLAPACK (scalapack.h). ScaLAPACK and
 * BLACS have no C header: the prototypes below are the Fortran symbols (pointer args) and
 * the BLACS C interface, as in ../shared/HPC-NOTES.md section 4. The grid is built and
 * freed per call: GPTQ calls it 4 times per block, far cheaper than the factorisation. */
#include "scalapack.h"

#include <math.h>
#include <mpi.h>
#include <string.h>

#include "par.h"
#include "upq_err.h"

void Cblacs_gridinit(int *icontxt, const char *order, int nprow, int npcol);
void Cblacs_gridinfo(int icontxt, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int icontxt);
int Csys2blacs_handle(MPI_Comm comm);
void Cfree_blacs_system_handle(int handle);
int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc, const int *nprocs);
void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb, const int *irsrc,
               const int *icsrc, const int *ictxt, const int *lld, int *info);
void pdpotrf_(const char *uplo, const int *n, double *a, const int *ia, const int *ja, const int *desca, int *info);
void pdpotri_(const char *uplo, const int *n, double *a, const int *ia, const int *ja, const int *desca, int *info);
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
extern void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info);

/* Column-major lower triangle -> both triangles (A[j*n+i], i >= j, copied to A[i*n+j]). */
static void mirror_lower(double *A, int64_t n)
{
    for (int64_t j = 0; j < n; j++)
        for (int64_t i = j + 1; i < n; i++) A[i * n + j] = A[j * n + i];
}

int sl_spd_inverse_lapack(double *A, int64_t n)
{
    if (n > 46340) return UPQ_FAIL(UPQ_EUSAGE, "SPD inverse: dimension %lld too large for LAPACK's int", (long long)n);
    int ni = (int)n, info = 0;
    dpotrf_("L", &ni, A, &ni, &info);
    if (info) return UPQ_FAIL(UPQ_EINPUT, "LAPACK dpotrf: matrix (%d x %d) not positive definite at column %d", ni, ni, info);
    dpotri_("L", &ni, A, &ni, &info);
    if (info) return UPQ_FAIL(UPQ_EINPUT, "LAPACK dpotri: singular Cholesky factor at column %d (n %d)", info, ni);
    mirror_lower(A, n);
    return UPQ_OK;
}

/* pr x pc = P with pr the largest divisor <= sqrt(P). */
static void grid_shape(int P, int *pr, int *pc)
{
    int r = (int)sqrt((double)P);
    while (r > 1 && P % r) r--;
    *pr = r < 1 ? 1 : r, *pc = P / *pr;
}

/* Factorises this rank's block-cyclic part; writes its lower-triangle entries of A^-1
 * into G (zero elsewhere). Returns the LAPACK-style info (0 ok). */
static int local_inverse(double *A, int n, int nb, int ctx, double *G, int *info)
{
    int nprow, npcol, myr, myc, zero = 0, one = 1, desc[9];
    Cblacs_gridinfo(ctx, &nprow, &npcol, &myr, &myc);
    int mloc = numroc_(&n, &nb, &myr, &zero, &nprow), nloc = numroc_(&n, &nb, &myc, &zero, &npcol);
    int lld = mloc > 1 ? mloc : 1;
    descinit_(desc, &n, &n, &nb, &nb, &zero, &zero, &ctx, &lld, info);
    if (*info) return UPQ_FAIL(UPQ_EUSAGE, "ScaLAPACK descinit: info %d (n %d, nb %d)", *info, n, nb);
    double *a = upq_malloc((size_t)lld * (size_t)(nloc > 0 ? nloc : 1) * sizeof(double), "ScaLAPACK local matrix");
    if (!a) return UPQ_EIO;
    for (int lj = 0; lj < nloc; lj++) /* local (li, lj) <-> global (gi, gj), column-major */
        for (int li = 0; li < mloc; li++) {
            int64_t gi = (int64_t)(li / nb * nprow + myr) * nb + li % nb, gj = (int64_t)(lj / nb * npcol + myc) * nb + lj % nb;
            a[(size_t)lj * lld + li] = A[gj * n + gi];
        }
    pdpotrf_("L", &n, a, &one, &one, desc, info);
    if (!*info) {
        pdpotri_("L", &n, a, &one, &one, desc, info);
        if (*info) *info = -*info - 1000000; /* tell pdpotri's failure apart */
    }
    for (int lj = 0; lj < nloc && !*info; lj++)
        for (int li = 0; li < mloc; li++) {
            int64_t gi = (int64_t)(li / nb * nprow + myr) * nb + li % nb, gj = (int64_t)(lj / nb * npcol + myc) * nb + lj % nb;
            if (gi >= gj) G[gj * n + gi] = a[(size_t)lj * lld + li];
        }
    free(a);
    return UPQ_OK;
}

int sl_spd_inverse_scalapack(double *A, int64_t n, int nb) { return sl_spd_inverse_scalapack_comm(A, n, nb, NULL); }

int sl_spd_inverse_scalapack_comm(double *A, int64_t n, int nb, void *comm)
{
    if (n > 46340) return UPQ_FAIL(UPQ_EUSAGE, "SPD inverse: dimension %lld too large for ScaLAPACK's int", (long long)n);
    if (nb <= 0) nb = SL_BLOCK;
    MPI_Comm c = *(MPI_Comm *)(comm ? comm : par_comm_world());
    int P, pr, pc, ni = (int)n, info = 0;
    MPI_Comm_size(c, &P);
    grid_shape(P, &pr, &pc);
    int sys = Csys2blacs_handle(c), ctx = sys;
    Cblacs_gridinit(&ctx, "Row", pr, pc);
    double *G = upq_calloc((size_t)(n * n), sizeof(double), "ScaLAPACK gathered inverse");
    int rc = G ? local_inverse(A, ni, nb, ctx, G, &info) : UPQ_EIO;
    Cblacs_gridexit(ctx);
    Cfree_blacs_system_handle(sys);
    /* every rank reaches the agreement, also the one whose allocation failed */
    int st = rc ? rc : info ? UPQ_EINPUT : UPQ_OK, bad = st;
    if (MPI_Allreduce(&st, &bad, 1, MPI_INT, MPI_MAX, c) != MPI_SUCCESS) bad = UPQ_EIO;
    if (!rc && !bad && /* one nonzero contribution per entry: the sum is exact in any order */
        MPI_Allreduce(MPI_IN_PLACE, G, (int)(n * n), MPI_DOUBLE, MPI_SUM, c) != MPI_SUCCESS)
        rc = UPQ_FAIL(UPQ_EIO, "ScaLAPACK SPD inverse (n %d): MPI error gathering the result", ni);
    else if (!rc && info > 0)
        rc = UPQ_FAIL(UPQ_EINPUT, "ScaLAPACK pdpotrf: matrix (%d x %d) not positive definite at column %d", ni, ni, info);
    else if (!rc && info)
        rc = UPQ_FAIL(UPQ_EINPUT, "ScaLAPACK pdpotri: failed (info %d, n %d)", info < -1000000 ? -(info + 1000000) : info, ni);
    else if (!rc && bad)
        rc = UPQ_FAIL(bad, "ScaLAPACK SPD inverse (n %d): another rank failed", ni);
    if (!rc) {
        memcpy(A, G, (size_t)(n * n) * sizeof(double));
        mirror_lower(A, n);
    }
    free(G);
    return rc;
}

int sl_spd_inverse(double *A, int64_t n, const sl_opts *o)
{
    if (o && n >= o->min_dim) return sl_spd_inverse_scalapack_comm(A, n, o->nb, o->comm);
    return sl_spd_inverse_lapack(A, n);
}

int sl_spd_inverse_hook(double *A, int64_t n, void *ctx) { return sl_spd_inverse(A, n, (const sl_opts *)ctx); }
