#!/usr/bin/env python3
"""torch_eval.py - an independent PyTorch check of upq's quantized containers (not used
by upq itself): a plain LLaMA forward in torch (fp32, TF32 off), the perplexity protocol
of ../shared/models/REFERENCE.md, REFERENCE.md's RTN fake-quantization done here from the
HF weights, and the dequantization of upq containers read with h5py straight from the
layout in docs/container.md (codes in "planes", fp16 scales and offsets).

usage: torch_eval.py --golden golden.h5 [--hf DIR] [--rtn 4:128,3:128,...] [--fp]
                     [--max-windows K] [CONTAINER.h5 ...]
Prints one JSON line per evaluation: {"what", "ppl", "nll", "windows", "predicted"}.
"""
import argparse
import json
import math
import os

import h5py
import numpy as np
import torch

PROJ = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def cfg_from_container(f):
    a = f["config"].attrs
    return {k: (a[k].decode() if isinstance(a[k], bytes) else a[k].item() if hasattr(a[k], "item") else a[k])
            for k in a.keys()}


def unpack_codes(raw, bits, bg, K):
    """raw (N, nb*B) uint8 -> codes (N, K) following docs/container.md."""
    N = raw.shape[0]
    if bits in (3, 8):
        return raw.reshape(N, -1)[:, :K].astype(np.float32)
    B = bg * bits // 8
    nb = raw.shape[1] // B
    blk = raw.reshape(N, nb, B)
    mask = (1 << bits) - 1
    planes = [(blk >> (bits * p)) & mask for p in range(8 // bits)]  # code k = plane k//B, byte k%B
    codes = np.concatenate(planes, axis=2)  # (N, nb, bg)
    return codes.reshape(N, nb * bg)[:, :K].astype(np.float32)


def load_container(path):
    f = h5py.File(path, "r")
    assert f.attrs["complete"] == 1
    cfg = cfg_from_container(f)
    W = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and "hf_name" in obj.attrs:
            W[obj.attrs["hf_name"].decode() if isinstance(obj.attrs["hf_name"], bytes) else obj.attrs["hf_name"]] = \
                torch.from_numpy(obj[...].astype(np.float32))
        if isinstance(obj, h5py.Group) and "encoding" in obj.attrs:
            bits, bg = int(obj.attrs["bits"]), int(obj.attrs["block_codes"])
            K = int(obj.attrs["in_features"])
            codes = unpack_codes(obj["codes"][...], bits, bg, K)
            s = np.repeat(obj["scales"][...].astype(np.float32), bg, axis=1)[:, :K]
            m = np.repeat(obj["offsets"][...].astype(np.float32), bg, axis=1)[:, :K]
            hf = obj.attrs["hf_name"]
            W[hf.decode() if isinstance(hf, bytes) else hf] = torch.from_numpy((s * codes + m).astype(np.float32))
    f.visititems(visit)
    c = {"V": cfg["vocab_size"], "C": cfg["hidden_size"], "L": cfg["num_hidden_layers"],
         "H": cfg["num_attention_heads"], "KV": cfg["num_key_value_heads"], "D": cfg["head_dim"],
         "theta": cfg["rope_theta"], "eps": cfg["rms_norm_eps"], "tied": cfg["tie_word_embeddings"]}
    return c, W


def load_hf(d):
    from safetensors.torch import load_file
    cj = json.load(open(os.path.join(d, "config.json")))
    W = {k: v.float() for k, v in load_file(os.path.join(d, "model.safetensors")).items()}
    H = cj["num_attention_heads"]
    c = {"V": cj["vocab_size"], "C": cj["hidden_size"], "L": cj["num_hidden_layers"], "H": H,
         "KV": cj.get("num_key_value_heads", H), "D": cj.get("head_dim", cj["hidden_size"] // H),
         "theta": cj.get("rope_theta", 10000.0), "eps": cj["rms_norm_eps"],
         "tied": int(cj.get("tie_word_embeddings", False))}
    return c, W


def rtn_ref(w, bits, g):
    """REFERENCE.md RTN, fp32, half-to-even (torch.round)."""
    maxq = 2 ** bits - 1
    N, K = w.shape
    out = torch.empty_like(w)
    for k0 in range(0, K, g):
        x = w[:, k0:k0 + g]
        wmin, wmax = x.min(1, keepdim=True).values, x.max(1, keepdim=True).values
        scale = torch.clamp(wmax - wmin, min=1e-5) / maxq
        zero = torch.clamp(-torch.round(wmin / scale), 0, maxq)
        q = torch.clamp(torch.round(x / scale) + zero, 0, maxq)
        out[:, k0:k0 + g] = (q - zero) * scale
    return out


def rmsnorm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def forward(c, W, ids, dev):
    B, T = ids.shape
    C, H, KV, D = c["C"], c["H"], c["KV"], c["D"]
    inv = 1.0 / (c["theta"] ** (torch.arange(0, D, 2, dtype=torch.float32, device=dev) / D))
    ang = torch.arange(T, dtype=torch.float32, device=dev)[:, None] * inv[None]
    cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)

    def rope(x):
        x1, x2 = x[..., :D // 2], x[..., D // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    x = W["model.embed_tokens.weight"][ids]
    mask = torch.full((T, T), float("-inf"), device=dev).triu(1)
    for l in range(c["L"]):
        p = f"model.layers.{l}."
        h = rmsnorm(x, W[p + "input_layernorm.weight"], c["eps"])
        q = (h @ W[p + "self_attn.q_proj.weight"].T).view(B, T, H, D).transpose(1, 2)
        k = (h @ W[p + "self_attn.k_proj.weight"].T).view(B, T, KV, D).transpose(1, 2)
        v = (h @ W[p + "self_attn.v_proj.weight"].T).view(B, T, KV, D).transpose(1, 2)
        q, k = rope(q), rope(k)
        k, v = k.repeat_interleave(H // KV, 1), v.repeat_interleave(H // KV, 1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(D) + mask, -1)
        y = (att @ v).transpose(1, 2).reshape(B, T, H * D)
        x = x + y @ W[p + "self_attn.o_proj.weight"].T
        h = rmsnorm(x, W[p + "post_attention_layernorm.weight"], c["eps"])
        a = torch.nn.functional.silu(h @ W[p + "mlp.gate_proj.weight"].T) * (h @ W[p + "mlp.up_proj.weight"].T)
        x = x + a @ W[p + "mlp.down_proj.weight"].T
    x = rmsnorm(x, W["model.norm.weight"], c["eps"])
    head = W["model.embed_tokens.weight"] if c["tied"] or "lm_head.weight" not in W else W["lm_head.weight"]
    return x @ head.T


def ppl(c, W, stream, ctx, max_windows, dev):
    W = {k: v.to(dev) for k, v in W.items()}
    nw = len(stream) // ctx
    if max_windows:
        nw = min(nw, max_windows)
    ids = torch.from_numpy(stream[:nw * ctx].astype(np.int64)).view(nw, ctx).to(dev)
    nll, n = 0.0, 0
    with torch.no_grad():
        for b0 in range(0, nw, 32):
            x = ids[b0:b0 + 32]
            lg = forward(c, W, x, dev)
            lp = torch.log_softmax(lg[:, :-1].double(), -1)
            nll += -lp.gather(-1, x[:, 1:, None]).sum().item()
            n += x[:, 1:].numel()
    return {"ppl": math.exp(nll / n), "nll": nll / n, "windows": nw, "predicted": n}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--golden", required=True)
    ap.add_argument("--hf")
    ap.add_argument("--fp", action="store_true")
    ap.add_argument("--rtn", default="")
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--max-windows", type=int, default=0)
    ap.add_argument("containers", nargs="*")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    g = h5py.File(a.golden, "r")
    stream = g["eval/wikitext2_test_token_ids"][...]
    gold = {k: float(g["eval/wikitext2_test"][k].attrs["ppl"]) for k in g["eval/wikitext2_test"].keys()}
    if a.hf:
        c, W = load_hf(a.hf)
        if a.fp:
            print(json.dumps({"what": "fp32", "golden": gold.get("fp32"), **ppl(c, W, stream, a.ctx, a.max_windows, dev)}))
        for spec in filter(None, a.rtn.split(",")):
            bits, grp = map(int, spec.split(":"))
            Wq = dict(W)
            for l in range(c["L"]):
                for p in PROJ:
                    name = f"model.layers.{l}.{'self_attn' if p in PROJ[:4] else 'mlp'}.{p}.weight"
                    Wq[name] = rtn_ref(W[name], bits, grp)
            r = ppl(c, Wq, stream, a.ctx, a.max_windows, dev)
            print(json.dumps({"what": f"torch_rtn_w{bits}g{grp}", "golden": gold.get(f"rtn_w{bits}g{grp}"), **r}))
    for path in a.containers:
        c, W = load_container(path)
        print(json.dumps({"what": os.path.basename(path), **ppl(c, W, stream, a.ctx, a.max_windows, dev)}))


if __name__ == "__main__":
    main()
