#!/usr/bin/env python3
"""export_check.py - `upq export` against transformers (issue #13), run by
tests/bench/export_check_device.sh on a folder made by tests/bench/export_check_prep.sh:

  python3 tests/bench/export_check.py DIR [--dequant-only]

DIR holds upq.json, ppl_ids.i32, logits_ids.txt, logits_{w4,w2}.f32 and the unpacked
exports hf_{w4,w2}/ and gptq_{w4,w2}/.

(a) ppl: each hf export loaded by AutoModelForCausalLM (fp16 weights, run in float32), the
    upq ppl protocol (floor(n/512) non-overlapping windows of the ids, no BOS added, tokens
    1..511 of each window scored, ppl = exp(mean NLL)); compared with `upq ppl --dequant` of
    the container: PASS when |ppl_hf - ppl_upq| / ppl_upq <= 1e-3.
(b) gptq logits: each gptq export loaded through transformers' own GPTQ path
    (from_pretrained with its quantization_config: needs optimum + gptqmodel); if that is not
    importable or fails, the export is dequantized by dequant_gptq() below, which follows
    the published GPTQ layout (qweight int32 packed along the input dimension, qzeros packed
    along the output dimension, z stored as is for checkpoint_format gptq_v2 and as z - 1 for
    gptq, w = scales[g_idx[k], n] * (q - z)) with numpy and nothing of upq's, and run as a
    plain float32 LlamaForCausalLM. Logits on logits_ids.txt against `upq logits --dequant`:
    PASS when max|d| / max|ref| <= 1e-3.
--dequant-only: only the numpy dequantization of (b), compared with the hf export's fp16
weights (no torch needed; max |w_gptq - w_hf| <= 2^-10 max|w_hf| per layer). Prints PASS/FAIL
lines; exit 0 when every check passed."""
import json
import math
import os
import struct
import sys

import numpy as np

PPL_TOL = 1e-3
LOGIT_TOL = 1e-3
W_TOL = 2.0 ** -10
ST_DTYPES = {"F16": np.float16, "F32": np.float32, "I32": np.int32, "BF16": None, "I64": np.int64}


def read_safetensors(path):
    """name -> numpy array, from the safetensors layout (8-byte header length, JSON header,
    data offsets relative to the end of the header); no safetensors package needed."""
    with open(path, "rb") as f:
        blob = f.read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + hlen])
    base = 8 + hlen
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        dt = ST_DTYPES[e["dtype"]]
        a, b = e["data_offsets"]
        out[name] = np.frombuffer(blob, dtype=dt, count=(b - a) // np.dtype(dt).itemsize, offset=base + a).reshape(
            e["shape"]
        )
    return out


def unpack_rows(x, bits):
    """(R, C) int32, 32/bits codes per element along R (element [r][c] holds rows r*P..r*P+P-1,
    code j at bits j*bits) -> (R*P, C)."""
    p = 32 // bits
    u = x.astype(np.uint32)
    v = np.stack([(u >> (bits * j)) & ((1 << bits) - 1) for j in range(p)], axis=1)  # (R, P, C)
    return v.reshape(x.shape[0] * p, x.shape[1]).astype(np.int64)


def unpack_cols(x, bits):
    """(R, C) int32 packed along C -> (R, C*P)."""
    p = 32 // bits
    u = x.astype(np.uint32)
    v = np.stack([(u >> (bits * j)) & ((1 << bits) - 1) for j in range(p)], axis=2)  # (R, C, P)
    return v.reshape(x.shape[0], x.shape[1] * p).astype(np.int64)


def dequant_gptq(gdir):
    """The GPTQ checkpoint as a float32 state dict (linears (N, K)), per the published format."""
    cfg = json.load(open(os.path.join(gdir, "config.json")))
    qc = cfg["quantization_config"]
    bits, fmt = qc["bits"], qc.get("checkpoint_format", "gptq")
    assert qc.get("desc_act") in (False, None), "desc_act checkpoints are not handled here"
    t = read_safetensors(os.path.join(gdir, "model.safetensors"))
    sd = {}
    for name, a in t.items():
        if name.endswith((".qweight", ".qzeros", ".scales", ".g_idx")):
            continue
        sd[name] = a.astype(np.float32)
    for qw in [k for k in t if k.endswith(".qweight")]:
        base = qw[: -len(".qweight")]
        q = unpack_rows(t[qw], bits)                       # (K, N)
        z = unpack_cols(t[base + ".qzeros"], bits)          # (G, N)
        if fmt == "gptq":
            z = z + 1                                        # v1 stores z - 1
        s = t[base + ".scales"].astype(np.float32)           # (G, N)
        g = t[base + ".g_idx"].astype(np.int64)              # (K)
        w = s[g] * (q - z[g]).astype(np.float32)             # (K, N)
        sd[base + ".weight"] = np.ascontiguousarray(w.T)
    return cfg, sd, bits, fmt


