/* cli_model.h - the model loader of the inference subcommands (ppl, logits, generate,
 * bench forward): a container's INT2/INT4 linears packed for the kernels by default, or
 * everything dequantized to FP32 (--dequant); the one-line notice about quantized
 * layers with no packed kernel. Not the loaders themselves (ppl.h, io/). */
#ifndef UPQ_CLI_MODEL_H
#define UPQ_CLI_MODEL_H

#include "model.h"

/* Loads path (HF folder or .h5 container) into m: packed unless dequant. When some
 * quantized linears have no packed kernel (bits 3/8), rank 0 prints a one-line notice
 * to stderr, "upq CMD: note: ...". Returns the loader's status (not reported). */
int cli_model_load(const char *cmd, const char *path, int dequant, tfm_model *m);

#endif
