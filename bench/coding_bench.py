"""Accuracy and speed of the barrier coder (bot/coding.py).

Run: .venv/bin/python bench/coding_bench.py [--n 100000] [--sets dev holdout] [--errors SET]

Prints, for every labelled set in tests/data/coding/ (dev, holdout, independent, and sealed when
that file exists), precision/recall/F1 per code with macro and micro averages; then cross-set
figures; then throughput on ~100,000 answers sampled with replacement from the seen sets, which
is the largest digest the bot is expected to code.

Which sets the shipped codebook was tuned on: dev (the original cues), then dev, holdout and
independent (the broadening of the cue families). So the per-set figures for those three are
*seen* figures. Only sealed.jsonl is untouched.

Cross-set figures ("tune on A+B, measure on C"): a codebook written by someone who had only read
A and B would not contain the cues that fire correctly only on C. The bench approximates that
mechanically: it keeps only the cues and topics with at least one correct, non-negated hit on
A+B (the generic lexicon of negators and problem markers is kept whole) and scores C. This is
an upper bound on true held-out performance (the cue writer had read C, and a cue supported on
A+B may still have been worded with C in mind), but it does catch cues pasted from one set.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a plain script from the repo without installing

from bot.coding import Codebook, code_text, explain, load_codebook  # noqa: E402

DATA = ROOT / "tests" / "data" / "coding"
# Reported in this order when the file exists. sealed is the final, untouched test set.
SETS = ("dev", "holdout", "independent", "sealed")
SEEN = ("dev", "holdout", "independent")
TUNED_ON = {
    "dev": "seen: cues written on it",
    "holdout": "seen: errors read since 2nd round",
    "independent": "seen: cue families broadened on its errors",
    "sealed": "never seen",
}

Examples = list[tuple[str, frozenset[str]]]


def load_examples(name: str) -> Examples:
    rows = []
    with (DATA / f"{name}.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                obj = json.loads(line)
                rows.append((obj["text"], frozenset(obj["codes"])))
    return rows


def score(
    examples: Examples, codebook: Codebook
) -> tuple[dict[str, tuple[float, float, float, int]], dict[str, float]]:
    """Per-code (precision, recall, F1, support) and macro/micro averages."""
    tp = dict.fromkeys((c.code for c in codebook), 0)
    fp, fn = dict(tp), dict(tp)
    exact = 0
    for text, gold in examples:
        pred = set(code_text(text, codebook).codes)
        exact += pred == gold
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
        "exact_match": exact / len(examples),
    }
    return per, avg


def report(name: str, examples: Examples, codebook: Codebook) -> dict[str, float]:
    per, avg = score(examples, codebook)
    print(f"\n== {name}: {len(examples)} answers ({TUNED_ON.get(name, '?')}) ==")
    print(f"{'code':28} {'P':>6} {'R':>6} {'F1':>6} {'n':>4}")
    for c, (p, r, f, n) in per.items():
        print(f"{c:28} {p:6.3f} {r:6.3f} {f:6.3f} {n:4d}")
    print(f"{'macro':28} {avg['macro_p']:6.3f} {avg['macro_r']:6.3f} {avg['macro_f1']:6.3f}")
    print(f"{'micro':28} {avg['micro_p']:6.3f} {avg['micro_r']:6.3f} {avg['micro_f1']:6.3f}")
    print(f"exact-match (all codes right): {avg['exact_match']:.3f}")
    return avg


def supported_cues(examples: Examples, codebook: Codebook) -> set[tuple[str, str]]:
    """(code, cue) pairs with at least one correct, non-negated hit on ``examples``."""
    keep: set[tuple[str, str]] = set()
    for text, gold in examples:
        for ev in code_text(text, codebook).evidence:
            if not ev.negated and ev.code in gold and ev.cue is not None:
                keep.add((ev.code, ev.cue))
    return keep


def pruned(codebook: Codebook, keep: set[tuple[str, str]]) -> Codebook:
    """The codebook with only the cues and topics in ``keep`` (lexicons untouched)."""
    codes = tuple(
        replace(
            c,
            cues=tuple(q for q in c.cues if (c.code, q) in keep),
            topics=tuple(t for t in c.topics if (c.code, t) in keep),
        )
        for c in codebook.codes
    )
    return Codebook(codes=codes, source=codebook.source, lexicon=dict(codebook.lexicon))


def cross_set(sets: dict[str, Examples], codebook: Codebook) -> None:
    names = [n for n in SEEN if n in sets]
    print("\n== cross-set: cues kept only if supported on the tuning sets, scored on the other ==")
    print(f"{'tuned on':28} {'measured on':12} {'cues kept':>9} {'macro-F1':>8} {'micro-F1':>8}")
    total = sum(len(c.cues) + len(c.topics) for c in codebook.codes)
    for held in names:
        tune = [n for n in names if n != held]
        keep = supported_cues([x for n in tune for x in sets[n]], codebook)
        cb = pruned(codebook, keep)
        _, avg = score(sets[held], cb)
        print(
            f"{' + '.join(tune):28} {held:12} {len(keep):4d}/{total:<4d} "
            f"{avg['macro_f1']:8.3f} {avg['micro_f1']:8.3f}"
        )


def errors(examples: Examples, codebook: Codebook) -> None:
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
    ap.add_argument(
        "--sets", nargs="+", choices=SETS, default=None, help="sets to report (default: all)"
    )
    ap.add_argument("--errors", choices=SEEN, help="list misclassified answers of a seen set")
    ap.add_argument("--codebook", type=Path, default=None, help="codebook file (default: shipped)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    codebook = load_codebook(args.codebook)
    print(
        f"codebook: {codebook.source} ({len(codebook)} codes, "
        f"loaded and compiled in {1000 * (time.perf_counter() - t0):.1f} ms)"
    )
    if args.errors:
        errors(load_examples(args.errors), codebook)
        return
    wanted = args.sets or list(SETS)
    sets = {n: load_examples(n) for n in wanted if (DATA / f"{n}.jsonl").is_file()}
    for name, examples in sets.items():
        report(name, examples, codebook)
    cross_set(sets, codebook)
    texts = [t for n in SEEN if n in sets for t, _ in sets[n]]
    rate = throughput(texts, codebook, args.n)
    print(f"\nthroughput: {rate:,.0f} answers/s over {args.n:,} answers on one core")


if __name__ == "__main__":
    main()
