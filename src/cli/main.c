/* main.c - the upq command: a table from subcommand to function. MPI is started
 * here for every subcommand (a singleton without mpirun), and the exit code is
 * the subcommand's (0 ok, 1 usage, 2 bad input, 3 I/O/MPI, 75 preempted). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "par.h"
#include "upq_err.h"

static const struct {
    const char *name;
    cmd_fn fn;
    const char *summary;
} commands[] = {
    {"run", cmd_run, "a job file: the whole method (model, prepare, ptq, gen-data, teacher, qat, eval, export) in order; skip complete, resume partial, re-run what a changed input reaches; exit 75 when preempted"},
    {"sweep", cmd_sweep, "a job file's [sweep] grid: --list the points, --report the finished ones (CSV with quality columns + SVG plots)"},
    {"info", cmd_info, "print a model's architecture, sizes, dtypes, parameters and tensors"},
    {"logits", cmd_logits, "run the forward pass on token ids (FP32, or packed INT2/INT4 for a container), write logits (and hidden states) to HDF5"},
    {"ppl", cmd_ppl, "perplexity over non-overlapping windows of a token stream (ranks split the windows)"},
    {"ptq", cmd_ptq, "block-wise PTQ (rtn, gptq, tesseraq) of every linear layer into the quantized container"},
    {"export", cmd_export, "a container as a HuggingFace folder: fp16 dequantized (hf) or GPTQ int32-packed (gptq)"},
    {"demo-model", cmd_demo_model, "train the built-in demo llama on a procedural corpus, write it in HF format"},
    {"tokenize", cmd_tokenize, "text -> token ids with the model's HuggingFace tokenizer (comma-separated or HDF5)"},
    {"detokenize", cmd_detokenize, "token ids -> text with the model's HuggingFace tokenizer"},
    {"prepare", cmd_prepare, "text/JSONL -> HDF5 token shards (tokens, loss_mask; concat or pad; train/validation split)"},
    {"teacher", cmd_teacher, "teacher records for distillation (full log-probs, top-K, or sampled ids) per token shard, ranks split rows"},
    {"qat", cmd_qat, "distillation QAT of a fake-quantized INT2 student against teacher records (S stages x R replicas), packed output"},
    {"generate", cmd_generate, "KV-cached text generation (greedy/temperature/top-k/top-p, --chat, batches of prompts)"},
    {"gen-data", cmd_gen_data, "teacher-generated distillation data: K sampled continuations per chat/text prompt as JSONL for prepare"},
    {"chat", cmd_chat, "interactive chat on the terminal with the chat template (streamed, tokens/s, /reset, /exit)"},
    {"eval", cmd_eval, "evaluation: instruction following (chat generation + verifiable checks), multiple choice, perplexity"},
    {"bench", cmd_bench, "benchmarks: 'bench forward' (tokens/s), 'bench kernels' (packed GEMV/GEMM), 'bench tokenizer'"},
};
#define N_COMMANDS ((int)(sizeof commands / sizeof commands[0]))

static void usage(FILE *f)
{
    fprintf(f,
            "upq %s - Unified Progressive Quantization of LLaMA-family models on CPU clusters\n\n"
            "usage: upq COMMAND [options]      (mpirun -np P upq COMMAND ... for several ranks)\n"
            "       upq COMMAND --help\n\ncommands:\n",
            UPQ_VERSION);
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "\nexit codes: 0 ok, 1 usage error, 2 bad input (file and reason printed),\n"
            "            3 I/O or MPI failure, 75 preempted after a clean checkpoint\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return UPQ_EUSAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return UPQ_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("upq %s\n", UPQ_VERSION);
        return UPQ_OK;
    }
    int which = -1;
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], commands[i].name)) which = i;
    if (which < 0) {
        fprintf(stderr, "upq: unknown command '%s' (see upq --help)\n", argv[1]);
        return UPQ_EUSAGE;
    }
    if (par_init(&argc, &argv) != UPQ_OK) {
        fprintf(stderr, "upq: %s\n", upq_errmsg());
        return UPQ_EIO;
    }
    int rc = commands[which].fn(argc - 1, argv + 1);
    /* Ranks agree on the outcome so that all exit with the same code after a clean
     * MPI_Finalize. A rank that failed alone while the others wait in a collective it
     * never reached cannot agree: after a few seconds the job is aborted instead. */
    if (par_size() > 1) {
        int all = par_agree_timeout(rc, rc == UPQ_OK ? 1e9 : 5.0);
        fflush(stdout);
        fflush(stderr);
        if (all < 0) {
            cli_report_flush(0);
            par_abort(rc ? rc : UPQ_EIO);
        }
        int rc0 = rc;
        if (all != UPQ_OK) par_bcast(&rc0, sizeof rc0, 0);
        cli_report_flush(rc0 != UPQ_OK);
        rc = all;
    }
    par_finalize();
    return rc;
}
