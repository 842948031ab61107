#!/usr/bin/env python3
"""gptq_check.py - manual check of `upq export --format gptq` with the REAL HF stack (not a
ctest; not run on the build machine: needs torch, safetensors, transformers, optimum and
GPTQModel (or auto-gptq for checkpoint_format "gptq"), and a CUDA GPU for the GPTQ kernels).

  python3 tests/bench/gptq_check.py GPTQ_DIR HF_DIR

GPTQ_DIR: `upq export --model M.h5 --format gptq [--checkpoint-format gptq_v2] --out GPTQ_DIR`
HF_DIR:   `upq export --model M.h5 --format hf --out HF_DIR` of the same container.

1. Dequantizes every linear of GPTQ_DIR/model.safetensors with torch from the published
   layout (docs/export.md): w = scales[g_idx[k]][n] * (q - z), z = qzeros field + 1 for
   checkpoint_format "gptq" (v1), + 0 for "gptq_v2"; compares with HF_DIR's fp16 weights
   (the same container dequantized): max |d| <= 2^-10 * max |w| per layer.
2. AutoModelForCausalLM.from_pretrained(GPTQ_DIR, device_map="cuda") (transformers' GPTQ
   loader) and from_pretrained(HF_DIR, float16) on the same tokens (fp16 both): the logits'
   max |d| / max |ref| must be <= 2e-2 (fp16 activations in different kernels), and the
   greedy next tokens must agree on >= 95% of positions.
Exit 0 when both hold, 1 otherwise."""
import json
import os
import sys

import torch
from safetensors.torch import load_file

W_TOL = 2.0 ** -10
LOGIT_TOL = 2e-2
ARGMAX_MIN = 0.95


def unpack(x, bits, dim):
    """int32 tensor -> codes, 32/bits per element, packed along `dim` (0: rows, 1: columns)."""
    pack = 32 // bits
    shifts = torch.arange(pack, dtype=torch.int32, device=x.device) * bits
    if dim == 0:
        v = (x.unsqueeze(1) >> shifts.view(1, pack, 1)) & ((1 << bits) - 1)
        return v.reshape(x.shape[0] * pack, x.shape[1])
    v = (x.unsqueeze(2) >> shifts.view(1, 1, pack)) & ((1 << bits) - 1)
    return v.reshape(x.shape[0], x.shape[1] * pack)


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 1
    gdir, hdir = sys.argv[1], sys.argv[2]
    qc = json.load(open(os.path.join(gdir, "config.json")))["quantization_config"]
    bits, v2 = qc["bits"], qc.get("checkpoint_format", "gptq") == "gptq_v2"
    g = load_file(os.path.join(gdir, "model.safetensors"))
    h = load_file(os.path.join(hdir, "model.safetensors"))
    ok = True
    worst = 0.0
    for name in sorted(k[: -len(".qweight")] for k in g if k.endswith(".qweight")):
        q = unpack(g[name + ".qweight"], bits, 0)                  # (K, N)
        z = unpack(g[name + ".qzeros"], bits, 1) + (0 if v2 else 1)  # (G, N)
        s = g[name + ".scales"].float()                           # (G, N)
        gi = g[name + ".g_idx"].long()                            # (K)
        w = (s[gi] * (q - z[gi]).float()).t()                     # (N, K)
        ref = h[name + ".weight"].float()
        d = (w - ref).abs().max().item()
        bound = W_TOL * ref.abs().max().item()
        worst = max(worst, d / bound if bound > 0 else float("inf"))
        if not d <= bound:
            print(f"FAIL {name}: max|w_gptq - w_hf| {d:.3g} > {bound:.3g}")
            ok = False
    print(f"weights: {len([k for k in g if k.endswith('.qweight')])} linears, worst error/bound {worst:.3f}")

    from transformers import AutoModelForCausalLM
    torch.manual_seed(0)
    mh = AutoModelForCausalLM.from_pretrained(hdir, torch_dtype=torch.float16).cuda().eval()
    mg = AutoModelForCausalLM.from_pretrained(gdir, device_map="cuda", torch_dtype=torch.float16).eval()
    ids = torch.randint(3, mh.config.vocab_size, (2, 128), device="cuda")
    with torch.no_grad():
        lh = mh(ids).logits.float()
        lg = mg(ids).logits.float()
    rel = ((lg - lh).abs().max() / lh.abs().max()).item()
    agree = (lg.argmax(-1) == lh.argmax(-1)).float().mean().item()
    print(f"logits: max|d|/max|ref| {rel:.3g} (<= {LOGIT_TOL}), argmax agreement {agree:.3f} (>= {ARGMAX_MIN})")
    if not (rel <= LOGIT_TOL and agree >= ARGMAX_MIN):
        ok = False
    print("gptq_check: OK" if ok else "gptq_check: FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
