/* qlayer.c - the quantized linear layer (a kq_qmat) as owned data: allocation and
 * dequantization (qlayer.h). Not the quantizers (quant.c, gptq.c, tesseraq.c), not the
 * packing (kernels/kq_format.c). */
#include "qlayer.h"

#include <stdlib.h>
#include <string.h>

#include "upq_err.h"

int quant_format_valid(int bits, int group)
{
    return kq_qmat_valid(bits, group);
}

int quant_qmat_init(kq_qmat *q, int bits, int group, int64_t N, int64_t K)
{
    memset(q, 0, sizeof *q);
    if (!quant_format_valid(bits, group) || N < 1 || K < 1)
        return UPQ_FAIL(UPQ_EINPUT, "unsupported quantization: bits %d group %d (bits 2/3/4/8, group 0/32/64/128)",
                        bits, group);
    void *data = upq_calloc(kq_qmat_bytes(bits, group, N, K), 1, "quantized layer");
    if (!data) return UPQ_EIO;
    kq_qmat_init(q, bits, group, N, K, data);
    return UPQ_OK;
}

void quant_qmat_free(kq_qmat *q)
{
    free(q->data);
    memset(q, 0, sizeof *q);
}

size_t quant_qmat_bytes(const kq_qmat *q)
{
    return kq_qmat_bytes(q->bits, q->group, q->N, q->K);
}

void quant_dequant(const kq_qmat *q, float *W, int64_t ldw)
{
#pragma omp parallel for schedule(static) if (q->N * q->K >= (1 << 18))
    for (int64_t n = 0; n < q->N; n++) kq_dequant_row_ref(q, n, 0, q->K, W + n * ldw);
}
