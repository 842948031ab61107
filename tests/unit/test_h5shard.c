/* test_h5shard.c - token shard files (io/h5shard.h): write then read back tokens [N,T]
 * and loss_mask [N,T] bit for bit (a row count that is not a multiple of the chunk, a
 * single row), no temporary file left behind, and a missing file or a file without the
 * datasets is UPQ_EINPUT naming it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "h5shard.h"
#include "h5tokens_write.h"
#include "test_util.h"
#include "upq_err.h"

static void roundtrip(int64_t N, int64_t T)
{
    char path[] = "/tmp/upq_test_h5shard_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    int32_t *tok = malloc((size_t)(N * T) * sizeof *tok);
    uint8_t *mask = malloc((size_t)(N * T));
    for (int64_t i = 0; i < N * T; i++) {
        tok[i] = (int32_t)((i * 2654435761u) % 100000) - (i % 7 == 0 ? 5 : 0);
        mask[i] = (uint8_t)((i / 3) % 2);
    }
    h5shard_meta m = {.tokenizer_sha256 = "00ff", .sources = "abc  x.txt\n", .packing = "concat",
                      .split = "train", .seq_len = T, .shard_index = 3, .seed = 9, .val_fraction = 0.25};
    CHECK_OK(h5shard_write(path, tok, mask, N, T, &m));
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    CHECK(access(tmp, F_OK) != 0);
    int32_t *t2 = NULL;
    uint8_t *m2 = NULL;
    int64_t n2 = 0, T2 = 0;
    CHECK_OK(h5shard_read(path, &t2, &m2, &n2, &T2));
    CHECK(n2 == N && T2 == T);
    if (t2 && m2 && n2 == N && T2 == T) {
        CHECK(!memcmp(t2, tok, (size_t)(N * T) * sizeof *tok));
        CHECK(!memcmp(m2, mask, (size_t)(N * T)));
    }
    printf("  [%lld, %lld] written and read back identical\n", (long long)N, (long long)T);
    free(t2);
    free(m2);
    free(tok);
    free(mask);
    remove(path);
}

int main(void)
{
    roundtrip(1, 5);
    roundtrip(300, 512); /* 65536 / 512 = 128-row chunks: a partial last chunk */
    int32_t *t = NULL;
    uint8_t *m = NULL;
    int64_t n, T;
    CHECK(h5shard_read("/nonexistent/upq_shard.h5", &t, &m, &n, &T) == UPQ_EINPUT);
    CHECK(strstr(upq_errmsg(), "/nonexistent/upq_shard.h5") != NULL);
    char path[] = "/tmp/upq_test_h5shard_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    int32_t ids[3] = {1, 2, 3};
    CHECK_OK(h5_write_tokens(path, "/tokens", ids, 3)); /* 1-D: not a shard */
    CHECK(h5shard_read(path, &t, &m, &n, &T) == UPQ_EINPUT && !t && !m);
    CHECK(strstr(upq_errmsg(), "not 2-D") != NULL);
    remove(path);
    return tu_finish("test_h5shard");
}
