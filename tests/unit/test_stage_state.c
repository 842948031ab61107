/* test_stage_state.c - io/stage_state.h: begin/commit of a stage record. A crash between
 * begin and commit (a half-written temp file, a killed writer) leaves the previous
 * record or none, never a complete-looking new one; a reader racing a writer that
 * commits over and over sees only whole records; damaged, truncated, other-stage,
 * other-key and old-format files are told apart. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stage_state.h"
#include "test_util.h"
#include "upq_err.h"

static int read_state(const char *path, const char *stage, const char *key, int legacy, char *out, size_t cap)
{
    void *p = NULL;
    size_t n = 0;
    int st = -1;
    int rc = ss_record_read(path, stage, key, legacy, &st, &p, &n);
    if (rc) return -1;
    if (out) {
        out[0] = '\0';
        if (p && n < cap) memcpy(out, p, n), out[n] = '\0';
    }
    free(p);
    return st;
}

static void put(const char *path, const char *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(bytes, 1, n, f) == n);
    fclose(f);
}

int main(void)
{
    char dir[] = "/tmp/upq_test_ss_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128], tmp[160], buf[256];
    snprintf(path, sizeof path, "%s/stage.state", dir);
    ss_tmp_name(path, tmp, sizeof tmp);

    CHECK(read_state(path, "ppl", "k1", 0, NULL, 0) == SS_ABSENT);
    CHECK_OK(ss_record_write(path, "ppl", "k1", "first", 5));
    CHECK(access(tmp, F_OK) != 0);
    CHECK(read_state(path, "ppl", "k1", 0, buf, sizeof buf) == SS_MATCH && !strcmp(buf, "first"));
    CHECK(read_state(path, "ppl", "k2", 0, NULL, 0) == SS_OTHER_KEY);
    CHECK(read_state(path, "ptq", "k1", 0, NULL, 0) == SS_DAMAGED); /* another stage's file */

    /* A crash after begin, before commit: the temp file holds half a new record. */
    CHECK_OK(ss_record_write(tmp, "ppl", "k1", "second", 6)); /* a whole record under tmp ... */
    CHECK(truncate(tmp, 40) == 0); /* ... cut short as the crash left it */
    CHECK(read_state(path, "ppl", "k1", 0, buf, sizeof buf) == SS_MATCH && !strcmp(buf, "first"));
    CHECK(read_state(tmp, "ppl", "k1", 0, NULL, 0) == SS_DAMAGED);
    /* the next begin/commit replaces the leftover */
    CHECK_OK(ss_record_write(path, "ppl", "k1", "second", 6));
    CHECK(read_state(path, "ppl", "k1", 0, buf, sizeof buf) == SS_MATCH && !strcmp(buf, "second"));
    CHECK(access(tmp, F_OK) != 0);

    /* A record damaged in place (not through ss_*): truncated, or one payload bit flipped. */
    char rec[512];
    snprintf(buf, sizeof buf, "%s/copy", dir);
    CHECK_OK(ss_record_write(buf, "ppl", "k1", "payload-bytes", 13));
    FILE *f = fopen(buf, "rb");
    size_t n = f ? fread(rec, 1, sizeof rec, f) : 0;
    if (f) fclose(f);
    CHECK(n > 13);
    put(buf, rec, n - 1);
    CHECK(read_state(buf, "ppl", "k1", 0, NULL, 0) == SS_DAMAGED);
    rec[n - 2] ^= 1;
    put(buf, rec, n);
    CHECK(read_state(buf, "ppl", "k1", 0, NULL, 0) == SS_DAMAGED);
    put(buf, "", 0);
    CHECK(read_state(buf, "ppl", "k1", 0, NULL, 0) == SS_DAMAGED);
    /* the old one-line stage.txt: matches its key only where the caller accepts it */
    put(buf, "k1\n", 3);
    CHECK(read_state(buf, "ptq", "k1", 1, NULL, 0) == SS_MATCH);
    CHECK(read_state(buf, "ptq", "k1", 0, NULL, 0) == SS_LEGACY);
    CHECK(read_state(buf, "ptq", "k2", 1, NULL, 0) == SS_LEGACY);
    /* the old binary ppl.ckpt */
    put(buf, "upq-ppl-ckpt-1 k1\n\x01\x00", 20);
    CHECK(read_state(buf, "ppl", "k1", 0, NULL, 0) == SS_DAMAGED);

    /* Commit is atomic: a writer commits records of two payload sizes back to back and is
     * killed at a random moment; a reader meanwhile only ever sees a whole record. */
    static char big[65536];
    memset(big, 'b', sizeof big);
    CHECK_OK(ss_record_write(path, "ppl", "k1", "small", 5));
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        for (int i = 0;; i++)
            if (ss_record_write(path, "ppl", "k1", i % 2 ? big : "small", i % 2 ? sizeof big : 5)) _exit(3);
    }
    int whole = 0, bad = 0;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        void *p = NULL;
        size_t m = 0;
        int st = -1;
        if (ss_record_read(path, "ppl", "k1", 0, &st, &p, &m) == UPQ_OK && st == SS_MATCH &&
            (m == 5 || m == sizeof big))
            whole++;
        else
            bad++;
        free(p);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((double)(t.tv_sec - t0.tv_sec) + 1e-9 * (double)(t.tv_nsec - t0.tv_nsec) < 0.5);
    kill(pid, SIGKILL);
    int ws = 0;
    waitpid(pid, &ws, 0);
    CHECK(WIFSIGNALED(ws)); /* the writer never failed */
    CHECK_MSG(bad == 0 && whole > 10, "%d whole reads, %d torn or failed", whole, bad);
    int st = read_state(path, "ppl", "k1", 0, NULL, 0);
    CHECK(st == SS_MATCH); /* killed mid-write: the last committed record stands */
    printf("stage_state: %d reads during back-to-back commits, all whole\n", whole);

    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    return tu_finish("test_stage_state");
}
