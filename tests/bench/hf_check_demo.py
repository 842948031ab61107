#!/usr/bin/env python3
"""hf_check_demo.py - the HuggingFace half of a manual check (not a ctest; needs torch,
transformers, tokenizers, h5py, numpy): loads the folder written by
tests/bench/hf_check_demo_prep.sh with the REAL HF libraries and compares with what upq
computed there.

  python3 tests/bench/hf_check_demo.py DIR [REPORT.txt]

1. tokenizers.Tokenizer.from_file(DIR/demo/tokenizer.json) and
   AutoTokenizer.from_pretrained(DIR/demo) encode every DIR/cases/NAME.txt with and
   without special tokens; the ids must equal DIR/ids/NAME.{plain,special} (upq tokenize).
   The whole held-out text must encode to upq's ids and to DIR/demo/eval_tokens.h5.
2. LlamaForCausalLM.from_pretrained(DIR/demo, float32, eager attention) on CPU (and on
   CUDA when present, TF32 off) gives logits for DIR/logits/NAME.ids; the largest absolute
   difference to upq's /logits over the largest |logit| must be <= 1e-4.
Exit 0 when everything agrees, 1 otherwise; the report goes to stdout and REPORT.txt."""
import glob
import os
import sys

import h5py
import numpy as np
import torch
import tokenizers
import transformers
from transformers import AutoTokenizer, LlamaForCausalLM

REL_TOL = 1e-4
lines = []


def say(msg):
    print(msg, flush=True)
    lines.append(msg)


def read_ids(path):
    s = open(path, encoding="ascii").read().strip()
    return [int(x) for x in s.split(",")] if s else []


def first_diff(a, b):
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return min(len(a), len(b))


def check_tokenizer(d):
    demo = os.path.join(d, "demo")
    raw = tokenizers.Tokenizer.from_file(os.path.join(demo, "tokenizer.json"))
    auto = AutoTokenizer.from_pretrained(demo)
    say(f"AutoTokenizer class: {type(auto).__name__}")
    names = sorted(os.path.basename(p)[:-4] for p in glob.glob(os.path.join(d, "cases", "*.txt")))
    bad, n_ids = 0, 0
    for name in names:
        with open(os.path.join(d, "cases", name + ".txt"), "rb") as f:
            text = f.read().decode("utf-8")
        want_p = read_ids(os.path.join(d, "ids", name + ".plain"))
        want_s = read_ids(os.path.join(d, "ids", name + ".special"))
        got = {
            "tokenizers plain": raw.encode(text, add_special_tokens=False).ids,
            "tokenizers special": raw.encode(text, add_special_tokens=True).ids,
            "AutoTokenizer plain": auto(text, add_special_tokens=False)["input_ids"],
            "AutoTokenizer special": auto(text, add_special_tokens=True)["input_ids"],
        }
        n_ids += len(want_p)
        for how, ids in got.items():
            want = want_s if how.endswith("special") else want_p
            if ids != want:
                bad += 1
                i = first_diff(ids, want)
                say(f"MISMATCH {name} ({how}): at {i}: HF {ids[i:i+8]} upq {want[i:i+8]} "
                    f"(lengths {len(ids)} vs {len(want)})")
    say(f"tokenizer: {len(names)} texts x 4 encodings, {n_ids} ids (plain), {bad} mismatches")
    text = open(os.path.join(demo, "heldout.txt"), "rb").read().decode("utf-8")
    hf = raw.encode(text, add_special_tokens=False).ids
    upq = read_ids(os.path.join(d, "ids", "heldout_all.plain"))
    ev = h5py.File(os.path.join(demo, "eval_tokens.h5"), "r")["/tokens"][:].tolist()
    whole = hf == upq and hf == ev
    say(f"whole held-out text: {len(text)} chars -> HF {len(hf)} ids, upq tokenize {len(upq)}, "
        f"eval_tokens.h5 {len(ev)}: {'equal' if whole else 'DIFFERENT at %d' % first_diff(hf, upq)}")
    return bad == 0 and whole


def check_logits(d):
    demo = os.path.join(d, "demo")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = LlamaForCausalLM.from_pretrained(demo, dtype=torch.float32, attn_implementation="eager")
    model.eval()
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    ok = True
    for dev in devices:
        model.to(dev)
        for p in sorted(glob.glob(os.path.join(d, "logits", "*.ids"))):
            ids = read_ids(p)
            want = h5py.File(p[:-4] + ".h5", "r")["/logits"][:]
            with torch.no_grad():
                got = model(torch.tensor([ids], device=dev)).logits[0].double().cpu().numpy()
            diff = float(np.max(np.abs(got - want)))
            scale = float(np.max(np.abs(got)))
            rel = diff / scale
            agree = float(np.mean(got.argmax(-1) == want.argmax(-1)))
            good = rel <= REL_TOL and got.shape == want.shape
            ok = ok and good
            say(f"logits {os.path.basename(p)[:-4]} on {dev}: T={len(ids)} shape {tuple(got.shape)} "
                f"max|diff| {diff:.3e} max|logit| {scale:.3f} rel {rel:.2e} argmax agree {agree:.4f} "
                f"{'ok' if good else 'FAIL'}")
    return ok


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__)
        return 1
    d = sys.argv[1]
    say(f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"tokenizers {tokenizers.__version__}, h5py {h5py.__version__}")
    ok_tok = check_tokenizer(d)
    ok_log = check_logits(d)
    say(f"RESULT tokenizer {'PASS' if ok_tok else 'FAIL'}, logits {'PASS' if ok_log else 'FAIL'}")
    if len(sys.argv) == 3:
        with open(sys.argv[2], "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    return 0 if ok_tok and ok_log else 1


if __name__ == "__main__":
    sys.exit(main())
