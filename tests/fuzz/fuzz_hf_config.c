/* fuzz_hf_config.c - libFuzzer harness for the config.json parser (hf_config_parse
 * over arbitrary bytes). A config that parses must pass tfm_config_check and have
 * a parameter count that fits in int64; one that does not must say why. */
#include <stdint.h>
#include <string.h>

#include "hf_config.h"
#include "upq_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tfm_config c;
    int rc = hf_config_parse((const char *)data, size, "config.json", &c);
    if (rc == UPQ_OK) {
        UPQ_ASSERT(tfm_config_check(&c, "config.json") == UPQ_OK);
        UPQ_ASSERT(tfm_param_count(&c) > 0);
        UPQ_ASSERT(c.H % c.KV == 0 && c.arch[0]);
    } else {
        UPQ_ASSERT(rc == UPQ_EINPUT && upq_errmsg()[0]);
    }
    return 0;
}
