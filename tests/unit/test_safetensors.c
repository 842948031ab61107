/* test_safetensors.c - st_write -> st_open round trips in F32/F16/BF16 (values
 * checked against exact representable inputs and half-ulp bounds, not against the
 * converter itself), the on-disk layout (8-byte aligned space-padded header,
 * contiguous data), and the parser's rejection of malformed headers with messages
 * that name the tensor and the reason. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "safetensors.h"
#include "test_util.h"
#include "upq_err.h"

static char tmpdir[] = "/tmp/upq_test_st_XXXXXX";

static float frand(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((double)(*s >> 11) / 9007199254740992.0 * 8.0 - 4.0);
}

/* Values exact in F16 and BF16 come back bit for bit; others within half an ulp. */
static void roundtrip(int dtype)
{
    enum { R = 5, K = 7 };
    float w[R * K], b[R] = {1.0f, -2.0f, 0.5f, 0.15625f, -384.0f};
    uint64_t seed = 42 + (uint64_t)dtype;
    for (int i = 0; i < R * K; i++) w[i] = frand(&seed);
    st_wtensor ts[2] = {{.name = "layer.weight", .dtype = dtype, .ndim = 2, .shape = {R, K}, .data = w},
                        {.name = "layer.bias", .dtype = dtype, .ndim = 1, .shape = {R}, .data = b}};
    char path[256];
    snprintf(path, sizeof path, "%s/rt_%d.safetensors", tmpdir, dtype);
    CHECK_OK(st_write(path, ts, 2, "{\"format\": \"pt\", \"who\": \"upq\"}"));
    st_file *f = NULL;
    CHECK_OK(st_open(path, &f));
    if (!f) return;
    CHECK(st_count(f) == 2);
    CHECK(!strcmp(st_meta_find(f, "format"), "pt") && !strcmp(st_meta_find(f, "who"), "upq"));
    const st_tensor *tw = st_find(f, "layer.weight"), *tb = st_find(f, "layer.bias");
    CHECK(tw && tb && st_find(f, "nope") == NULL);
    if (!tw || !tb) return;
    CHECK(tw->dtype == dtype && tw->ndim == 2 && tw->shape[0] == R && tw->shape[1] == K);
    /* contiguous, in the given order, data area right after the header */
    CHECK(st_get(f, 0) == tw && tw->offset % 8 == 0 && tb->offset == tw->offset + tw->nbytes);
    CHECK(tb->offset + tb->nbytes == st_file_bytes(f));
    float out[R * K];
    CHECK_OK(st_tensor_to_f32(tb, out, R));
    for (int i = 0; i < R; i++) CHECK_MSG(out[i] == b[i], "dtype %d b[%d] %g != %g", dtype, i, out[i], b[i]);
    CHECK_OK(st_tensor_to_f32(tw, out, R * K));
    double tol = dtype == ST_F32 ? 0 : dtype == ST_F16 ? 1.0 / 2048 : 1.0 / 256;
    for (int i = 0; i < R * K; i++)
        CHECK_MSG(fabsf(out[i] - w[i]) <= tol * fabsf(w[i]) + 1e-7, "dtype %d w[%d] %g vs %g", dtype, i, out[i],
                  w[i]);
    CHECK(st_tensor_to_f32(tw, out, 3) == UPQ_EINPUT);
    size_t boff = tb->offset;
    st_close(f);
    /* header: 8-byte aligned, padded with spaces */
    FILE *fp = fopen(path, "rb");
    uint8_t raw[512];
    size_t n = fread(raw, 1, sizeof raw, fp);
    fclose(fp);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | raw[i];
    CHECK(n > 8 && (8 + hlen) % 8 == 0 && hlen < n - 8);
    CHECK(raw[8] == '{');
    /* F16 bits of 1.0 (0x3c00) and -2.0 (0xc000): the first two bias values */
    if (dtype == ST_F16) CHECK(raw[boff + 1] == 0x3c && raw[boff + 3] == 0xc0);
    if (dtype == ST_BF16) CHECK(raw[boff] == 0x80 && raw[boff + 1] == 0x3f);
}

/* A safetensors buffer: u64 length + header + `data` zero bytes. */
static uint8_t *mk(const char *hdr, size_t data, size_t *n)
{
    size_t h = strlen(hdr);
    *n = 8 + h + data;
    uint8_t *b = calloc(1, *n);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(b + 8, hdr, h);
    return b;
}

