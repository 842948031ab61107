/* cmd_demo_model.c - placeholder until its owner lands it. */
#include <stdio.h>
#include "cli.h"
#include "upq_err.h"
int cmd_demo_model(int argc, char **argv)
{
    (void)argc; (void)argv;
    fprintf(stderr, "upq: 'demo_model' is not implemented yet\n");
    return UPQ_EUSAGE;
}
