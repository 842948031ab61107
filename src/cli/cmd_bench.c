/* cmd_bench.c - `upq bench forward|kernels ...`: dispatch to the benchmark subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "upq_err.h"

int cmd_bench(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        FILE *f = argc < 2 ? stderr : stdout;
        fprintf(f, "usage: upq bench forward [options]   forward-pass tokens/s of a model\n"
                   "       upq bench kernels [options]   packed INT2/INT4 GEMV/GEMM against BLIS and bandwidth\n"
                   "       upq bench tokenizer [options] tokenizer MB/s beside the forward pass per token\n"
                   "       upq bench scalapack [options] SPD inverse (GPTQ) seconds, LAPACK vs ScaLAPACK\n"
                   "       upq bench TARGET --help\n");
        return argc < 2 ? UPQ_EUSAGE : UPQ_OK;
    }
    if (!strcmp(argv[1], "forward")) return cmd_bench_forward(argc - 1, argv + 1);
    if (!strcmp(argv[1], "kernels")) return cmd_bench_kernels(argc - 1, argv + 1);
    if (!strcmp(argv[1], "tokenizer")) return cmd_bench_tokenizer(argc - 1, argv + 1);
    if (!strcmp(argv[1], "scalapack")) return cmd_bench_scalapack(argc - 1, argv + 1);
    fprintf(stderr, "upq bench: unknown target '%s' (forward, kernels, tokenizer or scalapack)\n", argv[1]);
    return UPQ_EUSAGE;
}
