/* train_step_rss.c - peak resident memory of ONE training step (tfm_forward, tfm_ce_loss,
 * tfm_backward) of a model directory at B sequences of T tokens, for docs/model-core.md.
 * Tokens are a fixed pseudo-random sequence; when T exceeds max_position_embeddings the
 * config's max_T is raised (RoPE extends; the numbers are for memory, not quality).
 * Prints the loss, the gradient norm (to compare builds) and ru_maxrss before and after
 * the step; GRAD_OUT (optional) gets the raw float32 gradients. A benchmark: it prints
 * figures, it asserts nothing. Usage: train_step_rss MODEL_DIR B T [GRAD_OUT]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include "backward.h"
#include "forward.h"
#include "hf_model.h"
#include "loss.h"
#include "upq_err.h"

static long maxrss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: %s MODEL_DIR B T [GRAD_OUT]\n", argv[0]);
        return 2;
    }
    int64_t B = atoll(argv[2]), T = atoll(argv[3]);
    tfm_model m, g;
    if (hf_model_load(argv[1], &m)) {
        fprintf(stderr, "%s\n", upq_errmsg());
        return 1;
    }
    if (T > m.cfg.max_T) m.cfg.max_T = T;
    if (tfm_model_alloc(&g, &m.cfg)) return 1;
    int32_t *tok = malloc((size_t)(B * T) * sizeof *tok), *tgt = malloc((size_t)(B * T) * sizeof *tgt);
    uint64_t s = 12345;
    for (int64_t i = 0; i < B * T; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (int32_t)((s >> 33) % (uint64_t)m.cfg.V);
    }
    tfm_next_token_targets(tgt, tok, NULL, B, T);
    long rss0 = maxrss_kib();
    tfm_acts a;
    if (tfm_acts_alloc(&a, &m.cfg, B, T, 1) || tfm_forward(&m, &a, tok, B, T, NULL)) {
        fprintf(stderr, "%s\n", upq_errmsg());
        return 1;
    }
    float loss = tfm_ce_loss(a.dlogits, a.logits, tgt, B * T, m.cfg.V, NULL);
    if (tfm_backward(&m, &g, &a, tok, B, T)) {
        fprintf(stderr, "%s\n", upq_errmsg());
        return 1;
    }
    long rss1 = maxrss_kib();
    double gn = 0;
    for (int64_t i = 0; i < g.n_params; i++) gn += (double)g.mem[i] * g.mem[i];
    printf("B %lld T %lld loss %.7f grad_norm %.9g maxrss_before_step_kib %ld maxrss_step_kib %ld step_mib %.1f\n",
           (long long)B, (long long)T, loss, sqrt(gn), rss0, rss1, (double)rss1 / 1024.0);
    if (argc == 5) { /* raw float32 gradients, to compare builds bit for bit */
        FILE *f = fopen(argv[4], "wb");
        if (!f || fwrite(g.mem, sizeof(float), (size_t)g.n_params, f) != (size_t)g.n_params || fclose(f)) {
            fprintf(stderr, "%s: cannot write the gradients\n", argv[4]);
            return 1;
        }
    }
    tfm_acts_free(&a);
    tfm_model_free(&g);
    tfm_model_free(&m);
    free(tok);
    free(tgt);
    return 0;
}
