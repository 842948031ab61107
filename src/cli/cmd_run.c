/* cmd_run.c - `upq run JOB.ini [--set section.key=value]... [--sweep-index N]`: every
 * stage of the job in order (src/stages/run.h), skipping complete ones and resuming
 * partial ones. Exit 75 when stopped by SIGTERM/SIGUSR1 after a checkpoint. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "jobfile.h"
#include "run.h"
#include "upq_err.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: upq run JOB.ini [--set SECTION.KEY=VALUE]... [--sweep-index N | --shared-only]\n\n"
            "Runs every stage of the job file in order inside one MPI job (mpirun -np P, or\n"
            "srun in slurm/upq.sbatch). A stage whose output is complete is skipped; one that\n"
            "was interrupted resumes from its last checkpoint and ends with the same bytes.\n"
            "Outputs go to the job's run directory ([job] dir); DIR/job.ini records the\n"
            "resolved job. Stages: model, prepare, ptq, ppl, gen-data, teacher, qat, eval,\n"
            "export (each a [section] with enabled = true). Every stage records the SHA-256 of\n"
            "its inputs: a changed input re-runs exactly the stages downstream of it (said on\n"
            "stderr). With an [eval] stage the run ends with a table: FP vs INT4 vs INT2.\n"
            "Format and keys: README, section \"Batch jobs\"; examples in jobs/.\n\n"
            "  --set S.K=V       override key K of section S (repeatable; after the file)\n"
            "  --sweep-index N   run point N of the [sweep] grid (upq sweep JOB.ini --list)\n"
            "                    in DIR/points/N; stages no swept key reaches (model, prepare,\n"
            "                    ptq, teacher) go to DIR/shared, made once under a lock\n"
            "  --shared-only     a sweep's shared stages only, then stop (the first job that\n"
            "                    the array depends on: slurm/sweep-submit.sh)\n"
            "  --help            this text\n\n"
            "Signals: SIGTERM or SIGUSR1 stop every rank at the next safe point; the state is\n"
            "committed and upq exits 75; the same command then resumes.\n"
            "exit codes: 0 ok, 1 usage, 2 bad job file or input, 3 I/O or MPI, 75 preempted\n");
}

static int parse_index(const char *s, int64_t *v)
{
    return cli_parse_int("run", "--sweep-index", s, 0, INT64_MAX, v);
}

/* Shared with cmd_sweep.c: loads JOB.ini and applies the --set list. */
int cmd_job_load(const char *cmd, const char *path, char **sets, int nsets, job_file *j)
{
    int rc = job_load(path, j);
    for (int i = 0; !rc && i < nsets; i++) rc = job_set(j, sets[i]);
    if (rc) {
        cli_report(cmd, rc);
        job_free(j);
    }
    return rc;
}

static int run(const char *path, char **sets, int nsets, int64_t index, int shared_only)
{
    job_file j;
    TRY(cmd_job_load("run", path, sets, nsets, &j));
    job_sweep s;
    int rc = job_sweep_read(&j, &s);
    if (!rc && index >= 0 && !s.nparams)
        rc = UPQ_FAIL(UPQ_EUSAGE, "--sweep-index %lld: %s has no [sweep] section", (long long)index, path);
    if (!rc && shared_only && !s.nparams)
        rc = UPQ_FAIL(UPQ_EUSAGE, "--shared-only: %s has no [sweep] section", path);
    if (!rc && shared_only) {
        if (index >= 0) rc = UPQ_FAIL(UPQ_EUSAGE, "--shared-only and --sweep-index exclude each other");
        index = 0; /* the shared stages are the same for every point */
        run_set_shared_only(1);
    }
    if (!rc && index >= 0) rc = job_sweep_apply(&s, index, &j);
    if (!rc && index < 0 && s.nparams)
        rc = UPQ_FAIL(UPQ_EUSAGE, "%s has a [sweep] section: run one point with --sweep-index N "
                      "(upq sweep %s --list)", path, path);
    if (!rc) rc = run_job(&j, index);
    job_free(&j);
    return rc == UPQ_EPREEMPT ? rc : cli_report("run", rc);
}

int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {{"set", required_argument, 0, 's'},
                                         {"sweep-index", required_argument, 0, 'i'},
                                         {"shared-only", no_argument, 0, 'S'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    char *sets[256];
    int nsets = 0;
    int64_t index = -1;
    int shared_only = 0;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 's':
            if (nsets == 256) return cli_usage_error("run", "more than 256 --set options");
            sets[nsets++] = optarg;
            break;
        case 'i': TRY(parse_index(optarg, &index)); break;
        case 'S': shared_only = 1; break;
        case 'h': usage(stdout); return UPQ_OK;
        default: return cli_usage_error("run", "unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind != argc - 1) return cli_usage_error("run", "expected one job file (see --help)");
    return run(argv[optind], sets, nsets, index, shared_only);
}
