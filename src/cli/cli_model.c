/* cli_model.c - cli_model_load (cli_model.h): packed or dequantized loading and the
 * notice about layers that stay FP32. */
#include "cli_model.h"

#include <stdio.h>

#include "cli.h"
#include "ppl.h"

int cli_model_load(const char *cmd, const char *path, int dequant, tfm_model *m)
{
    if (dequant) return ppl_load_model(path, m);
    int64_t n_dequant = 0;
    int rc = ppl_load_model_packed(path, m, &n_dequant);
    if (!rc && n_dequant && cli_is_root())
        fprintf(stderr,
                "upq %s: note: %lld quantized linear layers have bits 3 or 8 (no packed kernel) and run "
                "dequantized in FP32\n",
                cmd, (long long)n_dequant);
    return rc;
}
