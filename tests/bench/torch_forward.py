#!/usr/bin/python3
"""torch_forward.py - the PyTorch side of tests/bench/bench_forward.sh.

A plain-torch LLaMA forward (eager attention, fp32, no transformers: Debian 12 has
no transformers package) built from a HF folder's config.json and
model.safetensors (parsed here: no safetensors package either). It first checks
its logits against the folder's golden.h5 (written by transformers) so that the
benchmark compares the same computation, then times a prefill of B x T tokens at
each thread count (torch.set_num_threads) and prints one JSON line.

Not a test with a time limit and not part of ctest.
"""
import argparse
import json
import math
import os
import statistics
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def load_safetensors(path):
    """Returns {name: float32 torch tensor} from one .safetensors file."""
    with open(path, "rb") as f:
        (hlen,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(hlen))
        base = 8 + hlen
        raw = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        buf = raw[base + a:base + b]
        dt = info["dtype"]
        if dt == "F32":
            arr = buf.view(np.float32).astype(np.float32)
        elif dt == "F16":
            arr = buf.view(np.float16).astype(np.float32)
        elif dt == "BF16":
            arr = (buf.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            raise SystemExit(f"{path}: tensor {name}: dtype {dt} not supported")
        out[name] = torch.from_numpy(arr.reshape(info["shape"]).copy())
    return out


def load_model(folder):
    with open(os.path.join(folder, "config.json")) as f:
        cfg = json.load(f)
    idx = os.path.join(folder, "model.safetensors.index.json")
    w = {}
    if os.path.exists(idx):
        with open(idx) as f:
            for shard in sorted(set(json.load(f)["weight_map"].values())):
                w.update(load_safetensors(os.path.join(folder, shard)))
    else:
        w = load_safetensors(os.path.join(folder, "model.safetensors"))
    if "lm_head.weight" not in w:
        w["lm_head.weight"] = w["model.embed_tokens.weight"]
    rs = cfg.get("rope_scaling") or {}
    if rs and rs.get("rope_type", rs.get("type", "default")) not in ("default", None):
        raise SystemExit(f"{folder}: rope_scaling {rs} not supported by this reference")
    return cfg, w


class Llama:
    """Eager LLaMA forward, as transformers' LlamaForCausalLM with attn_implementation=eager."""

    def __init__(self, cfg, w):
        self.w = w
        self.L = cfg["num_hidden_layers"]
        self.H = cfg["num_attention_heads"]
        self.KV = cfg.get("num_key_value_heads", self.H)
        self.C = cfg["hidden_size"]
        self.D = cfg.get("head_dim") or self.C // self.H
        self.eps = cfg["rms_norm_eps"]
        self.theta = cfg.get("rope_theta", 10000.0)
        self.bias = "model.layers.0.self_attn.q_proj.bias" in w

    def rmsnorm(self, x, weight):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * weight

    def rope(self, T):
        inv = 1.0 / (self.theta ** (torch.arange(0, self.D, 2, dtype=torch.int64).float() / self.D))
        fr = torch.outer(torch.arange(T, dtype=torch.float32), inv)
        emb = torch.cat((fr, fr), dim=-1)
        return emb.cos(), emb.sin()

    @staticmethod
    def rotate_half(x):
        h = x.shape[-1] // 2
        return torch.cat((-x[..., h:], x[..., :h]), dim=-1)

    def forward(self, ids):
        B, T = ids.shape
        w, H, KV, D = self.w, self.H, self.KV, self.D
        x = F.embedding(ids, w["model.embed_tokens.weight"])
        cos, sin = self.rope(T)
        mask = torch.full((T, T), float("-inf")).triu(1)
        for l in range(self.L):
            p = f"model.layers.{l}."
            h = self.rmsnorm(x, w[p + "input_layernorm.weight"])

            def proj(n):
                return F.linear(h, w[p + f"self_attn.{n}.weight"],
                                w.get(p + f"self_attn.{n}.bias") if self.bias else None)
            q = proj("q_proj").view(B, T, H, D).transpose(1, 2)
            k = proj("k_proj").view(B, T, KV, D).transpose(1, 2)
            v = proj("v_proj").view(B, T, KV, D).transpose(1, 2)
            q = q * cos + self.rotate_half(q) * sin
            k = k * cos + self.rotate_half(k) * sin
            if KV != H:
                k = k.repeat_interleave(H // KV, dim=1)
                v = v.repeat_interleave(H // KV, dim=1)
            att = torch.matmul(q, k.transpose(2, 3)) / math.sqrt(D) + mask
            att = torch.softmax(att, dim=-1, dtype=torch.float32)
            y = torch.matmul(att, v).transpose(1, 2).reshape(B, T, H * D)
            x = x + F.linear(y, w[p + "self_attn.o_proj.weight"])
            h = self.rmsnorm(x, w[p + "post_attention_layernorm.weight"])
            g = F.linear(h, w[p + "mlp.gate_proj.weight"])
            u = F.linear(h, w[p + "mlp.up_proj.weight"])
            x = x + F.linear(F.silu(g) * u, w[p + "mlp.down_proj.weight"])
        x = self.rmsnorm(x, w["model.norm.weight"])
        return F.linear(x, w["lm_head.weight"])


def check_golden(model, folder):
    """Max |logit - golden| over golden.h5's input_ids; exits 1 when it is too large."""
    import h5py

    path = os.path.join(folder, "golden.h5")
    if not os.path.exists(path):
        return None
    with h5py.File(path, "r") as f:
        ids = torch.from_numpy(f["input_ids"][...].astype(np.int64)).view(1, -1)
        ref = torch.from_numpy(f["logits"][...].astype(np.float32))
    with torch.inference_mode():
        got = model.forward(ids)[0]
    err = (got - ref).abs().max().item()
    scale = ref.abs().max().item()
    if not err <= 1e-4 * max(1.0, scale):
        print(f"torch_forward.py: logits differ from {path}: max abs {err:.3g} (scale {scale:.3g})",
              file=sys.stderr)
        sys.exit(1)
    return err


def bench(model, V, B, T, threads, repeats, warmup, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, V, (B, T), generator=g)
    out = []
    for n in threads:
        torch.set_num_threads(n)
        times = []
        with torch.inference_mode():
            for i in range(warmup + repeats):
                t0 = time.perf_counter()
                model.forward(ids)
                if i >= warmup:
                    times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        out.append({"threads": n, "tokens_per_s": B * T / med, "median_s": med,
                    "min_s": min(times), "max_s": max(times)})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="HF folder (config.json, model.safetensors)")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", default="1")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-golden", action="store_true", help="skip the golden.h5 check")
    a = ap.parse_args()
    torch.set_grad_enabled(False)
    cfg, w = load_model(a.model)
    model = Llama(cfg, w)
    err = None if a.no_golden else check_golden(model, a.model)
    threads = [int(t) for t in a.threads.split(",")]
    res = bench(model, cfg["vocab_size"], a.batch, a.tokens, threads, a.repeats, a.warmup, a.seed)
    print(json.dumps({"model": a.model, "torch": torch.__version__, "batch": a.batch,
                      "tokens": a.tokens, "repeats": a.repeats, "golden_max_abs_err": err,
                      "results": res}))


if __name__ == "__main__":
    main()