static void expect_bad(const char *hdr, size_t data, const char *k1, const char *k2)
{
    size_t n;
    uint8_t *b = mk(hdr, data, &n);
    st_file *f = NULL;
    int rc = st_parse_mem(b, n, "x.safetensors", &f);
    CHECK_MSG(rc == UPQ_EINPUT, "header %s: rc %d", hdr, rc);
    const char *m = upq_errmsg();
    CHECK_MSG(strstr(m, "x.safetensors") && strstr(m, k1) && (!k2 || strstr(m, k2)),
              "header %s: message '%s' lacks '%s'/'%s'", hdr, m, k1, k2 ? k2 : "");
    if (rc == UPQ_OK) st_close(f);
    free(b);
}

static void expect_good(const char *hdr, size_t data, int count)
{
    size_t n;
    uint8_t *b = mk(hdr, data, &n);
    st_file *f = NULL;
    CHECK_MSG(st_parse_mem(b, n, "x.safetensors", &f) == UPQ_OK, "header %s: %s", hdr, upq_errmsg());
    if (f) CHECK(st_count(f) == count);
    if (f) st_close(f);
    free(b);
}

static void malformed(void)
{
    const char *F = "\"F32\"";
    char h[512];
    expect_bad("not json", 0, "not valid JSON", NULL);
    expect_bad("[1,2]", 0, "not a JSON object", NULL);
    snprintf(h, sizeof h, "{\"a\":{\"dtype\":\"Q8\",\"shape\":[1],\"data_offsets\":[0,4]}}");
    expect_bad(h, 4, "'a'", "unknown dtype 'Q8'");
    snprintf(h, sizeof h, "{\"a\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}");
    expect_bad(h, 8, "'a'", "unsupported dtype 'I64'");
    snprintf(h, sizeof h, "{\"a\":{\"dtype\":%s,\"shape\":[2],\"data_offsets\":[0,4]}}", F);
    expect_bad(h, 4, "'a'", "8 bytes");
    snprintf(h, sizeof h, "{\"a\":{\"dtype\":%s,\"shape\":[-1],\"data_offsets\":[0,4]}}", F);
    expect_bad(h, 4, "'a'", "negative");
    snprintf(h, sizeof h, "{\"a\":{\"dtype\":%s,\"shape\":[1.5],\"data_offsets\":[0,4]}}", F);
    expect_bad(h, 4, "'a'", "not an integer");
    snprintf(h, sizeof h, "{\"a\":{\"dtype\":%s,\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}", F);
    expect_bad(h, 4, "'a'", "overflow");
    snprintf(h, sizeof h, "{\"a\":{\"dtype\":%s,\"shape\":[1]}}", F);
    expect_bad(h, 4, "'a'", "data_offsets");
    snprintf(h, sizeof h, "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}");
    expect_bad(h, 4, "'a'", "dtype");
    snprintf(h, sizeof h, "{\"a\":{\"dtype\":%s,\"data_offsets\":[0,4]}}", F);
    expect_bad(h, 4, "'a'", "shape");
    snprintf(h, sizeof h, "{\"a\":{\"dtype\":%s,\"shape\":[2],\"data_offsets\":[0,8]}}", F);
    expect_bad(h, 4, "'a'", "past the end");
    snprintf(h, sizeof h,
             "{\"a\":{\"dtype\":%s,\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"b\":{\"dtype\":%s,\"shape\":[2],\"data_offsets\":[4,12]}}", F, F);
    expect_bad(h, 12, "'b'", "overlaps tensor 'a'");
    /* HF's layout rule: the ranges tile the data area, no gap, nothing after the end */
    snprintf(h, sizeof h,
             "{\"a\":{\"dtype\":%s,\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"b\":{\"dtype\":%s,\"shape\":[1],\"data_offsets\":[8,12]}}", F, F);
    expect_bad(h, 12, "'b'", "4 unused bytes between the end of tensor 'a'");
    snprintf(h, sizeof h, "{\"a\":{\"dtype\":%s,\"shape\":[1],\"data_offsets\":[2,6]}}", F);
    expect_bad(h, 6, "'a'", "2 unused bytes at the start of the data area");
    snprintf(h, sizeof h,
             "{\"b\":{\"dtype\":%s,\"shape\":[1],\"data_offsets\":[4,8]},"
             "\"a\":{\"dtype\":%s,\"shape\":[1],\"data_offsets\":[0,4]}}", F, F);
    expect_bad(h, 9, "'b'", "1 trailing bytes after its data");
    expect_bad("{}", 3, "no tensors", "3 bytes follow the header");
    snprintf(h, sizeof h,
             "{\"a\":{\"dtype\":%s,\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"z\":{\"dtype\":%s,\"shape\":[0],\"data_offsets\":[4,4]}}", F, F);
    expect_bad(h, 8, "'z'", "overlaps tensor 'a'");
    snprintf(h, sizeof h,
             "{\"a\":{\"dtype\":%s,\"shape\":[0],\"data_offsets\":[0,0]},"
             "\"b\":{\"dtype\":%s,\"shape\":[2],\"data_offsets\":[0,8]},"
             "\"c\":{\"dtype\":%s,\"shape\":[1,0],\"data_offsets\":[8,8]}}", F, F, F);
    expect_good(h, 8, 3); /* zero-size tensors at the running end, in any JSON order */
    snprintf(h, sizeof h,
             "{\"a\":{\"dtype\":%s,\"shape\":[1],\"data_offsets\":[0,4]},"
             "\"a\":{\"dtype\":%s,\"shape\":[1],\"data_offsets\":[4,8]}}", F, F);
    expect_bad(h, 8, "duplicate", "a");
    expect_bad("{\"__metadata__\":{\"format\":1}}", 0, "__metadata__", "not a string");
    expect_bad("{\"__metadata__\":[]}", 0, "__metadata__", "not a JSON object");
    snprintf(h, sizeof h, "{\"a\":{\"dtype\":%s,\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", F);
    expect_bad(h, 4, "'a'", "dims");
    /* length field itself */
    uint8_t small[5] = {0};
    st_file *f = NULL;
    CHECK(st_parse_mem(small, sizeof small, "x.safetensors", &f) == UPQ_EINPUT);
    CHECK(strstr(upq_errmsg(), "shorter than the 8-byte"));
    uint8_t big[16] = {0, 0, 0, 0, 0, 0, 0, 0x80, '{', '}'};
    CHECK(st_parse_mem(big, sizeof big, "x.safetensors", &f) == UPQ_EINPUT);
    CHECK(strstr(upq_errmsg(), "absurd"));
    uint8_t past[16] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    CHECK(st_parse_mem(past, sizeof past, "x.safetensors", &f) == UPQ_EINPUT);
    CHECK(strstr(upq_errmsg(), "past the end of the file"));
}

