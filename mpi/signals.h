/* signals.h - preemption signals as a flag: SIGTERM and SIGUSR1 (Slurm preemption,
 * --signal, scancel --signal, mpirun forwarding) set it; the stage drivers poll it at
 * their safe points, ranks agree, the state is committed and upq exits 75. The
 * handler does nothing else, so a second signal during a checkpoint write changes
 * nothing but the flag. Not the checkpoint format (each stage owns its own). */
#ifndef UPQ_SIGNALS_H
#define UPQ_SIGNALS_H

/* Installs the handlers (SA_RESTART: interrupted reads/writes are resumed, not failed). */
int sig_install(void);
/* The signal this process received (SIGTERM or SIGUSR1), 0 when none. */
int sig_pending(void);
/* Collective: 1 when any rank has received a signal, on every rank. A safe point:
 * call it where every rank stands between two committed pieces of work. */
int sig_agree_stop(void);
/* How many signals arrived (tests: a second signal during a checkpoint). */
int sig_count(void);

#endif
