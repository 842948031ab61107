/* cmd_bench_forward.c - placeholder until its owner lands it. */
#include <stdio.h>
#include "cli.h"
#include "upq_err.h"
int cmd_bench_forward(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "upq: 'bench_forward' is not implemented yet\n");
    return UPQ_EUSAGE;
}
