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

from bot.coding import (  # noqa: E402
    Codebook,
    _normalise,
    code_text,
    code_texts,
    explain,
    load_codebook,
    rule_code,
    with_model,
)
from bot.coding_model import tokens_of  # noqa: E402

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
    preds = [c.codes for c in code_texts([t for t, _ in examples], codebook)]
    return score_preds(examples, preds, [c.code for c in codebook])


def score_preds(
    examples: Examples, preds: list, codes: list[str]
) -> tuple[dict[str, tuple[float, float, float, int]], dict[str, float]]:
    tp = dict.fromkeys(codes, 0)
    fp, fn = dict(tp), dict(tp)
    exact = 0
    for (_text, gold), pred_codes in zip(examples, preds, strict=True):
        pred = set(pred_codes)
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
        for ev in rule_code(text, codebook).evidence:
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


THRESHOLDS = tuple(round(0.3 + 0.05 * i, 2) for i in range(11))  # 0.30 .. 0.80


def _model_preds(cb: Codebook, texts: list[str], thresholds) -> dict[float, list[set[str]]]:  # type: ignore[no-untyped-def]
    """Model-only codes at each threshold (no rules, no veto)."""
    model = cb.model
    assert model is not None
    proba = model.proba([[t[2] for t in tokens_of(_normalise(x))] for x in texts])
    return {
        th: [{model.codes[j] for j in (row >= th).nonzero()[0]} for row in proba]
        for th in thresholds
    }


def _combined(cb: Codebook, texts: list[str], th: float) -> list[tuple[str, ...]]:
    assert cb.model is not None
    cb.model.threshold = th
    return [c.codes for c in code_texts(texts, cb)]


def split_rules(train: Examples, codebook: Codebook) -> Codebook:
    """Rules as someone who had only read ``train`` would have written them (see docstring)."""
    rules = pruned(codebook, supported_cues(train, codebook))
    return rules


def choose_threshold(folds: list[tuple[Examples, Examples]], codebook: Codebook) -> float:
    """The model threshold that maximises mean macro-F1 of rules+model over (train, test) folds,
    with the rules pruned to the cues supported on each fold's train part."""
    codes = [c.code for c in codebook]
    totals = dict.fromkeys(THRESHOLDS, 0.0)
    for train, test in folds:
        cb = with_model(split_rules(train, codebook), train)
        texts = [t for t, _ in test]
        for th in THRESHOLDS:
            totals[th] += score_preds(test, _combined(cb, texts, th), codes)[1]["macro_f1"]
    return max(THRESHOLDS, key=lambda th: (round(totals[th], 6), -abs(th - 0.5)))


def tune(sets: dict[str, Examples], codebook: Codebook) -> float:
    """Threshold for the shipped codebook: leave-one-set-out over the seen sets."""
    names = [n for n in SEEN if n in sets]
    folds = [([x for m in names if m != n for x in sets[m]], sets[n]) for n in names]
    return choose_threshold(folds, codebook)


