/* hf_config.h - HuggingFace config.json <-> tfm_config for LlamaForCausalLM,
 * MistralForCausalLM and Qwen2ForCausalLM (transformers 4 and 5 spellings).
 * Bad or missing keys are UPQ_EINPUT naming the file and the key. */
#ifndef UPQ_HF_CONFIG_H
#define UPQ_HF_CONFIG_H

#include "model.h"

/* Reads and validates (tfm_config_check) a config.json. */
int hf_config_read(const char *path, tfm_config *cfg);
/* Parses config.json text already in memory; `label` names it in messages. */
int hf_config_parse(const char *text, size_t len, const char *label, tfm_config *cfg);
/* Writes a transformers-compatible config.json (rope_theta at top level and in
 * rope_parameters), atomically (temporary name, fsync, rename). */
int hf_config_write(const char *path, const tfm_config *cfg);

#endif
