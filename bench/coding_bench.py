"""Accuracy and speed of the barrier coder (bot/coding.py).

Run: .venv/bin/python bench/coding_bench.py [--n 100000] [--errors dev]

Prints precision/recall/F1 per code with macro and micro averages for the dev set (the one cues
are tuned on) and the holdout set (never tuned on), then throughput on ~100,000 answers sampled
with replacement from both sets, which is the largest digest the bot is expected to code.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a plain script from the repo without installing

from bot.coding import Codebook, code_text, explain, load_codebook  # noqa: E402

DATA = ROOT / "tests" / "data" / "coding"


def load_examples(name: str) -> list[tuple[str, frozenset[str]]]:
    rows = []
    with (DATA / f"{name}.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                obj = json.loads(line)
                rows.append((obj["text"], frozenset(obj["codes"])))
    return rows


def score(
    examples: list[tuple[str, frozenset[str]]], codebook: Codebook
) -> tuple[dict[str, tuple[float, float, float, int]], dict[str, float]]:
    """Per-code (precision, recall, F1, support) and macro/micro averages."""
    tp = dict.fromkeys((c.code for c in codebook), 0)
    fp, fn = dict(tp), dict(tp)
    for text, gold in examples:
        pred = set(code_text(text, codebook).codes)
        for c in tp:
            if c in pred and c in gold:
                tp[c] += 1
            elif c in pred:
                fp[c] += 1
            elif c in gold:
                fn[c] += 1
    per: dict[str, tuple[float, float, float, int]] = {}
    for c in tp:
        p = tp[c] / (tp[c] + fp[c]) if tp[c] + fp[c] else 0.0
        r = tp[c] / (tp[c] + fn[c]) if tp[c] + fn[c] else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        per[c] = (p, r, f, tp[c] + fn[c])
    # Macro over codes that occur in the gold labels: a code with no examples has no F1.
    present = [c for c in per if per[c][3] > 0]
    stp, sfp, sfn = sum(tp.values()), sum(fp.values()), sum(fn.values())
    mp = stp / (stp + sfp) if stp + sfp else 0.0
    mr = stp / (stp + sfn) if stp + sfn else 0.0
    avg = {
        "macro_p": sum(per[c][0] for c in present) / len(present),
        "macro_r": sum(per[c][1] for c in present) / len(present),
        "macro_f1": sum(per[c][2] for c in present) / len(present),
        "micro_p": mp,
        "micro_r": mr,
        "micro_f1": 2 * mp * mr / (mp + mr) if mp + mr else 0.0,
        "exact_match": sum(1 for t, g in examples if set(code_text(t, codebook).codes) == g)
        / len(examples),
    }
    return per, avg


def report(name: str, examples: list[tuple[str, frozenset[str]]], codebook: Codebook) -> float:
    per, avg = score(examples, codebook)
    print(f"\n== {name}: {len(examples)} answers ==")
    print(f"{'code':28} {'P':>6} {'R':>6} {'F1':>6} {'n':>4}")
    for c, (p, r, f, n) in per.items():
        print(f"{c:28} {p:6.3f} {r:6.3f} {f:6.3f} {n:4d}")
    print(f"{'macro':28} {avg['macro_p']:6.3f} {avg['macro_r']:6.3f} {avg['macro_f1']:6.3f}")
    print(f"{'micro':28} {avg['micro_p']:6.3f} {avg['micro_r']:6.3f} {avg['micro_f1']:6.3f}")
    print(f"exact-match (all codes right): {avg['exact_match']:.3f}")
    return avg["macro_f1"]


def errors(examples: list[tuple[str, frozenset[str]]], codebook: Codebook) -> None:
    for text, gold in examples:
        coding = code_text(text, codebook)
        if set(coding.codes) != gold:
            print(f"- {text!r}\n  gold={sorted(gold)} got={list(coding.codes)}")
            print(f"  {explain(coding)}")


def throughput(examples: list[str], codebook: Codebook, n: int) -> float:
    rng = random.Random(0)
    sample = [rng.choice(examples) for _ in range(n)]
    start = time.perf_counter()
    for text in sample:
        code_text(text, codebook)
    return n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="answers for the throughput run")
    ap.add_argument("--errors", choices=["dev", "holdout"], help="list misclassified answers")
    ap.add_argument("--codebook", type=Path, default=None, help="codebook file (default: shipped)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    codebook = load_codebook(args.codebook)
    print(
        f"codebook: {codebook.source} ({len(codebook)} codes, "
        f"loaded and compiled in {1000 * (time.perf_counter() - t0):.1f} ms)"
    )
    dev, holdout = load_examples("dev"), load_examples("holdout")
    if args.errors:
        errors(dev if args.errors == "dev" else holdout, codebook)
        return
    report("dev (cues tuned on this set)", dev, codebook)
    report("holdout (never tuned on)", holdout, codebook)
    texts = [t for t, _ in dev + holdout]
    rate = throughput(texts, codebook, args.n)
    print(f"\nthroughput: {rate:,.0f} answers/s over {args.n:,} answers on one core")


if __name__ == "__main__":
    main()
