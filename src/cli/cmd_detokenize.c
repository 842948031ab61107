/* cmd_detokenize.c - `upq detokenize --model DIR --ids 1,2,3 [--skip-special]`: decodes
 * token ids with the model's HF tokenizer (src/text/tokenizer.h) and prints the text
 * followed by a newline. Not tokenize (cmd_tokenize.c). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "tokenizer.h"
#include "upq_err.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: upq detokenize --model DIR --ids 1,2,3 [--skip-special]\n\n"
            "Decodes the ids with the model folder's tokenizer.json as HuggingFace\n"
            "tokenizer.decode does and prints the text and a newline.\n\n"
            "  --model DIR       HuggingFace model folder holding tokenizer.json\n"
            "  --ids LIST        comma-separated token ids\n"
            "  --skip-special    leave out special tokens (skip_special_tokens=True)\n"
            "  --help            this text\n\n"
            "exit codes: 0 ok, 1 usage, 2 bad tokenizer files or an id outside the vocabulary\n");
}

static int run(const char *model, const int64_t *ids64, int64_t n, int skip)
{
    int32_t *ids = malloc((size_t)n * sizeof *ids + 1);
    if (!ids) return UPQ_FAIL(UPQ_EIO, "out of memory");
    for (int64_t i = 0; i < n; i++) ids[i] = ids64[i] > INT32_MAX ? -1 : (int32_t)ids64[i];
    tok_tokenizer *t = NULL;
    char *text = NULL;
    int64_t len = 0;
    int rc = tok_create(model, &t);
    if (!rc) rc = tok_decode(t, ids, n, skip, &text, &len);
    if (!rc && cli_is_root()) {
        fwrite(text, 1, (size_t)len, stdout);
        printf("\n");
        if (fflush(stdout)) rc = UPQ_FAIL(UPQ_EIO, "cannot write to stdout");
    }
    free(text);
    free(ids);
    tok_destroy(t);
    return rc;
}

int cmd_detokenize(int argc, char **argv)
{
    static const struct option opts[] = {{"model", required_argument, 0, 'm'},
                                         {"ids", required_argument, 0, 'i'},
                                         {"skip-special", no_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *model = NULL, *list = NULL;
    int skip = 0, ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': model = optarg; break;
        case 'i': list = optarg; break;
        case 's': skip = 1; break;
        case 'h': usage(stdout); return UPQ_OK;
        default: return cli_usage_error("detokenize", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("detokenize", "unexpected argument '%s'", argv[optind]);
    if (!model || !list) return cli_usage_error("detokenize", "--model and --ids are required");
    int64_t *ids = NULL, n = 0;
    TRY(cli_parse_ids("detokenize", list, &ids, &n));
    int rc = run(model, ids, n, skip);
    free(ids);
    return cli_report("detokenize", rc);
}
