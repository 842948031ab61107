#!/usr/bin/python3
"""compare_forward.py DIR ROUNDS - the table of tests/bench/bench_forward.sh.

Reads DIR/upq.R.json (upq bench forward --json) and DIR/torch.R.json
(torch_forward.py) for R = 1..ROUNDS, and prints per thread count the median
over rounds of each side's per-round median tokens/s, their ratio, and the
per-round ratios (so the spread caused by a shared machine is visible).
Exit status 0 whether or not the 1.5x target is met: a benchmark, not a test.
"""
import json
import statistics
import sys


def main():
    tmp, rounds = sys.argv[1], int(sys.argv[2])
    U = [json.load(open(f"{tmp}/upq.{r}.json")) for r in range(1, rounds + 1)]
    P = [json.load(open(f"{tmp}/torch.{r}.json")) for r in range(1, rounds + 1)]
    print(f"  torch {P[0]['torch']} logits vs golden.h5: max abs err {P[0]['golden_max_abs_err']}")
    print(f"{'threads':>8} {'upq tok/s':>12} {'torch tok/s':>12} {'upq/torch':>10}   per-round ratios")
    ok = True
    for i, res in enumerate(U[0]["results"]):
        n = res["threads"]
        assert all(x["results"][i]["threads"] == n for x in U + P), "thread lists differ"
        u = [x["results"][i]["tokens_per_s"] for x in U]
        t = [x["results"][i]["tokens_per_s"] for x in P]
        r = statistics.median(u) / statistics.median(t)
        ok &= r >= 1.5
        per = " ".join(f"{a / b:.2f}" for a, b in zip(u, t))
        print(f"{n:>8} {statistics.median(u):>12.1f} {statistics.median(t):>12.1f} {r:>9.2f}x   {per}")
    print("target upq >= 1.5x torch: " + ("met" if ok else "NOT met") + " at every thread count")


if __name__ == "__main__":
    main()
