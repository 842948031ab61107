/* kq_gemm.c - GEMM on packed weights around BLIS's native sgemm micro-kernel: we pack X
 * into A micro-panels and dequantize W into B micro-panels ourselves; BLIS's micro-kernel
 * (queried from the context, not copied) does the FMAs; the panel dequantizer comes from
 * the table. Also the FP32 BLIS baselines the benchmark compares with. Not here: the
 * plain-C reference GEMM (ref/kq_gemm_ref.c). */
#include "kq_gemm.h"

#include <blis.h>
#include <omp.h>
#include <pthread.h>
#include <string.h>

#include "kq_err.h"

/* The BLIS 0.9 gemm micro-kernel signature (GEMM_UKR_PROT in blis.h). */
typedef void (*kq_sgemm_ukr)(dim_t m, dim_t n, dim_t k, float *restrict alpha,
                             float *restrict a, float *restrict b, float *restrict beta,
                             float *restrict c, inc_t rs_c, inc_t cs_c, auxinfo_t *restrict data,
                             cntx_t *restrict cntx);

enum { KQ_NB_PANELS = 4 }; /* B micro-panels dequantized per N tile (4 x 16 x 256 x 4 = 64 KiB) */

static kq_blis_info kq_info;
static cntx_t *kq_cntx;
static kq_sgemm_ukr kq_ukr;
static pthread_once_t kq_once = PTHREAD_ONCE_INIT;

static void kq_blis_init(void)
{
    kq_cntx = bli_gks_query_cntx();
    kq_info.MR = bli_cntx_get_blksz_def_dt(BLIS_FLOAT, BLIS_MR, kq_cntx);
    kq_info.NR = bli_cntx_get_blksz_def_dt(BLIS_FLOAT, BLIS_NR, kq_cntx);
    kq_info.MC = bli_cntx_get_blksz_def_dt(BLIS_FLOAT, BLIS_MC, kq_cntx);
    kq_info.NC = bli_cntx_get_blksz_def_dt(BLIS_FLOAT, BLIS_NC, kq_cntx);
    int64_t kc = bli_cntx_get_blksz_def_dt(BLIS_FLOAT, BLIS_KC, kq_cntx);
    kq_info.KC = kc >= 2 * KQ_CHANNEL_BLOCK ? kc / KQ_CHANNEL_BLOCK * KQ_CHANNEL_BLOCK : KQ_CHANNEL_BLOCK;
    kq_info.row_pref = bli_cntx_get_l3_nat_ukr_prefs_dt(BLIS_FLOAT, BLIS_GEMM_UKR, kq_cntx);
    kq_info.arch = bli_arch_string(bli_arch_query_id());
    kq_ukr = (kq_sgemm_ukr)bli_cntx_get_l3_nat_ukr_dt(BLIS_FLOAT, BLIS_GEMM_UKR, kq_cntx);
    KQ_ASSERT(kq_ukr && kq_info.MR > 0 && kq_info.NR > 0 && kq_info.MC >= kq_info.MR);
}

const kq_blis_info *kq_blis_query(void)
{
    pthread_once(&kq_once, kq_blis_init);
    return &kq_info;
}

static size_t kq_align64(size_t b) { return (b + 63) & ~(size_t)63; }

/* A block: all of M packed for one KC block, zero-padded to MR rows. */
static size_t kq_apack_ws(const kq_blis_info *bi, int64_t M)
{
    int64_t mp = (M + bi->MR - 1) / bi->MR;
    return kq_align64(sizeof(float) * (size_t)(mp * bi->MR * bi->KC));
}

/* Per thread: its own A block, KQ_NB_PANELS B panels and the dequantization scratch. */
static size_t kq_thread_ws(const kq_blis_info *bi, int64_t M)
{
    return kq_apack_ws(bi, M) + kq_align64(sizeof(float) * (size_t)(KQ_NB_PANELS * bi->NR * bi->KC)) +
           kq_align64(sizeof(float) * (size_t)(bi->NR * bi->KC));
}

size_t kq_gemm_ws_bytes(int64_t M, const kq_qmat *W, int nthreads)
{
    (void)W;
    const kq_blis_info *bi = kq_blis_query();
    return 64 + (size_t)(nthreads > 0 ? nthreads : 1) * kq_thread_ws(bi, M);
}

/* A micro-panel p (rows p*MR..): a[k*MR + i] = X[p*MR + i, k0 + k], zero past M. */
static void kq_pack_a(const kq_blis_info *bi, int64_t M, const float *X, int64_t ldx, int64_t k0,
                      int64_t kc, int64_t p, float *restrict a)
{
    const int64_t MR = bi->MR, i0 = p * MR;
    for (int64_t i = 0; i < MR; i++) {
        if (i0 + i < M) {
            const float *x = X + (i0 + i) * ldx + k0;
            for (int64_t k = 0; k < kc; k++) a[k * MR + i] = x[k];
        } else {
            for (int64_t k = 0; k < kc; k++) a[k * MR + i] = 0.0f;
        }
    }
}

