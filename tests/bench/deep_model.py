#!/usr/bin/env python3
"""deep_model.py - a deeper copy of a HuggingFace llama folder for the PTQ scaling benchmark
(tests/bench/ptq_scaling_all.sh): SRC's config with num_hidden_layers = N and layer l's
tensors copied from SRC's layer l % L (embeddings, final norm and lm_head as in SRC), the
tokenizer files copied. Python standard library only (safetensors is a JSON header and raw
bytes), so it runs where the benchmark runs. The weights repeat, so the model is for
timing, not for quality.

usage: deep_model.py SRC_DIR OUT_DIR N
"""
import json
import os
import re
import shutil
import struct
import sys


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(os.path.join(src, "config.json")) as f:
        cfg = json.load(f)
    L = cfg["num_hidden_layers"]
    with open(os.path.join(src, "model.safetensors"), "rb") as f:
        hlen = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(hlen))
        base = 8 + hlen
        data = f.read()
    meta = header.pop("__metadata__", None)
    names = []  # (new name, source name)
    for name in header:
        m = re.match(r"model\.layers\.(\d+)\.(.*)$", name)
        if not m:
            names.append((name, name))
    for l in range(n):
        for name in header:
            m = re.match(r"model\.layers\.(\d+)\.(.*)$", name)
            if m and int(m.group(1)) == l % L:
                names.append(("model.layers.%d.%s" % (l, m.group(2)), name))
    new_header, chunks, off = {}, [], 0
    for new, old in names:
        t = header[old]
        a, b = t["data_offsets"]
        chunks.append(data[a:b])
        new_header[new] = {"dtype": t["dtype"], "shape": t["shape"], "data_offsets": [off, off + b - a]}
        off += b - a
    if meta is not None:
        new_header["__metadata__"] = meta
    hb = json.dumps(new_header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    with open(os.path.join(tmp, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for c in chunks:
            f.write(c)
    cfg["num_hidden_layers"] = n
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    for name in os.listdir(src):
        if name.startswith("tokenizer") or name == "generation_config.json":
            shutil.copy(os.path.join(src, name), tmp)
    shutil.rmtree(out, ignore_errors=True)
    os.rename(tmp, out)
    print("deep_model.py: %s, %d blocks (copies of %s's %d), %d tensors, %.1f MB" %
          (out, n, src, L, len(names), (8 + len(hb) + off) / 1e6))


if __name__ == "__main__":
    main()
