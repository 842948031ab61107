/* cmd_chat.c - `upq chat --model PATH ...`: an interactive chat on the terminal. Each
 * line of stdin is a user message; the conversation so far goes through the chat template
 * (generation prompt) and the answer is decoded with a KV cache (src/eval/generate.h),
 * streamed through gen_opts.on_token: the answer's ids are decoded after every token and
 * the new bytes printed up to the last complete UTF-8 character. tokens/s follow each
 * answer on stderr. /reset forgets the conversation, /exit or EOF ends (exit 0). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "chat.h"
#include "cli.h"
#include "cli_model.h"
#include "generate.h"
#include "upq_err.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: upq chat --model PATH [--tokenizer DIR] [--system TEXT] [--max-new-tokens N]\n"
            "                [--temperature T] [--top-p P] [--seed S] [--dequant]\n\n"
            "Interactive chat with the model's chat template: type a message and Enter; the answer\n"
            "is printed as it is generated, then tokens/s (stderr). /reset starts a new\n"
            "conversation, /exit (or end of input) ends.\n\n"
            "  --model PATH         HuggingFace folder, or an upq .h5 container (with --tokenizer;\n"
            "                       INT2/INT4 linears run packed)\n"
            "  --tokenizer DIR      folder with tokenizer.json (default: --model)\n"
            "  --dequant            a container's quantized linears dequantized to FP32\n"
            "  --system TEXT        a system message first\n"
            "  --max-new-tokens N   per answer (default 256)\n"
            "  --temperature T      0 = greedy (default)\n"
            "  --top-p P            nucleus sampling, 0 < P <= 1 (default 1)\n"
            "  --seed S             sampling seed (default 0; answer k uses stream k)\n"
            "  --help               this text\n\n"
            "exit codes: 0 ok, 1 usage, 2 bad model/tokenizer/template, 3 I/O\n");
}

typedef struct {
    const tok_tokenizer *tok;
    int64_t printed; /* bytes of the answer's text printed so far */
    int fail;
} chat_stream;

/* Length of s[0, n) without a trailing incomplete UTF-8 sequence. */
static int64_t complete_utf8(const char *s, int64_t n)
{
    int64_t i = n, back = 0;
    while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--, back++;
    if (i == 0) return n;
    unsigned char c = (unsigned char)s[i - 1];
    int need = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    return back + 1 >= need || c < 0x80 ? n : i - 1;
}

static void on_token(void *ctx, int64_t prompt, const gen_result *r)
{
    (void)prompt;
    chat_stream *cs = ctx;
    char *text = NULL;
    int64_t len = 0;
    if (cs->fail || tok_decode(cs->tok, r->ids.ids, r->ids.n, 1, &text, &len)) {
        cs->fail = 1;
        free(text);
        return;
    }
    int64_t end = complete_utf8(text, len);
    if (end > cs->printed) {
        fwrite(text + cs->printed, 1, (size_t)(end - cs->printed), stdout);
        fflush(stdout);
        cs->printed = end;
    }
    free(text);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    const char *model, *tokdir, *system;
    int dequant;
    gen_opts o;
} chat_args;

static int add(chat_msg **m, int *n, const char *role, const char *content)
{
    chat_msg *q = realloc(*m, (size_t)(*n + 1) * sizeof *q);
    if (!q) return UPQ_FAIL(UPQ_EIO, "out of memory");
    *m = q;
    q[*n].role = role;
    q[*n].content = strdup(content);
    if (!q[*n].content) return UPQ_FAIL(UPQ_EIO, "out of memory");
    (*n)++;
    return UPQ_OK;
}

static void clear(chat_msg *m, int *n)
{
    for (int i = 0; i < *n; i++) free((char *)m[i].content);
    *n = 0;
}