/* Unaligned F16 data (odd header length, as other writers may produce). */
static void unaligned(void)
{
    const char *hdr = "{\"h\":{\"dtype\":\"F16\",\"shape\":[3],\"data_offsets\":[0,6]}} ";
    size_t n;
    uint8_t *b = mk(hdr, 6, &n);
    size_t d = 8 + strlen(hdr);
    CHECK(d % 2 == 1);
    const uint8_t v[6] = {0x00, 0x3c, 0x00, 0xc0, 0x00, 0x7c}; /* 1, -2, +inf */
    memcpy(b + d, v, 6);
    st_file *f = NULL;
    CHECK_OK(st_parse_mem(b, n, "u.safetensors", &f));
    float out[3];
    if (f) {
        CHECK_OK(st_tensor_to_f32(st_get(f, 0), out, 3));
        CHECK(out[0] == 1.0f && out[1] == -2.0f && isinf(out[2]) && out[2] > 0);
        st_close(f);
    }
    free(b);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) return 1;
    roundtrip(ST_F32);
    roundtrip(ST_F16);
    roundtrip(ST_BF16);
    malformed();
    unaligned();
    st_file *f = NULL;
    CHECK(st_open("/nonexistent/x.safetensors", &f) == UPQ_EINPUT);
    CHECK(strstr(upq_errmsg(), "/nonexistent/x.safetensors"));
    float one = 1;
    st_wtensor t = {.name = "a", .dtype = ST_F32, .ndim = 1, .shape = {1}, .data = &one};
    CHECK(st_write("/nonexistent/dir/x.safetensors", &t, 1, NULL) == UPQ_EIO);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return tu_finish("test_safetensors");
}
