/* cmd_info.c - placeholder until its owner lands it. */
#include <stdio.h>
#include "cli.h"
#include "upq_err.h"
int cmd_info(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "upq: 'info' is not implemented yet\n");
    return UPQ_EUSAGE;
}
