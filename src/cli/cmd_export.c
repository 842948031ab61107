/* cmd_export.c - `upq export --model MODEL.h5 --format hf|gptq --out DIR`: a container as a
 * HuggingFace folder (fp16 dequantized, or GPTQ int32-packed). Driver: stages/export.c. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "export.h"
#include "par.h"
#include "upq_err.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: upq export --model MODEL.h5 --format hf|gptq --out DIR [--tokenizer DIR]\n"
            "                  [--checkpoint-format gptq|gptq_v2] [--force] [--force-requantize]\n\n"
            "Writes a upq container as a HuggingFace model folder (docs/export.md):\n"
            "  hf    config.json + model.safetensors with the dequantized weights in fp16\n"
            "  gptq  GPTQ checkpoint (transformers/optimum/GPTQModel, checkpoint_format \"gptq\"):\n"
            "        per linear qweight/qzeros/scales/g_idx, the rest in fp16, quantization_config\n"
            "        in config.json. Every linear must be quantized alike with bits 2/4/8 and every\n"
            "        (row, group) must have an integer zero point z = -m/s (the seq grid has none:\n"
            "        exit 2 naming the layer), in [1, 2^bits-1] for the default checkpoint format\n"
            "        \"gptq\" (v1: qzeros store z - 1, so z = 0 cannot be stored), in [0, 2^bits-1]\n"
            "        for \"gptq_v2\" (qzeros store z; read by GPTQModel, not by auto-gptq).\n"
            "Tokenizer files (tokenizer.json, tokenizer_config.json, generation_config.json,\n"
            "chat_template.jinja, ...) are copied from the container's source model folder.\n"
            "The folder is written as DIR.tmp and renamed to DIR when complete.\n\n"
            "  --model MODEL.h5      the container (upq ptq output, or an FP32 container for hf)\n"
            "  --format hf|gptq      output format\n"
            "  --out DIR             the folder to create\n"
            "  --tokenizer DIR       copy the tokenizer files from DIR instead\n"
            "  --checkpoint-format F gptq (default, v1 zeros z - 1) or gptq_v2 (zeros z)\n"
            "  --force               replace an existing DIR\n"
            "  --force-requantize    gptq: re-quantize groups without an integer zero point to the\n"
            "                        nearest grid w = s*(q - z) (same s, z rounded) and print each\n"
            "                        such layer's max and RMS weight error\n"
            "  --help                this text\n\n"
            "exit codes: 0 ok, 1 usage, 2 bad input (file/layer and reason printed), 3 I/O\n");
}

int cmd_export(int argc, char **argv)
{
    export_opts o = {0};
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'}, {"format", required_argument, 0, 'f'},
        {"out", required_argument, 0, 'o'},   {"tokenizer", required_argument, 0, 't'},
        {"force", no_argument, 0, 'F'},       {"force-requantize", no_argument, 0, 'R'},
        {"checkpoint-format", required_argument, 0, 'C'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'm': o.model = optarg; break;
        case 'f': o.format = optarg; break;
        case 'o': o.out = optarg; break;
        case 't': o.tokenizer = optarg; break;
        case 'F': o.force = 1; break;
        case 'R': o.force_requantize = 1; break;
        case 'C':
            if (strcmp(optarg, "gptq") && strcmp(optarg, "gptq_v2")) {
                fprintf(stderr, "upq export: --checkpoint-format %s: expected gptq or gptq_v2\n", optarg);
                return UPQ_EUSAGE;
            }
            o.gptq_v2 = !strcmp(optarg, "gptq_v2");
            break;
        case 'h': usage(stdout); return UPQ_OK;
        default: usage(stderr); return UPQ_EUSAGE;
        }
    }
    if (optind < argc || !o.model || !o.format || !o.out || (strcmp(o.format, "hf") && strcmp(o.format, "gptq"))) {
        usage(stderr);
        return UPQ_EUSAGE;
    }
    /* serial: rank 0 writes, the other ranks (if any) wait for main.c's agreement */
    return cli_report("export", par_rank() == 0 ? export_run(&o) : UPQ_OK);
}
