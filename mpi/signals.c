/* signals.c - SIGTERM/SIGUSR1 -> a flag, and the collective "does any rank want to
 * stop" at safe points (signals.h). Async-signal-safe: the handler only stores. */
#include "signals.h"

#include <signal.h>
#include <string.h>

#include "par.h"
#include "upq_err.h"

static volatile sig_atomic_t got_sig;
static volatile sig_atomic_t n_sig;

static void on_signal(int s)
{
    if (!got_sig) got_sig = s;
    if (n_sig < 1000000) n_sig++;
}

int sig_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) || sigaction(SIGUSR1, &sa, NULL))
        return UPQ_FAIL(UPQ_EIO, "sigaction(SIGTERM/SIGUSR1) failed");
    return UPQ_OK;
}

int sig_pending(void) { return got_sig; }

int sig_count(void) { return n_sig; }

int sig_agree_stop(void)
{
    /* par_agree returns the largest code: any rank's 1 wins. */
    return par_agree(got_sig ? 1 : 0) != 0;
}
