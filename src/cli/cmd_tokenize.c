/* cmd_tokenize.c - `upq tokenize --model DIR (--text STRING | --file FILE) [--no-special]
 * [--out FILE.h5]`: the model's HF tokenizer (src/text/tokenizer.h) on a text; prints the ids
 * comma-separated on one line, or writes them as the int32 dataset /tokens of FILE.h5.
 * Not detokenize (cmd_detokenize.c). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "h5tokens_write.h"
#include "tokenizer.h"
#include "upq_err.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: upq tokenize --model DIR (--text STRING | --file FILE) [--no-special] [--out FILE.h5]\n\n"
            "Encodes the text with the model folder's tokenizer.json (+ tokenizer_config.json), exactly\n"
            "as HuggingFace tokenizers does, and prints the ids comma-separated on one line.\n\n"
            "  --model DIR     HuggingFace model folder holding tokenizer.json\n"
            "  --text STRING   the text (as given: no escapes are interpreted)\n"
            "  --file FILE     the text is the whole file (bytes as they are)\n"
            "  --no-special    no BOS/EOS (add_special_tokens=False)\n"
            "  --out FILE.h5   write the ids as int32 dataset /tokens instead of printing them\n"
            "  --help          this text\n\n"
            "exit codes: 0 ok, 1 usage, 2 bad tokenizer files or text file, 3 I/O\n");
}

static int print_ids(const tok_ids *ids)
{
    if (!cli_is_root()) return UPQ_OK;
    for (int64_t i = 0; i < ids->n; i++) printf(i ? ",%d" : "%d", (int)ids->ids[i]);
    printf("\n");
    return fflush(stdout) ? UPQ_FAIL(UPQ_EIO, "cannot write to stdout") : UPQ_OK;
}

static int run(const char *model, const char *text, const char *file, int special, const char *out)
{
    char *buf = NULL;
    int64_t n = 0;
    if (file) TRY(tok_read_file(file, &buf, &n));
    tok_tokenizer *t = NULL;
    tok_ids ids = {0};
    int rc = tok_create(model, &t);
    if (!rc) rc = tok_encode(t, file ? buf : text, file ? n : (int64_t)strlen(text), special, &ids);
    if (!rc && out && cli_is_root()) {
        rc = h5_write_tokens(out, "/tokens", ids.ids, ids.n);
        if (!rc) printf("wrote %lld tokens to %s:/tokens\n", (long long)ids.n, out);
    } else if (!rc && !out) {
        rc = print_ids(&ids);
    }
    tok_ids_free(&ids);
    tok_destroy(t);
    free(buf);
    return rc;
}

int cmd_tokenize(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"text", required_argument, 0, 't'},
        {"file", required_argument, 0, 'f'},  {"no-special", no_argument, 0, 'n'},
        {"out", required_argument, 0, 'o'},   {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    const char *model = NULL, *text = NULL, *file = NULL, *out = NULL;
    int special = 1, ch;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'm': model = optarg; break;
        case 't': text = optarg; break;
        case 'f': file = optarg; break;
        case 'n': special = 0; break;
        case 'o': out = optarg; break;
        case 'h': usage(stdout); return UPQ_OK;
        default: return cli_usage_error("tokenize", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("tokenize", "unexpected argument '%s'", argv[optind]);
    if (!model) return cli_usage_error("tokenize", "--model is required");
    if (!text == !file) return cli_usage_error("tokenize", "give exactly one of --text and --file");
    return cli_report("tokenize", run(model, text, file, special, out));
}
