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

void Cblacs_pinfo(int *mypnum, int *nprocs);
void Cblacs_get(int icontxt, int what, int *val);
void Cblacs_gridinit(int *icontxt, const char *order, int nprow, int npcol);
void Cblacs_gridinfo(int icontxt, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int icontxt);
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

int sl_spd_inverse_scalapack(double *A, int64_t n, int nb)
{
    if (n > 46340) return UPQ_FAIL(UPQ_EUSAGE, "SPD inverse: dimension %lld too large for ScaLAPACK's int", (long long)n);
    if (nb <= 0) nb = SL_BLOCK;
    int me, P, pr, pc, ctx, ni = (int)n, info = 0;
    Cblacs_pinfo(&me, &P);
    grid_shape(P, &pr, &pc);
    Cblacs_get(-1, 0, &ctx);
    Cblacs_gridinit(&ctx, "Row", pr, pc);
    double *G = upq_calloc((size_t)(n * n), sizeof(double), "ScaLAPACK gathered inverse");
    int rc = G ? local_inverse(A, ni, nb, ctx, G, &info) : UPQ_EIO;
    Cblacs_gridexit(ctx);
    /* every rank reaches the agreement, also the one whose allocation failed */
    int bad = par_agree(rc ? rc : info ? UPQ_EINPUT : UPQ_OK);
    if (!rc && !bad) rc = par_sum_f64(G, n * n); /* one nonzero contribution per entry: exact */
    else if (!rc && info > 0)
        rc = UPQ_FAIL(UPQ_EINPUT, "ScaLAPACK pdpotrf: matrix (%d x %d) not positive definite at column %d", ni, ni, info);
    else if (!rc && info)
        rc = UPQ_FAIL(UPQ_EINPUT, "ScaLAPACK pdpotri: failed (info %d, n %d)", info < -1000000 ? -(info + 1000000) : info, ni);
    else if (!rc)
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
    if (o && n >= o->min_dim) return sl_spd_inverse_scalapack(A, n, o->nb);
    return sl_spd_inverse_lapack(A, n);
}

int sl_spd_inverse_hook(double *A, int64_t n, void *ctx) { return sl_spd_inverse(A, n, (const sl_opts *)ctx); }
