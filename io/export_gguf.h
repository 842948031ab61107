/* export_gguf.h - `upq export --format gguf` (prefix exp_gguf_): a container as a llama.cpp
 * GGUF v3 file (general.architecture "llama"): hyperparameters, tokenizer ("gpt2" byte-level
 * BPE or "llama" sentencepiece) and chat template, q/k rows permuted to llama.cpp's rope
 * layout, each linear in the ggml type nearest to its grid (docs/export.md "GGUF"). */
#ifndef UPQ_EXPORT_GGUF_H
#define UPQ_EXPORT_GGUF_H

#include <stdio.h>

#include "model.h"

/* Writes `path` (the caller renames it into place) from m (h5q_read of `container`: FP32,
 * dequantized) and the quantized layers of `container` (NULL: an FP model, every linear F16); the tokenizer from tokdir
 * (tokenizer.json, tokenizer_config.json, chat_template.jinja). On return m holds the
 * weights exactly as the GGUF decodes them (HF layout), for --requantized. One line per
 * tensor (name, type, relative Frobenius and max error against m's weights before) goes to
 * stderr and, as a TSV row, to report (may be NULL). q4_0: exp_gguf_linear_type's. UPQ_EINPUT for a model llama.cpp's
 * "llama" architecture cannot hold (q/k/v biases, llama3 rope scaling) or a bad tokenizer. */
int exp_gguf_write(const char *path, const char *container, tfm_model *m, const char *tokdir, const char *name,
                   int q4_0, FILE *report);

/* The ggml type the linear gets: Q2_K for 2 bits when K % 256 == 0, else Q4_1 (holds a 2, 3
 * or 4-bit grid exactly) when K % 32 == 0, else F16; F16 for 8 bits or an FP32 linear
 * (bits 0). q4_0 = 1 puts Q4_0 where Q4_1 would be. */
int exp_gguf_linear_type(int bits, long long K, int q4_0);

#endif