/* One N tile (up to KQ_NB_PANELS panels from n0) times all of A for this KC block. */
static void kq_tile(const kq_blis_info *bi, int64_t M, const kq_qmat *W, const kq_kernels *t,
                    int64_t n0, int64_t kc, int64_t k0, const float *apack, float *bpack,
                    float *scratch, float *Y, int64_t ldy, float beta)
{
    const int64_t MR = bi->MR, NR = bi->NR, psa = MR * bi->KC, psb = NR * bi->KC;
    int64_t np = 0;
    for (; np < KQ_NB_PANELS && n0 + np * NR < W->N; np++) {
        int64_t nr = W->N - (n0 + np * NR) < NR ? W->N - (n0 + np * NR) : NR;
        t->dequant_panel(W, n0 + np * NR, (int)nr, (int)NR, k0, kc, bpack + np * psb, scratch);
    }
    float one = 1.0f;
    auxinfo_t aux;
    memset(&aux, 0, sizeof aux);
    bli_auxinfo_set_schema_a(BLIS_PACKED_ROW_PANELS, &aux);
    bli_auxinfo_set_schema_b(BLIS_PACKED_COL_PANELS, &aux);
    bli_auxinfo_set_is_a(1, &aux);
    bli_auxinfo_set_is_b(1, &aux);
    for (int64_t ic = 0; ic < M; ic += bi->MC)
        for (int64_t jp = 0; jp < np; jp++) {
            int64_t n = n0 + jp * NR, nr = W->N - n < NR ? W->N - n : NR;
            float *b = bpack + jp * psb;
            int64_t iend = ic + bi->MC < M ? ic + bi->MC : M;
            for (int64_t i = ic; i < iend; i += MR) {
                int64_t mr = M - i < MR ? M - i : MR;
                float *a = (float *)apack + (i / MR) * psa;
                bli_auxinfo_set_next_a(i + MR < iend ? a + psa : (float *)apack + (ic / MR) * psa, &aux);
                bli_auxinfo_set_next_b(i + MR < iend ? b : b + psb, &aux);
                kq_ukr(mr, nr, kc, &one, a, b, &beta, Y + i * ldy + n, ldy, 1, &aux, kq_cntx);
            }
        }
}

static void kq_scale_y(int64_t M, int64_t N, float *Y, int64_t ldy, float beta)
{
    for (int64_t i = 0; i < M; i++)
        for (int64_t n = 0; n < N; n++) Y[i * ldy + n] = beta == 0.0f ? 0.0f : beta * Y[i * ldy + n];
}

/* Each thread owns a contiguous range of N tiles and packs its own copy of A per KC block
 * (M x KC floats, cheap beside the M x KC x N/threads FMAs), so threads never wait on one
 * another inside the call: on a shared machine a barrier per KC block costs more than
 * the duplicated packing. */
void kq_gemm(int64_t M, const float *X, int64_t ldx, const kq_qmat *W, float *Y, int64_t ldy,
             float beta, int nthreads, const kq_kernels *t, void *ws, size_t ws_bytes)
{
    const kq_blis_info *bi = kq_blis_query();
    if (!t) t = kq_kernels_active();
    if (nthreads < 1) nthreads = 1;
    KQ_ASSERT(ws_bytes >= kq_gemm_ws_bytes(M, W, nthreads));
    if (M == 0 || W->N == 0) return;
    if (W->K == 0) {
        kq_scale_y(M, W->N, Y, ldy, beta);
        return;
    }
    uint8_t *base = (uint8_t *)(((uintptr_t)ws + 63) & ~(uintptr_t)63);
    const int64_t MR = bi->MR, mp = (M + MR - 1) / MR, tile = KQ_NB_PANELS * bi->NR;
    const int64_t ntiles = (W->N + tile - 1) / tile;
    if (nthreads > ntiles) nthreads = (int)ntiles;
#pragma omp parallel num_threads(nthreads)
    {
        const int me = omp_get_thread_num(), nt = omp_get_num_threads();
        uint8_t *mine = base + (size_t)me * kq_thread_ws(bi, M);
        float *apack = (float *)mine;
        float *bpack = (float *)(mine + kq_apack_ws(bi, M));
        float *scratch = bpack + KQ_NB_PANELS * bi->NR * bi->KC;
        const int64_t j0 = ntiles * me / nt, j1 = ntiles * (me + 1) / nt;
        for (int64_t k0 = 0; k0 < W->K && j0 < j1; k0 += bi->KC) {
            int64_t kc = W->K - k0 < bi->KC ? W->K - k0 : bi->KC;
            for (int64_t p = 0; p < mp; p++) kq_pack_a(bi, M, X, ldx, k0, kc, p, apack + p * MR * bi->KC);
            float b = k0 == 0 ? beta : 1.0f;
            for (int64_t j = j0; j < j1; j++)
                kq_tile(bi, M, W, t, j * tile, kc, k0, apack, bpack, scratch, Y, ldy, b);
        }
    }
}

void kq_blis_sgemm_nt(int64_t M, int64_t N, int64_t K, const float *X, const float *W, float *Y,
                      int nthreads, int allow_sup)
{
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(nthreads, &rntm);
    if (!allow_sup) bli_rntm_disable_l3_sup(&rntm);
    float one = 1.0f, zero = 0.0f;
    bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_TRANSPOSE, M, N, K, &one, (float *)X, K, 1, (float *)W, K,
                 1, &zero, Y, N, 1, NULL, &rntm);
}

void kq_blis_sgemv(int64_t N, int64_t K, const float *W, const float *x, float *y, int nthreads)
{
    rntm_t rntm = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(nthreads, &rntm);
    float one = 1.0f, zero = 0.0f;
    bli_sgemv_ex(BLIS_NO_TRANSPOSE, BLIS_NO_CONJUGATE, N, K, &one, (float *)W, K, 1, (float *)x, 1,
                 &zero, y, 1, NULL, &rntm);
}