/* One answer to the conversation msgs[0, n): streamed, then appended as the assistant's. */
static int answer(const tfm_model *m, const tok_tokenizer *tok, const chat_template *t, chat_args *a,
                  chat_msg **msgs, int *n, int64_t k)
{
    char *s = NULL;
    int64_t len = 0;
    tok_ids ids = {0};
    gen_result r = {0};
    int rc = chat_render(t, *msgs, *n, 1, &s, &len, NULL, NULL);
    if (!rc) rc = tok_encode((tok_tokenizer *)tok, s, len, 0, &ids);
    free(s);
    chat_stream cs = {.tok = tok};
    gen_opts o = a->o;
    o.batch = 1;
    o.index0 = k;
    o.on_token = on_token;
    o.on_token_ctx = &cs;
    double t0 = now();
    if (!rc && ids.n + 1 >= m->cfg.max_T) {
        fprintf(stderr, "[the conversation fills the model's context (%lld tokens): /reset]\n", (long long)ids.n);
    } else if (!rc) {
        rc = gen_run(m, tok, &ids, 1, &o, &r);
        double dt = now() - t0;
        if (!rc && cs.fail) rc = UPQ_FAIL(UPQ_EIO, "chat: cannot decode the answer");
        if (!rc) {
            /* the rest of the text (what a final decode adds, e.g. a cut stop string) */
            int64_t tl = (int64_t)strlen(r.text);
            if (tl > cs.printed) fwrite(r.text + cs.printed, 1, (size_t)(tl - cs.printed), stdout);
            printf("\n");
            fflush(stdout);
            fprintf(stderr, "[%lld tokens, %.1f tokens/s%s]\n", (long long)r.ids.n, (double)r.ids.n / dt,
                    r.finish == GEN_EOS ? "" : ", stopped at --max-new-tokens");
            rc = add(msgs, n, "assistant", r.text);
        }
    }
    gen_result_free(&r);
    tok_ids_free(&ids);
    return rc;
}

static int run(chat_args *a)
{
    tfm_model m;
    TRY(cli_model_load("chat", a->model, a->dequant, &m));
    tok_tokenizer *tok = NULL;
    chat_template *t = NULL;
    chat_msg *msgs = NULL;
    int n = 0, tty = isatty(0);
    int rc = tok_create(a->tokdir ? a->tokdir : a->model, &tok);
    if (!rc) rc = chat_template_for(tok, NULL, &t);
    if (!rc) a->o.eos = tok_eos(tok) >= 0 ? tok_eos(tok) : m.cfg.eos_id;
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int64_t k = 0;
    if (!rc && a->system) rc = add(&msgs, &n, "system", a->system);
    while (!rc) {
        if (tty) {
            fputs("> ", stdout);
            fflush(stdout);
        }
        if ((got = getline(&line, &cap, stdin)) < 0) break;
        while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r')) line[--got] = 0;
        if (got == 0) continue;
        if (!strcmp(line, "/exit")) break;
        if (!strcmp(line, "/reset")) {
            clear(msgs, &n);
            if (a->system) rc = add(&msgs, &n, "system", a->system);
            fprintf(stderr, "[new conversation]\n");
            continue;
        }
        rc = add(&msgs, &n, "user", line);
        if (!rc) rc = answer(&m, tok, t, a, &msgs, &n, k++);
    }
    if (tty && !rc) printf("\n");
    free(line);
    clear(msgs, &n);
    free(msgs);
    chat_template_destroy(t);
    tok_destroy(tok);
    tfm_model_free(&m);
    return rc;
}

int cmd_chat(int argc, char **argv)
{
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"tokenizer", required_argument, 0, 'z'},
        {"system", required_argument, 0, 'S'}, {"max-new-tokens", required_argument, 0, 'n'},
        {"temperature", required_argument, 0, 't'}, {"top-p", required_argument, 0, 'u'},
        {"seed", required_argument, 0, 's'}, {"dequant", no_argument, 0, 'D'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    chat_args a = {.o = gen_opts_default()};
    a.o.max_new_tokens = 256;
    int ch;
    double v = 0;
    int64_t s = 0;
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'h': usage(stdout); return UPQ_OK;
        case 'm': a.model = optarg; break;
        case 'z': a.tokdir = optarg; break;
        case 'S': a.system = optarg; break;
        case 'D': a.dequant = 1; break;
        case 'n': TRY(cli_parse_int("chat", "--max-new-tokens", optarg, 1, 1000000000, &a.o.max_new_tokens)); break;
        case 't': TRY(cli_parse_num("chat", "--temperature", optarg, 0, 1e6, &v)); a.o.temperature = (float)v; break;
        case 'u': TRY(cli_parse_num("chat", "--top-p", optarg, 1e-9, 1, &v)); a.o.top_p = (float)v; break;
        case 's': TRY(cli_parse_int("chat", "--seed", optarg, 0, INT64_MAX, &s)); a.o.seed = (uint64_t)s; break;
        default: return cli_usage_error("chat", "unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_usage_error("chat", "unexpected argument '%s'", argv[optind]);
    if (!a.model) return cli_usage_error("chat", "--model is required");
    return cli_report("chat", run(&a));
}
