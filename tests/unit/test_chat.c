/* test_chat.c - chat templates (chat.h). The Jinja texts below are the published
 * templates of Llama-2-chat, Llama-3-Instruct, Qwen2-Instruct, SmolLM-Instruct and
 * TinyLlama-1.1B-Chat (= Zephyr); the expected strings were derived BY HAND by reading
 * those templates under HF's jinja settings (trim_blocks, lstrip_blocks): transformers
 * cannot run here. The tinyllama-15m-instruct template is checked against transformers
 * itself: rendering the eval prompts and tokenizing without BOS must give golden.h5's
 * greedy/<k>/prompt_ids. Also: assistant spans, the simple file format, errors. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "h5tokens.h"
#include "test_util.h"
#include "tokenizer.h"
#include "upq_err.h"

static const char *LLAMA2 =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}"
    "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";
static const char *LLAMA3 =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + "
    "'<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
    "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
static const char *QWEN2 =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
static const char *SMOLLM =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
static const char *TINYLLAMA_CHAT =
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n"
    "{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n"
    "{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}";

/* Renders msgs with the template and compares with want; the assistant spans, when
 * span0 is given, must cover exactly that text. */
static void expect(const char *name, const char *jinja, const char *bos, const char *eos,
                   const chat_msg *m, int n, int gen, const char *want, const char *span0)
{
    chat_template *t = NULL;
    CHECK_OK(chat_template_detect(jinja, bos, eos, name, &t));
    if (!t) return;
    char *text = NULL;
    int64_t len = 0;
    chat_span *sp = NULL;
    int ns = 0;
    CHECK_OK(chat_render(t, m, n, gen, &text, &len, &sp, &ns));
    CHECK_MSG(text && !strcmp(text, want), "%s (%s): got\n[%s]\nwant\n[%s]", name,
              chat_family_name(chat_template_family(t)), text ? text : "(null)", want);
    CHECK(text && len == (int64_t)strlen(text));
    if (span0 && text) {
        CHECK_MSG(ns >= 1 && sp[0].end - sp[0].start == (int64_t)strlen(span0) &&
                      !strncmp(text + sp[0].start, span0, strlen(span0)),
                  "%s: first assistant span", name);
    }
    printf("  %-16s family %-9s %lld bytes, %d assistant span(s)\n", name,
           chat_family_name(chat_template_family(t)), (long long)len, ns);
    free(sp);
    free(text);
    chat_template_destroy(t);
}

static void families(void)
{
    chat_msg conv[] = {{"system", "You are helpful."}, {"user", " Hi there "}, {"assistant", "Hello!\n"}, {"user", "Bye"}};
    expect("llama2", LLAMA2, "<s>", "</s>", conv, 4, 1,
           "<s>[INST] <<SYS>>\nYou are helpful.\n<</SYS>>\n\n Hi there [/INST] Hello! </s><s>[INST] Bye [/INST]",
           " Hello! </s>");
    expect("llama2-nosys", LLAMA2, "<s>", "</s>", conv + 1, 3, 0,
           "<s>[INST] Hi there [/INST] Hello! </s><s>[INST] Bye [/INST]", NULL);
    expect("llama3", LLAMA3, "<|begin_of_text|>", "<|end_of_text|>", conv, 3, 1,
           "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>"
           "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
           "<|start_header_id|>assistant<|end_header_id|>\n\n",
           "Hello!<|eot_id|>");
    expect("qwen2", QWEN2, NULL, "<|im_end|>", conv + 1, 2, 1,
           "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n Hi there <|im_end|>\n"
           "<|im_start|>assistant\nHello!\n<|im_end|>\n<|im_start|>assistant\n",
           "Hello!\n<|im_end|>");
    expect("qwen2-sys", QWEN2, NULL, "<|im_end|>", conv, 2, 0,
           "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\n Hi there <|im_end|>\n", NULL);
    expect("smollm", SMOLLM, NULL, "<|im_end|>", conv + 3, 1, 1,
           "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
           "<|im_start|>user\nBye<|im_end|>\n<|im_start|>assistant\n", NULL);
    expect("tinyllama-chat", TINYLLAMA_CHAT, "<s>", "</s>", conv, 4, 1,
           "<|system|>\nYou are helpful.</s>\n<|user|>\n Hi there </s>\n<|assistant|>\nHello!\n</s>\n"
           "<|user|>\nBye</s>\n<|assistant|>\n",
           "Hello!\n</s>");
    expect("tinyllama-nogen", TINYLLAMA_CHAT, "<s>", "</s>", conv + 1, 2, 0,
           "<|user|>\n Hi there </s>\n<|assistant|>\nHello!\n</s>\n", NULL);
}

static void errors(void)
{
    chat_template *t = NULL;
    CHECK(chat_template_detect("{{ messages[0]['content'] }}", "<s>", "</s>", "junk", &t) == UPQ_EINPUT && !t);
    CHECK(strstr(upq_errmsg(), "unrecognised chat template") != NULL);
    /* Mistral's [INST] without <<SYS>> is another family: not silently Llama-2 */
    CHECK(chat_template_detect("{{ bos_token }}{% for m in messages %}[INST] {{ m['content'] }} [/INST]{% endfor %}",
                               "<s>", "</s>", "mistral", &t) == UPQ_EINPUT);
    /* Phi-3 looks like Zephyr (<|user|>, <|assistant|>, eos_token) but ends turns with <|end|> */
    CHECK(chat_template_detect("{% for message in messages %}{% if message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}"
                               "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}"
                               "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}",
                               "<s>", "<|endoftext|>", "phi3", &t) == UPQ_EINPUT);
    /* Qwen3 is ChatML plus <think> handling */
    CHECK(chat_template_detect("{{'<|im_start|>' + message.role + '\n' + content }}{% if enable_thinking is defined and enable_thinking is false %}{{ '<think>\n\n</think>\n\n' }}{% endif %}",
                               NULL, "<|im_end|>", "qwen3", &t) == UPQ_EINPUT);
    CHECK_OK(chat_template_detect(LLAMA2, "<s>", "</s>", "llama2", &t));
    chat_msg bad[] = {{"user", "a"}, {"user", "b"}};
    char *text = NULL;
    CHECK(chat_render(t, bad, 2, 0, &text, NULL, NULL, NULL) == UPQ_EINPUT && !text);
    CHECK(strstr(upq_errmsg(), "alternate") != NULL);
    chat_template_destroy(t);
}

