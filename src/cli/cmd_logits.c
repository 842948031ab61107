/* cmd_logits.c - placeholder until its owner lands it. */
#include <stdio.h>
#include "cli.h"
#include "upq_err.h"
int cmd_logits(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "upq: 'logits' is not implemented yet\n");
    return UPQ_EUSAGE;
}