def leave_one_set_out(sets: dict[str, Examples], codebook: Codebook) -> None:
    """Train/tune on two seen sets, score the third: rules, model, rules+model."""
    names = [n for n in SEEN if n in sets]
    if len(names) < 3:
        print("\n(leave-one-set-out needs dev, holdout and independent)")
        return
    codes = [c.code for c in codebook]
    print("\n== leave-one-set-out: fit and tune on two seen sets, score the third ==")
    print(
        "rules(seen) = shipped cues, which were tuned on all three sets (optimistic); "
        "rules = cues supported on the two training sets; model = text model alone; "
        "combined = rules + model. Threshold chosen on the training sets only "
        "(train on one, score the other, both ways)."
    )
    results: dict[str, dict[str, dict]] = {}
    for held in names:
        tune_on = [n for n in names if n != held]
        train = [x for n in tune_on for x in sets[n]]
        a, b = (sets[n] for n in tune_on)
        th = choose_threshold([(a, b), (b, a)], codebook)
        rules = split_rules(train, codebook)
        cb = with_model(rules, train, th)
        test = sets[held]
        texts = [t for t, _ in test]
        preds = {
            "rules(seen)": [rule_code(t, codebook).codes for t in texts],
            "rules": [rule_code(t, rules).codes for t in texts],
            "model": _model_preds(cb, texts, [th])[th],
            "combined": _combined(cb, texts, th),
        }
        results[held] = {k: score_preds(test, v, codes) for k, v in preds.items()}
        print(f"\n-- held out: {held} (trained on {' + '.join(tune_on)}, threshold {th:.2f})")
        kinds = list(preds)
        print(f"{'F1':28} " + " ".join(f"{k:>11}" for k in kinds) + f" {'n':>4}")
        for c in codes:
            n = results[held]["rules"][0][c][3]
            row = " ".join(f"{results[held][k][0][c][2]:11.3f}" for k in kinds)
            print(f"{c:28} {row} {n:4d}")
        for avg in ("macro_f1", "micro_f1"):
            row = " ".join(f"{results[held][k][1][avg]:11.3f}" for k in kinds)
            print(f"{avg:28} {row}")
    print("\n== leave-one-set-out summary (macro-F1) ==")
    kinds = list(next(iter(results.values())))
    print(f"{'held out':28} " + " ".join(f"{k:>11}" for k in kinds))
    for held, res in results.items():
        print(f"{held:28} " + " ".join(f"{res[k][1]['macro_f1']:11.3f}" for k in kinds))
    mean = {k: sum(r[k][1]["macro_f1"] for r in results.values()) / len(results) for k in kinds}
    print(f"{'mean':28} " + " ".join(f"{mean[k]:11.3f}" for k in kinds))


def throughput(examples: list[str], codebook: Codebook, n: int) -> tuple[float, float]:
    """Answers/s coded one at a time (code_text) and in batches (code_texts)."""
    rng = random.Random(0)
    sample = [rng.choice(examples) for _ in range(n)]
    code_texts(sample[:1000], codebook)  # warm the word caches
    start = time.perf_counter()
    for text in sample[: max(1, n // 10)]:
        code_text(text, codebook)
    single = max(1, n // 10) / (time.perf_counter() - start)
    start = time.perf_counter()
    code_texts(sample, codebook)
    return single, n / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="answers for the throughput run")
    ap.add_argument(
        "--sets", nargs="+", choices=SETS, default=None, help="sets to report (default: all)"
    )
    ap.add_argument("--errors", choices=SEEN, help="list misclassified answers of a seen set")
    ap.add_argument("--codebook", type=Path, default=None, help="codebook file (default: shipped)")
    ap.add_argument(
        "--tune", action="store_true", help="print the model threshold chosen on the seen sets"
    )
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
    if args.tune:
        seen = {n: load_examples(n) for n in SEEN}
        print(f"threshold chosen by leave-one-set-out: {tune(seen, codebook):.2f}")
        return
    wanted = args.sets or list(SETS)
    sets = {n: load_examples(n) for n in wanted if (DATA / f"{n}.jsonl").is_file()}
    if codebook.model is not None:
        print(f"model: trained on {codebook.training}, threshold {codebook.model.threshold:.2f}")
    for name, examples in sets.items():
        report(name, examples, codebook)
    cross_set(sets, codebook)
    leave_one_set_out(sets, codebook)
    # Throughput on seen answers when any were loaded, else on whatever sets were asked for
    # (``--sets sealed`` alone used to crash here on an empty sample).
    texts = [t for n in SEEN if n in sets for t, _ in sets[n]]
    texts = texts or [t for ex in sets.values() for t, _ in ex]
    if not texts:
        print("\nthroughput: no answers loaded")
        return
    single, batched = throughput(texts, codebook, args.n)
    print(
        f"\nthroughput on one core: {single:,.0f} answers/s one at a time (code_text), "
        f"{batched:,.0f} answers/s batched (code_texts) over {args.n:,} answers"
    )


if __name__ == "__main__":
    main()
