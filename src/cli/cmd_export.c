/* cmd_export.c - `upq export --model MODEL.h5 --format hf|gptq|gguf --out PATH`: a container
 * as a HuggingFace folder (fp16 dequantized, or GPTQ int32-packed) or a llama.cpp GGUF file.
 * Driver: stages/export.c. */
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
            "usage: upq export --model MODEL.h5 --format hf|gptq|gguf --out PATH [--tokenizer DIR]\n"
            "                  [--checkpoint-format gptq|gptq_v2] [--force] [--force-requantize]\n"
            "                  [--requantized DIR] [--gguf-q4 q4_1|q4_0]\n\n"
            "Writes a upq container as a HuggingFace model folder or a GGUF file (docs/export.md):\n"
            "  hf    config.json + model.safetensors with the dequantized weights in fp16\n"
            "  gptq  GPTQ checkpoint (transformers/optimum/GPTQModel, checkpoint_format \"gptq\"):\n"
            "        per linear qweight/qzeros/scales/g_idx, the rest in fp16, quantization_config\n"
            "        in config.json. Every linear must be quantized alike with bits 2/4/8 and every\n"
            "        (row, group) must have an integer zero point z = -m/s (the seq grid has none:\n"
            "        exit 2 naming the layer), in [1, 2^bits-1] for the default checkpoint format\n"
            "        \"gptq\" (v1: qzeros store z - 1, so z = 0 cannot be stored), in [0, 2^bits-1]\n"
            "        for \"gptq_v2\" (qzeros store z; read by GPTQModel, not by auto-gptq).\n"
            "  gguf  one llama.cpp GGUF v3 file (architecture llama, tokenizer, chat template, q/k rows\n"
            "        permuted for llama.cpp's rope): INT2 linears with K %% 256 == 0 as Q2_K, other\n"
            "        2-4 bit linears as Q4_1 (exact: same s, m, codes), the rest F16, norms F32. The\n"
            "        re-quantization error of every tensor (relative Frobenius, max) goes to stderr\n"
            "        and to PATH.requant.tsv.\n"
            "Tokenizer files (tokenizer.json, tokenizer_config.json, generation_config.json,\n"
            "chat_template.jinja, ...) are copied from the container's source model folder.\n"
            "The output is written as PATH.tmp and renamed to PATH when complete.\n\n"
            "  --model MODEL.h5      the container (upq ptq output, or an FP32 container for hf/gguf)\n"
            "  --format hf|gptq|gguf output format\n"
            "  --out PATH            the folder (hf, gptq) or file (gguf) to create\n"
            "  --tokenizer DIR       copy the tokenizer files from DIR instead\n"
            "  --checkpoint-format F gptq (default, v1 zeros z - 1) or gptq_v2 (zeros z)\n"
            "  --force               replace an existing DIR\n"
            "  --force-requantize    gptq: re-quantize groups without an integer zero point to the\n"
            "                        nearest grid w = s*(q - z) (same s, z rounded) and print each\n"
            "                        such layer's max and RMS weight error\n"
            "  --requantized DIR     gguf: also write the weights exactly as the GGUF decodes them as an\n"
            "                        fp32 HF folder (for `upq ppl --model DIR`)\n"
            "  --gguf-q4 q4_1|q4_0   gguf: the type of the 2-4 bit linears that are not Q2_K (default\n"
            "                        q4_1, exact; q4_0 is symmetric and re-quantizes)\n"
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
        {"requantized", required_argument, 0, 'Q'}, {"gguf-q4", required_argument, 0, 'G'},
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
        case 'Q': o.requantized = optarg; break;
        case 'G':
            if (strcmp(optarg, "q4_1") && strcmp(optarg, "q4_0")) {
                fprintf(stderr, "upq export: --gguf-q4 %s: expected q4_1 or q4_0\n", optarg);
                return UPQ_EUSAGE;
            }
            o.gguf_q4_0 = !strcmp(optarg, "q4_0");
            break;
        case 'h': usage(stdout); return UPQ_OK;
        default: usage(stderr); return UPQ_EUSAGE;
        }
    }
    if (optind < argc || !o.model || !o.format || !o.out || (strcmp(o.format, "hf") && strcmp(o.format, "gptq") && strcmp(o.format, "gguf")) ||
        ((o.requantized || o.gguf_q4_0) && strcmp(o.format, "gguf"))) {
        usage(stderr);
        return UPQ_EUSAGE;
    }
    /* serial: rank 0 writes, the other ranks (if any) wait for main.c's agreement */
    return cli_report("export", par_rank() == 0 ? export_run(&o) : UPQ_OK);
}
