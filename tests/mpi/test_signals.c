/* test_signals.c - mpi/signals.h at 1, 2 and 4 ranks: no rank stops before a signal;
 * a SIGUSR1 (then a SIGTERM) that reaches only the last rank makes sig_agree_stop
 * true on every rank; a second signal keeps the first one's number and only counts;
 * a signal arriving during a blocking read (SA_RESTART) does not fail it. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "par.h"
#include "signals.h"
#include "test_util.h"
#include "upq_err.h"

/* A blocking read on an empty pipe: a child sends SIGUSR1 after 50 ms and writes 4
 * bytes after 150 ms. Without SA_RESTART the read would fail with EINTR; with it, the
 * read resumes and returns the bytes. */
static void test_read_restarts(void)
{
    int fd[2];
    CHECK(pipe(fd) == 0);
    pid_t me = getpid(), child = fork();
    if (child == 0) {
        close(fd[0]);
        nanosleep(&(struct timespec){0, 50000000L}, NULL); /* 50 ms (usleep is not POSIX.1-2008) */
        kill(me, SIGUSR1);
        nanosleep(&(struct timespec){0, 100000000L}, NULL); /* 100 ms */
        _exit(write(fd[1], "done", 4) == 4 ? 0 : 1);
    }
    close(fd[1]);
    char got[8] = {0};
    ssize_t r = read(fd[0], got, 4);
    CHECK_MSG(r == 4 && !memcmp(got, "done", 4), "read returned %zd", r);
    close(fd[0]);
    int st = 0;
    waitpid(child, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK(sig_pending() == SIGUSR1);
}

int main(int argc, char **argv)
{
    if (par_init(&argc, &argv) != UPQ_OK) {
        fprintf(stderr, "par_init: %s\n", upq_errmsg());
        return 1;
    }
    int rank = par_rank(), last = par_size() - 1;
    CHECK_OK(sig_install());
    CHECK(sig_pending() == 0 && sig_count() == 0);
    CHECK(sig_agree_stop() == 0);
    if (rank == last) raise(SIGUSR1);
    CHECK(sig_agree_stop() == 1);
    if (rank == last) {
        CHECK(sig_pending() == SIGUSR1 && sig_count() == 1);
        raise(SIGTERM); /* the second signal: still alive, same flag, counted */
        CHECK(sig_pending() == SIGUSR1 && sig_count() == 2);
    } else {
        CHECK(sig_pending() == 0);
        test_read_restarts();
    }
    CHECK(sig_agree_stop() == 1);
    int fails = (int)par_agree(tu_failures ? 1 : 0);
    par_finalize();
    if (fails && !tu_failures) tu_failures = 1;
    return tu_finish("test_signals");
}
