#!/usr/bin/python3
"""qat_step_torch.py - the PyTorch side of tests/bench/qat_vs_torch.sh.

The QAT training step of `upq qat` written in plain PyTorch (eager, fp32, autograd), on
the same model, token shards and teacher records: every decoder linear fake-quantized
by the seq quantizer (ParetoQ's stretched elastic grid, wq = s (clamp(round(w/s + z),
0, maxq) - z), s = D / 2^(bits-1), z = maxq/2, learnable D per (row, group), round as a
straight-through estimator, the clamp's gradient 0 outside: the rule of
docs/fakequant.md), embeddings, norms and head frozen; the generalized JSD (beta, divided
by beta (1 - beta) as upq's DL_JSD) against the top-K records with one tail bucket
(docs/distill-loss.md), mean over the counted positions (next token's loss_mask);
global gradient-norm clipping over latent weights and D together; AdamW (0.9, 0.999,
1e-8, no weight decay) with separate learning rates. D is initialised by upq's clipping
search (shrink factors 0.95^i, i < 48, least weight MSE; not timed).

Times STEPS steps (rows taken in order, wrapping) and prints one JSON line: tokens/s
over all steps (as `upq qat`'s final line counts them), per-step wall and process CPU
seconds (all threads), the losses. Not a test and not part of ctest.
"""
import argparse
import glob
import json
import math
import os
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_forward import Llama, check_golden, load_model  # noqa: E402

PROJ = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]


