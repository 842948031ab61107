/* fuzz_safetensors.c - libFuzzer harness for the safetensors header parser
 * (st_parse_mem over arbitrary bytes). When a buffer parses, every invariant the
 * loaders rely on is checked: ranges inside the buffer, contiguous and ending at its end, byte counts
 * matching shapes, lookup by name finding each tensor, conversion staying in
 * bounds. Not a unit test: tests/unit/test_safetensors_seeds.c replays the corpus. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "safetensors.h"
#include "upq_err.h"

static void check_file(const st_file *f, const uint8_t *data, size_t size)
{
    static float out[1 << 16];
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | data[i];
    size_t prev_end = 8 + (size_t)hlen; /* HF's rule: the ranges tile the data area exactly */
    for (int i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_get(f, i);
        UPQ_ASSERT(t->offset + t->nbytes <= size);
        UPQ_ASSERT((const uint8_t *)t->data == data + t->offset);
        UPQ_ASSERT((uint64_t)st_numel(t) * st_dtype_size(t->dtype) == t->nbytes);
        UPQ_ASSERT(t->offset == prev_end);
        prev_end = t->offset + t->nbytes;
        UPQ_ASSERT(st_find(f, t->name) == t);
        int64_t n = st_numel(t);
        if (n <= (int64_t)(sizeof out / sizeof out[0])) UPQ_ASSERT(st_tensor_to_f32(t, out, n) == UPQ_OK);
    }
    UPQ_ASSERT(prev_end == size);
    for (int i = 0; i < st_meta_count(f); i++) {
        const char *k, *v;
        st_meta_get(f, i, &k, &v);
        UPQ_ASSERT(st_meta_find(f, k) != NULL && v != NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    st_file *f = NULL;
    int rc = st_parse_mem(data, size, "fuzz.safetensors", &f);
    if (rc == UPQ_OK) {
        check_file(f, data, size);
        st_close(f);
    } else {
        /* Environment errors must be reported as bad input, with a message. */
        UPQ_ASSERT(rc == UPQ_EINPUT || rc == UPQ_EIO);
        UPQ_ASSERT(upq_errmsg()[0] != 0);
    }
    return 0;
}
