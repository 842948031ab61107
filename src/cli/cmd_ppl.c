/* cmd_ppl.c - placeholder until its owner lands it. */
#include <stdio.h>
#include "cli.h"
#include "upq_err.h"
int cmd_ppl(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "upq: 'ppl' is not implemented yet\n");
    return UPQ_EUSAGE;
}
