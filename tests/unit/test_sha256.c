/* test_sha256.c - SHA-256 against the FIPS 180-2 example vectors ("abc", the
 * 448-bit message, a million 'a'), streaming in odd pieces equal to one shot,
 * and sha256_file against coreutils' sha256sum. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "sha256.h"
#include "test_util.h"
#include "upq_err.h"

static void hex_of(const void *p, size_t n, char hex[65])
{
    uint8_t d[32];
    sha256_buf(p, n, d);
    sha256_hex(d, hex);
}

int main(void)
{
    char hex[65];
    hex_of("abc", 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    hex_of("", 0, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    const char *m448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(m448, strlen(m448), hex);
    CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    static char mil[1000000];
    memset(mil, 'a', sizeof mil);
    hex_of(mil, sizeof mil, hex);
    CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));
    /* streaming: pieces of 1, 63, 64, 65, ... bytes give the same digest */
    sha256_ctx c;
    sha256_init(&c);
    size_t off = 0, step = 1;
    while (off < sizeof mil) {
        size_t k = step < sizeof mil - off ? step : sizeof mil - off;
        sha256_update(&c, mil + off, k);
        off += k;
        step = step * 7 % 131 + 1;
    }
    uint8_t d[32];
    char hex2[65];
    sha256_final(&c, d);
    sha256_hex(d, hex2);
    CHECK(!strcmp(hex, hex2));
    /* file hashing against sha256sum */
    char path[] = "/tmp/upq_test_sha_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0 && write(fd, mil, 300001) == 300001);
    close(fd);
    CHECK_OK(sha256_file(path, hex));
    char cmd[128], want[65] = {0};
    snprintf(cmd, sizeof cmd, "sha256sum %s", path);
    FILE *p = popen(cmd, "r");
    if (p && fscanf(p, "%64s", want) == 1) CHECK_MSG(!strcmp(hex, want), "%s != %s", hex, want);
    else fprintf(stderr, "note: sha256sum not available, file digest not cross-checked\n");
    if (p) pclose(p);
    unlink(path);
    CHECK(sha256_file("/nonexistent/file", hex) == UPQ_EINPUT && strstr(upq_errmsg(), "/nonexistent/file"));
    return tu_finish("test_sha256");
}