static void simple_file(void)
{
    char path[] = "/tmp/upq_test_chat_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "# my format\nprefix = \"{bos}\"\nsystem = \"### System: {content}\\n\"\n"
               "user = \"### User: {content}\\n\"\nassistant = \"### Assistant: {content}{eos}\\n\"\n"
               "generation = \"### Assistant:\"\ndefault_system = \"Be brief.\"\n");
    fclose(f);
    chat_template *t = NULL;
    CHECK_OK(chat_template_load(path, "<s>", "</s>", &t));
    chat_msg m[] = {{"user", "Q \"1\""}, {"assistant", "A"}, {"user", "Q2"}};
    char *text = NULL;
    chat_span *sp = NULL;
    int ns = 0;
    if (t) CHECK_OK(chat_render(t, m, 3, 1, &text, NULL, &sp, &ns));
    const char *want = "<s>### System: Be brief.\n### User: Q \"1\"\n### Assistant: A</s>\n### User: Q2\n### Assistant:";
    CHECK_MSG(text && !strcmp(text, want), "simple: [%s]", text ? text : "(null)");
    CHECK(ns == 1 && text && !strncmp(text + sp[0].start, "A</s>\n", 6) && sp[0].end - sp[0].start == 6);
    chat_msg tool[] = {{"tool", "x"}};
    free(text);
    text = NULL;
    if (t) CHECK(chat_render(t, tool, 1, 0, &text, NULL, NULL, NULL) == UPQ_EINPUT);
    free(sp);
    chat_template_destroy(t);
    f = fopen(path, "w");
    fprintf(f, "user = \"{content}\"\nassistant: \"{content}\"\n");
    fclose(f);
    CHECK(chat_template_load(path, "<s>", "</s>", &t) == UPQ_EINPUT);
    CHECK(strstr(upq_errmsg(), ":2:") != NULL);
    remove(path);
}

/* Messages of eval id `id` in eval.jsonl (json array, caller decrefs). */
static json_t *eval_messages(const char *shared, const char *id)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/data/instruct-eval/eval.jsonl", shared);
    FILE *f = fopen(p, "r");
    if (!f) return NULL;
    char *line = NULL;
    size_t cap = 0;
    json_t *found = NULL;
    while (!found && getline(&line, &cap, f) > 0) {
        json_t *o = json_loads(line, 0, NULL);
        const char *oid = json_string_value(json_object_get(o, "id"));
        if (oid && !strcmp(oid, id)) found = json_incref(json_object_get(o, "messages"));
        json_decref(o);
    }
    free(line);
    fclose(f);
    return found;
}

static void instruct_golden(const char *shared)
{
    char dir[4096], gold[4200];
    snprintf(dir, sizeof dir, "%s/models/tinyllama-15m-instruct", shared);
    snprintf(gold, sizeof gold, "%s/golden.h5", dir);
    tok_tokenizer *tk = NULL;
    chat_template *t = NULL;
    CHECK_OK(tok_create(dir, &tk));
    if (tk) CHECK_OK(chat_template_for(tk, NULL, &t));
    if (!t) return;
    CHECK(chat_template_family(t) == CHAT_ROLETAGS);
    int ok = 0;
    for (int k = 0; k < 5; k++) {
        char ds[64], id[64];
        int64_t *want = NULL, nw = 0;
        snprintf(ds, sizeof ds, "/greedy/%d/prompt_ids", k);
        CHECK_OK(h5_read_tokens(gold, ds, &want, &nw));
        snprintf(id, sizeof id, "ifx-%04d", (int[]){19, 6, 29, 5, 4}[k]);
        json_t *ms = eval_messages(shared, id);
        CHECK_MSG(ms != NULL, "eval.jsonl has no %s", id);
        int n = ms ? (int)json_array_size(ms) : 0;
        chat_msg m[8];
        for (int i = 0; i < n && i < 8; i++) {
            m[i].role = json_string_value(json_object_get(json_array_get(ms, i), "role"));
            m[i].content = json_string_value(json_object_get(json_array_get(ms, i), "content"));
        }
        char *text = NULL;
        int64_t len = 0;
        tok_ids ids = {0};
        if (ms) CHECK_OK(chat_render(t, m, n, 1, &text, &len, NULL, NULL));
        if (text) CHECK_OK(tok_encode(tk, text, len, 0, &ids));
        int same = ids.n == nw;
        for (int64_t i = 0; same && i < nw; i++) same = ids.ids[i] == want[i];
        CHECK_MSG(same, "%s: prompt ids differ from golden greedy/%d/prompt_ids", id, k);
        ok += same;
        tok_ids_free(&ids);
        free(text);
        free(want);
        json_decref(ms);
    }
    printf("  tinyllama-15m-instruct: %d/5 golden prompt_ids reproduced (template + tokenizer)\n", ok);
    chat_template_destroy(t);
    tok_destroy(tk);
}

int main(void)
{
    families();
    errors();
    simple_file();
    instruct_golden(tu_shared_dir());
    return tu_finish("test_chat");
}
