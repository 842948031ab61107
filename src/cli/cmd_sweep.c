/* cmd_sweep.c - `upq sweep JOB.ini (--list | --report) [--set S.K=V]...`: prints the
 * [sweep] grid with point indices, or collects the finished points into
 * DIR/sweep.csv and DIR/sweep.svg. Points are run by `upq run JOB.ini --sweep-index N`
 * (slurm/sweep.sbatch: one array task per point). Rank 0 only. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "jobfile.h"
#include "run.h"
#include "upq_err.h"

int cmd_job_load(const char *cmd, const char *path, char **sets, int nsets, job_file *j);

static void usage(FILE *f)
{
    fprintf(f,
            "usage: upq sweep JOB.ini (--list | --report) [--set SECTION.KEY=VALUE]...\n\n"
            "The [sweep] section of a job file lists values per key (ptq.bits = 2,3,4); the\n"
            "grid is their product, the first key varying slowest.\n\n"
            "  --list     print 'INDEX  key=value ...' for every point, then the count\n"
            "  --report   write DIR/sweep.csv (one row per point: parameters, ppl, mean NLL,\n"
            "             windows; with an [eval] stage the last model's eval perplexity and\n"
            "             accuracy: instruction prompt-strict, else multiple-choice acc_norm;\n"
            "             done/missing), DIR/sweep.svg (perplexity against the first\n"
            "             parameter) and DIR/sweep_accuracy.svg, and print the CSV\n"
            "  --set S.K=V  as for upq run (use the same overrides as the runs)\n\n"
            "Run point N with: upq run JOB.ini --sweep-index N   (outputs in DIR/points/N)\n"
            "Stages no swept key reaches (model, prepare, ptq, teacher) run once for the sweep\n"
            "in DIR/shared (under a lock; upq run JOB.ini --shared-only runs just them).\n"
            "On Slurm: slurm/sweep-submit.sh JOB.ini (the shared job, then the array with\n"
            "--dependency=afterok), or sbatch --array=0-<count-1> slurm/sweep.sbatch JOB.ini\n"
            "exit codes: 0 ok, 1 usage, 2 bad job file or no finished point, 3 I/O\n");
}

static int list(const job_file *j)
{
    job_sweep s;
    TRY(job_sweep_read(j, &s));
    if (!s.nparams) return UPQ_FAIL(UPQ_EINPUT, "%s: no [sweep] section", j->path);
    char buf[4096];
    for (int64_t i = 0; i < s.npoints; i++) {
        job_sweep_describe(&s, i, buf, sizeof buf);
        printf("%lld  %s\n", (long long)i, buf);
    }
    printf("# %lld points (sbatch --array=0-%lld slurm/sweep.sbatch %s)\n", (long long)s.npoints,
           (long long)s.npoints - 1, j->path);
    return UPQ_OK;
}

int cmd_sweep(int argc, char **argv)
{
    static const struct option opts[] = {{"list", no_argument, 0, 'l'}, {"report", no_argument, 0, 'r'},
                                         {"set", required_argument, 0, 's'}, {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    char *sets[256];
    int nsets = 0, mode = 0;
    optind = 1;
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 'l': mode = mode ? -1 : 'l'; break;
        case 'r': mode = mode ? -1 : 'r'; break;
        case 's':
            if (nsets == 256) return cli_usage_error("sweep", "more than 256 --set options");
            sets[nsets++] = optarg;
            break;
        case 'h': usage(stdout); return UPQ_OK;
        default: return cli_usage_error("sweep", "unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind != argc - 1) return cli_usage_error("sweep", "expected one job file (see --help)");
    if (mode <= 0) return cli_usage_error("sweep", "give exactly one of --list and --report");
    job_file j;
    TRY(cmd_job_load("sweep", argv[optind], sets, nsets, &j));
    int rc = job_check_keys(&j, run_known_keys);
    if (!rc && cli_is_root()) rc = mode == 'l' ? list(&j) : run_sweep_report(&j, 1);
    fflush(stdout);
    job_free(&j);
    return cli_report("sweep", rc);
}