def dequant_only(d):
    ok = True
    for tag in ("w4", "w2"):
        _, sd, bits, fmt = dequant_gptq(os.path.join(d, "gptq_" + tag))
        h = read_safetensors(os.path.join(d, "hf_" + tag, "model.safetensors"))
        worst, n = 0.0, 0
        for name, w in sd.items():
            ref = h[name].astype(np.float32)
            assert ref.shape == w.shape, (name, ref.shape, w.shape)
            diff = float(np.abs(w - ref).max())
            bound = W_TOL * float(np.abs(ref).max())
            worst = max(worst, diff / bound if bound > 0 else (0.0 if diff == 0 else math.inf))
            n += 1
        good = worst <= 1.0
        ok &= good
        print(f"{'PASS' if good else 'FAIL'} dequant {tag}: gptq ({fmt}, {bits} bits) dequantized by numpy vs the hf "
              f"export's fp16 weights, {n} tensors, worst max|d| / (2^-10 max|w|) = {worst:.3f}")
    return ok


def load_ids(path):
    return np.fromfile(path, dtype="<i4").astype(np.int64)


def hf_ppl(model, ids, ctx, torch):
    n = len(ids) // ctx
    nll, cnt = 0.0, 0
    with torch.no_grad():
        for w in range(n):
            x = torch.from_numpy(ids[w * ctx : (w + 1) * ctx]).view(1, ctx)
            lg = model(x).logits[0].double()
            lp = torch.log_softmax(lg[:-1], dim=-1)
            nll -= lp.gather(1, x[0, 1:].view(-1, 1)).sum().item()
            cnt += ctx - 1
    return math.exp(nll / cnt), n, cnt


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        print(__doc__)
        return 1
    d = args[0]
    if "--dequant-only" in args:
        return 0 if dequant_only(d) else 1
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    torch.set_num_threads(os.cpu_count() or 1)
    dt = {"dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype": torch.float32}
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, numpy {np.__version__}")
    up = json.load(open(os.path.join(d, "upq.json")))
    ids = load_ids(os.path.join(d, "ppl_ids.i32"))
    ctx, V = up["ctx"], up["vocab"]
    ok = dequant_only(d)
    # (a) perplexity of the hf exports
    for tag in ("w4", "w2"):
        m = AutoModelForCausalLM.from_pretrained(os.path.join(d, "hf_" + tag), **dt).eval()
        p, nw, cnt = hf_ppl(m, ids, ctx, torch)
        ref = up[tag]["ppl_dequant"]["ppl"]
        rel = abs(p - ref) / ref
        good = rel <= PPL_TOL
        ok &= good
        print(f"{'PASS' if good else 'FAIL'} ppl hf_{tag}: transformers {p:.6f} vs upq ppl --dequant {ref:.6f}: rel "
              f"{rel:.2e} (<= {PPL_TOL:g}); {nw} windows of {ctx}, {cnt} predicted; upq packed "
              f"{up[tag]['ppl_packed']['ppl']:.6f}, upq on the hf export {up[tag]['ppl_upq_on_hf_export']['ppl']:.6f}")
        del m
    # (b) logits of the gptq exports
    lid = torch.tensor([int(x) for x in open(os.path.join(d, "logits_ids.txt")).read().split(",")]).view(1, -1)
    for tag in ("w4", "w2"):
        gdir = os.path.join(d, "gptq_" + tag)
        ref = np.fromfile(os.path.join(d, f"logits_{tag}.f32"), dtype="<f4").reshape(-1, V)
        how, got = None, None
        try:
            m = AutoModelForCausalLM.from_pretrained(gdir, device_map="cpu", **dt).eval()
            with torch.no_grad():
                got = m(lid).logits[0].float().numpy()
            how = "transformers GPTQ path (" + type(m.model.layers[0].self_attn.q_proj).__name__ + ")"
            del m
        except Exception as e:  # optimum / gptqmodel missing, or no kernel for this config
            print(f"note: transformers' GPTQ path failed for gptq_{tag}: {type(e).__name__}: {str(e)[:200]}")
        if got is None:
            cfg, sd, bits, fmt = dequant_gptq(gdir)
            cfg.pop("quantization_config")
            m = LlamaForCausalLM(LlamaConfig.from_dict(cfg)).float().eval()
            missing, unexpected = m.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=False)
            missing = [k for k in missing if "rotary" not in k]
            assert not missing and not unexpected, (missing, unexpected)
            with torch.no_grad():
                got = m(lid).logits[0].float().numpy()
            how = f"numpy dequantization of the published format ({fmt}, {bits} bits), float32 LlamaForCausalLM"
            del m
        rel = float(np.abs(got - ref).max() / np.abs(ref).max())
        agree = float((got.argmax(-1) == ref.argmax(-1)).mean())
        good = rel <= LOGIT_TOL
        ok &= good
        print(f"{'PASS' if good else 'FAIL'} logits gptq_{tag} via {how}: max|d| / max|ref| {rel:.2e} (<= "
              f"{LOGIT_TOL:g}) vs upq logits --dequant, {ref.shape[0]} tokens, argmax agreement {agree:.3f}")
    print("export_check: " + ("all PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