def seq_init(w, bits, gs):
    """upq's fq_init for seq: per (row, group) the D of the least weight MSE."""
    out, inn = w.shape
    wg = w.view(out, inn // gs, gs)
    amax = wg.abs().amax(-1)
    z = 0.5 * (2 ** bits - 1)
    best = torch.full_like(amax, float("inf"))
    bestd = torch.zeros_like(amax)
    for i in range(48):
        f = 0.95 ** i
        s = (f * amax / z).clamp_min(1e-6)  # quant_seq_params: outer level at f max|w|
        wq = s[..., None] * ((wg / s[..., None] + z).round().clamp(0, 2 ** bits - 1) - z)
        e = ((wg.double() - wq.double()) ** 2).sum(-1)
        better = e < best
        best = torch.where(better, e, best)
        bestd = torch.where(better, s * 2 ** (bits - 1), bestd)
    return bestd


def seq_fakequant(w, d, bits, gs):
    """wq of the seq quantizer with the straight-through round; gradients to w and d."""
    out, inn = w.shape
    maxq = 2 ** bits - 1
    z = 0.5 * maxq
    s = (d * 2.0 ** (1 - bits)).clamp_min(1e-6)[..., None]
    u = w.view(out, inn // gs, gs) / s + z
    u = u + (u.round() - u).detach()
    return (s * (u.clamp(0, maxq) - z)).view(out, inn)


class Student(Llama):
    """Llama whose decoder linears are fake-quantized from latent weights."""

    def __init__(self, cfg, w, bits, gs):
        super().__init__(cfg, w)
        self.bits, self.gs = bits, gs
        self.latent, self.delta = [], []
        for l in range(self.L):
            for p in PROJ:
                k = f"model.layers.{l}.{p}.weight"
                lw = w[k].clone().requires_grad_(True)
                self.latent.append(lw)
                self.delta.append(seq_init(lw.detach(), bits, gs).requires_grad_(True))
                w[k + ".latent_index"] = len(self.latent) - 1

    def forward(self, ids):
        wq = {}
        for l in range(self.L):
            for p in PROJ:
                k = f"model.layers.{l}.{p}.weight"
                i = self.w[k + ".latent_index"]
                wq[k] = seq_fakequant(self.latent[i], self.delta[i], self.bits, self.gs)
        saved = {k: self.w[k] for k in wq}
        self.w.update(wq)
        try:
            return super().forward(ids)
        finally:
            self.w.update(saved)


def jsd_topk(z, ids, tl, lse, log_tail, beta):
    """Per position DL_JSD of the student logits z (N, V) against top-K records plus the
    tail bucket (log_tail < 0; else 1 - sum of the K, floored at 1e-20)."""
    logp = F.log_softmax(z, dim=-1)
    lpk = logp.gather(1, ids)
    notk = torch.ones_like(z).scatter_(1, ids, 0.0)
    lp_tail = torch.log((logp.exp() * notk).sum(-1, keepdim=True))
    lq = tl - lse[:, None]
    q_tail = torch.where(log_tail < 0, log_tail.exp(), (1 - lq.exp().sum(-1)).clamp_min(1e-20))
    ls = torch.cat([lpk, lp_tail], 1)
    lt = torch.cat([lq, q_tail.log()[:, None]], 1)
    lm = torch.logaddexp(math.log(beta) + lt, math.log(1 - beta) + ls)
    f = beta * lt.exp() * (lt - lm) + (1 - beta) * ls.exp() * (ls - lm)
    return f.sum(-1) / (beta * (1 - beta))


def load_rows(data_dir, teach_dir):
    tok, mask, ids, lg, lse, lt = [], [], [], [], [], []
    for p in sorted(glob.glob(os.path.join(data_dir, "*.h5"))):
        with h5py.File(p, "r") as f:
            tok.append(f["tokens"][...])
            mask.append(f["loss_mask"][...])
        with h5py.File(os.path.join(teach_dir, os.path.basename(p)), "r") as f:
            mode = f.attrs["mode"]
            if (mode.decode() if isinstance(mode, bytes) else str(mode)) != "topk":
                raise SystemExit(f"{teach_dir}: topk records expected")
            ids.append(f["ids"][...])
            raw = f["logits"][...]  # fp16 stored as its uint16 bits (attribute fp16)
            lg.append((raw.view(np.float16) if raw.dtype == np.uint16 else raw).astype(np.float32))
            lse.append(f["lse"][...])
            lt.append(f["log_tail"][...])
    cat = np.concatenate
    return (torch.from_numpy(cat(tok).astype(np.int64)), torch.from_numpy(cat(mask)),
            torch.from_numpy(cat(ids).astype(np.int64)), torch.from_numpy(cat(lg)),
            torch.from_numpy(cat(lse).astype(np.float32)), torch.from_numpy(cat(lt).astype(np.float32)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--teacher", required=True)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--bits", type=int, default=2)
    ap.add_argument("--group", type=int, default=64)
    ap.add_argument("--beta", type=float, default=0.5)
    ap.add_argument("--lr", type=float, default=1e-5)
    ap.add_argument("--scale-lr", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-golden", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg, w = load_model(a.model)
    err = None
    if not a.no_golden:
        with torch.no_grad():
            err = check_golden(Llama(cfg, w), a.model)
    tok, mask, ids, lg, lse, lt = load_rows(a.data, a.teacher)
    R, T = tok.shape
    V = cfg["vocab_size"]
    m = Student(cfg, w, a.bits, a.group)
    opt = torch.optim.AdamW([{"params": m.latent, "lr": a.lr}, {"params": m.delta, "lr": a.scale_lr}],
                            betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    params = m.latent + m.delta
    losses, times, cpus = [], [], []
    c0 = time.process_time()
    t0 = time.perf_counter()
    for s in range(a.steps):
        ts, cs = time.perf_counter(), time.process_time()
        rows = torch.arange(s * a.batch, (s + 1) * a.batch) % R
        x = tok[rows]
        # position t predicts token t+1 when that token is a target (tfm_next_token_targets)
        cnt = torch.zeros(a.batch, T, dtype=torch.bool)
        cnt[:, :-1] = mask[rows][:, 1:] != 0
        sel = cnt.view(-1)
        z = m.forward(x).view(-1, V)[sel]
        n = int(sel.sum())
        loss = jsd_topk(z, ids[rows].view(-1, ids.shape[-1])[sel], lg[rows].view(-1, lg.shape[-1])[sel],
                        lse[rows].view(-1)[sel], lt[rows].view(-1)[sel], a.beta).sum() / max(n, 1)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(loss.item())
        times.append(time.perf_counter() - ts)
        cpus.append(time.process_time() - cs)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    print(json.dumps({"torch": torch.__version__, "threads": a.threads, "batch": a.batch, "seq_len": T,
                      "steps": a.steps, "tokens_per_s": a.steps * a.batch * T / wall, "wall_s": wall,
                      "cpu_s": cpu, "step_s": times, "step_cpu_s": cpus, "losses": losses, "golden_max_abs_err": err}))


if __name__ == "__main__":
    main()
