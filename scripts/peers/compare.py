#!/usr/bin/python3
"""The table of scripts/bench_peers.sh: ellm against the eager reference, round by round.

Usage: compare.py DIR   (DIR holds round-N.ellm.jsonl and round-N.reference.jsonl)

A figure is matched across the two sides by (bench name, metric, model or student, dtype,
batch). Each side's value is the median over rounds; the ratio column is the ratio of those
medians and the range of the per-round ratios (both sides measured in the same minute).
A target is "met" when every round's ratio reaches it, "median" when only the ratio of
medians does.
"""
import glob
import json
import os
import re
import statistics
import sys

# (bench name, metric, predicate on the config) → (target ratio ellm / reference, issue)
TARGETS = [
    ("decoder_generate", "throughput", lambda c: True, 2.0, "#5: generate ≥ 2× HF"),
    ("decoder_train", "throughput", lambda c: c.get("world_size", 1) == 1, 1.2, "#6: train ≥ 1.2× HF"),
    ("student", "train_throughput", lambda c: True, 1.3, "#8: train ≥ 1.3× HF"),
    ("student", "inference_throughput", lambda c: c.get("batch") == 1, 2.0, "#8: b1 latency ≤ 0.5× HF"),
]


def key(line):
    c = line["config"]
    return (line["name"], line["metric"], c.get("model", c.get("student", "")), c.get("dtype", ""), c.get("batch", ""))


def load(path):
    """The figures of one side and round; a key seen twice (`ellm bench forward` measures the
    fp32 peak again for its share-of-peak) keeps its first figure, the one timed next to the
    other side's."""
    out = {}
    with open(path) as f:
        for line in (json.loads(s) for s in f if s.strip().startswith("{")):
            out.setdefault(key(line), line)
    return out


def fmt(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: compare.py DIR")
    d = sys.argv[1]
    rounds = sorted(int(re.search(r"round-(\d+)\.ellm", p).group(1)) for p in glob.glob(os.path.join(d, "round-*.ellm.jsonl")))
    if not rounds:
        sys.exit(f"compare.py: no round-N.ellm.jsonl in {d}")
    sides = {r: (load(os.path.join(d, f"round-{r}.ellm.jsonl")), load(os.path.join(d, f"round-{r}.reference.jsonl")))
             for r in rounds}
    # Each side's default training precision: ellm's train.precision "auto" is bf16 on a CPU with native
    # bf16 (AVX512-BF16, AMX); transformers trains and infers in fp32 unless told otherwise.
    for r in rounds:
        e, ref = sides[r]
        for k in list(e):
            if k[:2] == ("student", "train_throughput") and k[3] == "bf16" and (k[:3] + ("fp32", k[4])) in ref:
                e[k[:3] + ("bf16 vs reference fp32", k[4])] = e[k]
                ref[k[:3] + ("bf16 vs reference fp32", k[4])] = ref[k[:3] + ("fp32", k[4])]
    keys = [k for k in sides[rounds[0]][0] if k in sides[rounds[0]][1]]
    print(f"ellm vs PyTorch eager (scripts/peers/eager_reference.py), {len(rounds)} rounds, 2 threads\n")
    print("| figure | unit | ellm | reference | ratio (per round) | target | met |")
    print("|---|---|---|---|---|---|---|")
    for k in keys:
        pairs = [(sides[r][0][k], sides[r][1][k]) for r in rounds if k in sides[r][0] and k in sides[r][1]]
        e = statistics.median(p[0]["value"] for p in pairs)
        ref = statistics.median(p[1]["value"] for p in pairs)
        per_round = [p[0]["value"] / p[1]["value"] for p in pairs]
        name, metric, what, dtype, batch = k
        label = " ".join(str(x) for x in (name, metric.replace("_throughput", ""), what, dtype) if x)
        if batch != "":
            label += f" b{batch}"
        target, met = "", ""
        for t_name, t_metric, pred, ratio, issue in TARGETS:
            if name == t_name and metric == t_metric and pred(pairs[0][0]["config"]):
                target = f"≥ {ratio}× ({issue})"
                met = "yes" if min(per_round) >= ratio else ("median" if e / ref >= ratio else "no")
        if name == "decoder_forward" and "fraction_of_fp32_peak" in pairs[0][0]:
            fe = statistics.median(p[0]["fraction_of_fp32_peak"] for p in pairs)
            fr = statistics.median(p[1]["fraction_of_fp32_peak"] for p in pairs)
            label += f" (share of fp32 peak: ellm {fe:.0%}, reference {fr:.0%})"
            if what == "qwen2-0.5b":
                target, met = "≥ 70% of peak (#5)", "yes" if fe >= 0.70 else "no"
        lo, hi = min(per_round), max(per_round)
        print(f"| {label} | {pairs[0][0]['unit']} | {fmt(e)} | {fmt(ref)} | {e / ref:.2f}× ({lo:.2f}–{hi:.2f}) | {target} | {met} |")


if __name__ == "__main__":
    main()
