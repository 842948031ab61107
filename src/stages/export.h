/* export.h - the `upq export` driver: a container (FP32 or quantized) as a HuggingFace
 * folder, fp16 dequantized ("hf") or GPTQ ("gptq"), or as a llama.cpp GGUF file ("gguf"),
 * written into OUT.tmp and renamed to OUT (docs/export.md). */
#ifndef UPQ_STAGES_EXPORT_H
#define UPQ_STAGES_EXPORT_H

typedef struct {
    const char *model;      /* the container (.h5) */
    const char *format;     /* "hf" | "gptq" */
    const char *out;        /* the folder to create */
    const char *tokenizer;  /* folder with tokenizer files, or NULL: the container's source folder */
    int force;              /* replace an existing OUT */
    int force_requantize;   /* gptq: re-quantize groups without an integer zero point */
    int gptq_v2;            /* gptq: checkpoint_format gptq_v2 (qzeros hold z, not z - 1) */
    int gguf_q4_0;          /* gguf: Q4_0 instead of Q4_1 for the linears of 2-4 bits that are not Q2_K */
    const char *requantized; /* gguf: also write the GGUF's weights, decoded, as an fp32 HF folder here */
} export_opts;

/* UPQ_EINPUT (exit 2) for a bad container, an existing OUT without force, or a layer GPTQ
 * cannot express; UPQ_EIO for file system failures. */
int export_run(const export_opts *o);

#endif
