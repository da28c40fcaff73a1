"""Accuracy and speed of the barrier coder (bot/coding).

Run: .venv/bin/python bench/coding_bench.py [--n 100000] [--sets dev holdout] [--errors SET]
     .venv/bin/python bench/coding_bench.py --eval PATH   (score the shipped coder on a file)

Headline, "unseen text": leave-one-set-out over the five labelled sets in tests/data/coding/
(dev, holdout, independent, sealed, sealed2; each written by a different author). For each set
in turn the coder is rebuilt without it, as if that author's answers had never been read:

* rules: the shipped cues pruned to those with at least one correct, non-negated hit on the
  other three sets (the generic lexicon of negators and problem markers is kept whole). A
  codebook written by someone who had read only those three would not contain the cues that
  fire correctly only on the held-out set. This is still optimistic (the cue writer had read
  dev, holdout and independent, and a cue supported elsewhere may have been worded with the
  held-out set in mind) but it catches cues pasted from one set;
* model and combiner: fitted on the other three sets plus the training-only examples written
  from the taxonomy (authored.jsonl), the combiner itself by an inner leave-one-set-out over
  those three (bot.coding.training.fit_text_model), so nothing about the held-out set is used;

and the held-out set is scored. Macro-F1 is over all 16 codes and over the 10 barrier codes.

sealed2's author labelled the 10 barrier codes only (success factors and praise got no code),
so on sealed2 the success codes are outside the label space: a predicted success code is not a
false positive there, and those codes carry no weight when sealed2 is trained on
(bot.coding.training.Gold).
Its "all codes" macro is therefore over the barrier codes it labels.

Then, per set, the shipped coder's figures. The shipped rules were written on dev, holdout and
independent and its model is trained on all four sets, so those are *seen* figures. Last,
throughput on ~100,000 answers sampled with replacement from the sets, which is the largest
digest the bot is expected to code.
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

from bot.coding.codebook import Codebook  # noqa: E402
from bot.coding.codebook_file import load_codebook  # noqa: E402
from bot.coding.coder import code_text, code_texts, model_tokens  # noqa: E402
from bot.coding.rules import explain, rule_code  # noqa: E402
from bot.coding.training import Gold, fit_text_model, pruned, supported_cues  # noqa: E402

DATA = ROOT / "tests" / "data" / "coding"
# Reported in this order when the file exists.
SETS = ("dev", "holdout", "independent", "sealed", "sealed2")
# Sets whose author labelled the barrier codes only (the success codes are unlabelled there).
BARRIERS_ONLY = {"sealed2"}
# Training-only answers written from the taxonomy's definitions (never scored).
AUTHORED = "authored"
TUNED_ON = {
    "dev": "seen: cues written on it, model trained on it",
    "holdout": "seen: errors read since 2nd round, model trained on it",
    "independent": "seen: cue families broadened on its errors, model trained on it",
    "sealed": "seen: model trained on it (cues never tuned on it)",
    "sealed2": "seen: errors read, model trained on it; barrier codes only",
}

Examples = list[tuple[str, frozenset[str]]]


def load_examples(name: str | Path, success_codes: tuple[str, ...] | None = None) -> Examples:
    """A labelled set by name (tests/data/coding/NAME.jsonl) or a JSONL file by path. For a set
    in BARRIERS_ONLY the golds are ``Gold``s whose success codes are unlabelled."""
    path = name if isinstance(name, Path) else DATA / f"{name}.jsonl"
    if isinstance(name, str) and name in BARRIERS_ONLY:
        success = success_codes if success_codes is not None else load_codebook().success_codes
        return [(t, Gold(g, success)) for t, g in load_examples(path)]
    rows = []
    with path.open(encoding="utf-8") as fh:
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
        skip = getattr(gold, "unlabelled", frozenset())  # codes outside the label space
        pred = set(pred_codes) - skip
        exact += pred == gold
        for c in tp:
            if c in skip:
                continue
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
    barriers = [c for c in present if not c.startswith("success.")]
    avg = {
        "macro_f1_barriers": (
            sum(per[c][2] for c in barriers) / len(barriers) if barriers else 0.0
        ),
        "macro_p": sum(per[c][0] for c in present) / max(len(present), 1),
        "macro_r": sum(per[c][1] for c in present) / max(len(present), 1),
        "macro_f1": sum(per[c][2] for c in present) / max(len(present), 1),
        "micro_p": mp,
        "micro_r": mr,
        "micro_f1": 2 * mp * mr / (mp + mr) if mp + mr else 0.0,
        "exact_match": exact / len(examples),
    }
    return per, avg


def report(name: str, examples: Examples, codebook: Codebook, what: str = "") -> dict[str, float]:
    per, avg = score(examples, codebook)
    print(f"\n== {name}: {len(examples)} answers ({what or TUNED_ON.get(name, '?')}) ==")
    skip = set().union(*(getattr(g, "unlabelled", frozenset()) for _, g in examples))
    if skip:
        print(
            f"(labelled for the barrier codes only: {len(skip)} success codes are outside its "
            "label space and not scored; predicted success codes are not false positives)"
        )
    print(f"{'code':28} {'P':>6} {'R':>6} {'F1':>6} {'n':>4}")
    for c, (p, r, f, n) in per.items():
        if c in skip:
            print(f"{c:28} {'not labelled':>20}")
            continue
        print(f"{c:28} {p:6.3f} {r:6.3f} {f:6.3f} {n:4d}")
    print(f"{'macro':28} {avg['macro_p']:6.3f} {avg['macro_r']:6.3f} {avg['macro_f1']:6.3f}")
    print(f"{'macro (barrier codes)':28} {'':6} {'':6} {avg['macro_f1_barriers']:6.3f}")
    print(f"{'micro':28} {avg['micro_p']:6.3f} {avg['micro_r']:6.3f} {avg['micro_f1']:6.3f}")
    print(f"exact-match (all codes right): {avg['exact_match']:.3f}")
    return avg


def errors(examples: Examples, codebook: Codebook) -> None:
    for text, gold in examples:
        coding = code_text(text, codebook)
        if set(coding.codes) - getattr(gold, "unlabelled", frozenset()) != gold:
            print(f"- {text!r}\n  gold={sorted(gold)} got={list(coding.codes)}")
            print(f"  {explain(coding)}")


def split_rules(train: Examples, codebook: Codebook) -> Codebook:
    """Rules as someone who had only read ``train`` would have written them (see docstring)."""
    return pruned(codebook, supported_cues(train, codebook))


def unseen_coder(
    sets: dict[str, Examples], held: str, codebook: Codebook, authored: Examples
) -> tuple[Codebook, Codebook]:
    """(rules, rules + model + combiner) built without the set ``held``."""
    names = [n for n in sets if n != held]
    rows = [x for n in names for x in sets[n]] + authored
    groups: list[str | None] = [n for n in names for _ in sets[n]] + [None] * len(authored)
    rules = split_rules([x for n in names for x in sets[n]], codebook)
    threshold = codebook.model.threshold if codebook.model is not None else 0.5
    model = fit_text_model(rules, rows, groups, threshold)
    return rules, rules.with_model(model)


def leave_one_set_out(
    sets: dict[str, Examples], codebook: Codebook, authored: Examples
) -> dict[str, dict[str, float]]:
    """The headline: each set scored by a coder built without it (see the docstring)."""
    names = [n for n in SETS if n in sets]
    if len(names) < len(SETS):
        print(f"\n(leave-one-set-out needs all {len(SETS)} sets: {', '.join(SETS)})")
        return {}
    codes = [c.code for c in codebook]
    print(f"\n== UNSEEN TEXT: leave-one-set-out over the {len(names)} sets (headline) ==")
    print(
        "rules(seen) = shipped cues, written on the sets (optimistic); "
        "rules = cues supported on the other sets; model = text model alone "
        "(p >= 0.5); combined = rules + model + combiner, all fitted without the held-out set. "
        f"{', '.join(sorted(BARRIERS_ONLY))}: barrier codes only (success codes not labelled, "
        "not scored; its 'all codes' macro is over its barrier codes)."
    )
    results: dict[str, dict[str, tuple]] = {}
    for held in names:
        t0 = time.perf_counter()
        rules, combined = unseen_coder({n: sets[n] for n in names}, held, codebook, authored)
        model = combined.model
        assert model is not None
        test = sets[held]
        texts = [t for t, _ in test]
        proba = model.proba([[t[2] for t in model_tokens(x, combined)] for x in texts])
        preds = {
            "rules(seen)": [rule_code(t, codebook).codes for t in texts],
            "rules": [rule_code(t, rules).codes for t in texts],
            "model": [{model.codes[j] for j in (row >= 0.5).nonzero()[0]} for row in proba],
            "combined": [c.codes for c in code_texts(texts, combined)],
        }
        results[held] = {k: score_preds(test, v, codes) for k, v in preds.items()}
        others = " + ".join(n for n in names if n != held)
        print(
            f"\n-- held out: {held} (built from {others} + {AUTHORED}; "
            f"{time.perf_counter() - t0:.0f} s)"
        )
        kinds = list(preds)
        print(f"{'F1':28} " + " ".join(f"{k:>11}" for k in kinds) + f" {'n':>4}")
        for c in codes:
            n = results[held]["rules"][0][c][3]
            if held in BARRIERS_ONLY and c in codebook.success_codes:
                print(f"{c:28} {'not labelled':>11}")
                continue
            row = " ".join(f"{results[held][k][0][c][2]:11.3f}" for k in kinds)
            print(f"{c:28} {row} {n:4d}")
        for avg in ("macro_f1", "macro_f1_barriers", "micro_f1"):
            row = " ".join(f"{results[held][k][1][avg]:11.3f}" for k in kinds)
            print(f"{avg:28} {row}")
    kinds = list(next(iter(results.values())))
    summary: dict[str, dict[str, float]] = {}
    for avg, title in (("macro_f1", "all 16 codes"), ("macro_f1_barriers", "10 barrier codes")):
        print(f"\n== unseen text: macro-F1 over {title}, each set held out ==")
        print(f"{'held out':28} " + " ".join(f"{k:>11}" for k in kinds))
        for held, res in results.items():
            print(f"{held:28} " + " ".join(f"{res[k][1][avg]:11.3f}" for k in kinds))
        mean = {k: sum(r[k][1][avg] for r in results.values()) / len(results) for k in kinds}
        print(f"{'mean':28} " + " ".join(f"{mean[k]:11.3f}" for k in kinds))
        summary[avg] = {**{h: r["combined"][1][avg] for h, r in results.items()},
                        "mean": mean["combined"]}  # fmt: skip
    f1 = {c: [r["combined"][0][c][2] for r in results.values()] for c in codes}
    worst = sorted(codes, key=lambda c: sum(f1[c]) / len(f1[c]))[:4]
    print(
        "weakest codes (mean combined F1 over held-out sets): "
        + ", ".join(f"{c} {sum(f1[c]) / len(f1[c]):.3f}" for c in worst)
    )
    return summary


def evaluate(path: Path, codebook: Codebook) -> None:
    """Per-code precision/recall/F1 and macro/micro averages of the shipped coder on a file."""
    examples = load_examples(path)
    known = {c.code for c in codebook}
    unknown = sorted({c for _, gold in examples for c in gold} - known)
    if unknown:
        print(f"note: codes not in the codebook, never predicted: {', '.join(unknown)}")
    if codebook.training is not None:
        trained = {t.strip().lower() for t, _ in load_examples(codebook.training)}
        seen = sum(t.strip().lower() in trained for t, _ in examples)
        print(
            f"{seen} of {len(examples)} answers are also in the training file {codebook.training}"
        )
    report(path.name, examples, codebook, f"shipped coder, {path}")


def throughput(examples: list[str], codebook: Codebook, n: int) -> dict[str, tuple[float, float]]:
    """Answers/s coded one at a time (code_text) and in batches (code_texts), by wall-clock
    time and by this process's CPU time (which other jobs on a shared machine do not eat)."""
    rng = random.Random(0)
    sample = [rng.choice(examples) for _ in range(n)]
    code_texts(sample[:1000], codebook)  # warm the word caches
    out: dict[str, tuple[float, float]] = {}
    few = sample[: max(1, n // 10)]
    start, cpu = time.perf_counter(), time.process_time()
    for text in few:
        code_text(text, codebook)
    out["single"] = (
        len(few) / (time.perf_counter() - start),
        len(few) / (time.process_time() - cpu),
    )
    start, cpu = time.perf_counter(), time.process_time()
    code_texts(sample, codebook)
    out["batched"] = (n / (time.perf_counter() - start), n / (time.process_time() - cpu))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="answers for the throughput run")
    ap.add_argument(
        "--sets", nargs="+", choices=SETS, default=None, help="sets to report (default: all)"
    )
    ap.add_argument("--errors", choices=SETS, help="list misclassified answers of a set")
    ap.add_argument("--codebook", type=Path, default=None, help="codebook file (default: shipped)")
    ap.add_argument(
        "--eval",
        type=Path,
        metavar="PATH",
        help='score the shipped coder on a JSONL file of {"text", "codes"} lines, and stop',
    )
    ap.add_argument(
        "--no-unseen", action="store_true", help="skip the leave-one-set-out headline (~1 min)"
    )
    args = ap.parse_args()

    t0 = time.perf_counter()
    codebook = load_codebook(args.codebook)
    print(
        f"codebook: {codebook.source} ({len(codebook)} codes, "
        f"loaded and compiled in {1000 * (time.perf_counter() - t0):.1f} ms)"
    )
    if codebook.model is not None:
        fitted = "fitted" if codebook.model.combiner_fitted else "DEFAULT (not fitted)"
        print(
            f"model: trained on {codebook.training}, threshold {codebook.model.threshold:.2f}, "
            f"combiner {fitted}"
        )
    if args.eval:
        evaluate(args.eval, codebook)
        return
    if args.errors:
        errors(load_examples(args.errors, codebook.success_codes), codebook)
        return
    wanted = args.sets or list(SETS)
    sets = {
        n: load_examples(n, codebook.success_codes)
        for n in wanted
        if (DATA / f"{n}.jsonl").is_file()
    }
    if not args.no_unseen:
        authored = load_examples(AUTHORED) if (DATA / f"{AUTHORED}.jsonl").is_file() else []
        leave_one_set_out(sets, codebook, authored)
    print("\n== SEEN TEXT: the shipped coder on each set ==")
    for name, examples in sets.items():
        report(name, examples, codebook)
    texts = [t for ex in sets.values() for t, _ in ex]
    if not texts:
        print("\nthroughput: no answers loaded")
        return
    rates = throughput(texts, codebook, args.n)
    (single, single_cpu), (batched, batched_cpu) = rates["single"], rates["batched"]
    print(
        f"\nthroughput on one core: {single:,.0f} answers/s one at a time (code_text), "
        f"{batched:,.0f} answers/s batched (code_texts) over {args.n:,} answers; "
        f"by CPU time {single_cpu:,.0f} and {batched_cpu:,.0f}"
    )


if __name__ == "__main__":
    main()
