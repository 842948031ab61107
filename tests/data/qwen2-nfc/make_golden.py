# Runs where HF `tokenizers` is installed (the device machine): trains the small
# Qwen2-style tokenizer of tests/data/qwen2-nfc/ and writes HF's ids for TEXTS on it and
# on the byte-level / SentencePiece-style tokenizers of ../shared/models.
# usage: python3 make_golden.py DATA_DIR OUT_DIR
#   DATA_DIR holds texts.py, corpus.py and tinyllama-15m/, stories260k/ (their
#   tokenizer.json + tokenizer_config.json); OUT_DIR/qwen2-nfc/ receives tokenizer.json,
#   tokenizer_config.json and golden-<name>.json (docs/tokenizer.md).
import json, os, sys, unicodedata
sys.path.insert(0, sys.argv[1])
from texts import TEXTS
from corpus import CORPUS
import tokenizers
from tokenizers import Tokenizer, Regex, models, normalizers, pre_tokenizers, decoders, processors, trainers

data, out = sys.argv[1], sys.argv[2]
os.makedirs(out + "/qwen2-nfc", exist_ok=True)
# Qwen2's tokenizer.json pipeline: NFC, the Qwen2 split regex (Isolated), ByteLevel
# without its own regex; ByteLevel decoder and post-processor; BPE without unk.
QWEN2_RE = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
            r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")
tok = Tokenizer(models.BPE(byte_fallback=False, fuse_unk=False))
tok.normalizer = normalizers.NFC()
tok.pre_tokenizer = pre_tokenizers.Sequence([
    pre_tokenizers.Split(Regex(QWEN2_RE), behavior="isolated", invert=False),
    pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])
tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
trainer = trainers.BpeTrainer(vocab_size=1200, min_frequency=1, special_tokens=specials,
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
tok.train_from_iterator(CORPUS.splitlines(keepends=True) * 3, trainer)
tok.save(out + "/qwen2-nfc/tokenizer.json")
tmpl = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
        "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
        "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
        "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
cfg = {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
       "unk_token": None, "clean_up_tokenization_spaces": False, "model_max_length": 32768,
       "tokenizer_class": "Qwen2Tokenizer", "chat_template": tmpl}
with open(out + "/qwen2-nfc/tokenizer_config.json", "w") as f:
    json.dump(cfg, f, indent=2)
    f.write("\n")

def golden(path, label):
    t = Tokenizer.from_file(path)
    cases = []
    for s in TEXTS:
        e = t.encode(s, add_special_tokens=False).ids
        es = t.encode(s, add_special_tokens=True).ids
        cases.append({"text": s, "nfc": unicodedata.normalize("NFC", s), "ids": e, "ids_special": es,
                      "decoded": t.decode(e, skip_special_tokens=False),
                      "decoded_skip": t.decode(es, skip_special_tokens=True)})
    try:  # the transformers loader must agree with the bare tokenizer
        from transformers import AutoTokenizer
        at = AutoTokenizer.from_pretrained(os.path.dirname(path))
        bad = sum(at.encode(c["text"], add_special_tokens=False) != c["ids"] for c in cases)
        note = "AutoTokenizer(%s) mismatches: %d" % (type(at).__name__, bad)
    except Exception as ex:
        note = "AutoTokenizer not checked: %r" % (ex,)
    print(label, note)
    return {"tokenizer": label, "tokenizers_version": tokenizers.__version__, "autotokenizer": note,
            "cases": cases}

res = {"qwen2-nfc": golden(out + "/qwen2-nfc/tokenizer.json", "qwen2-nfc")}
for m in ["tinyllama-15m", "stories260k"]:
    res[m] = golden(data + "/" + m + "/tokenizer.json", m)
for k, v in res.items():
    with open(out + "/qwen2-nfc/golden-" + k + ".json", "w") as f:
        json.dump(v, f, ensure_ascii=True, indent=1)
        f.write("\n")
print("vocab", tok.get_vocab_size(), "sizes", {k: os.path.getsize(out + "/qwen2-nfc/golden-" + k + ".json") for k in res})
