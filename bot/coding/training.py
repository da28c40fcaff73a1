"""Training the text model: the labelled answers named by the codebook, fitting the model and
its combiner against the rules, and writing the artefact the codebook loads.

    python -m bot.coding.training fit [CODEBOOK]

is the only way the model gets fitted (loading a codebook never fits): run it after changing the
training file, the codes, their cues or the lexicons, and commit the artefact it writes. The
tests check that the shipped artefact is fresh.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from bot.coding.codebook import (
    Codebook,
    CodebookError,
    default_codebook_path,
    model_digest_for,
)
from bot.coding.codebook_file import load_codebook
from bot.coding.coder import combiner_rows, model_tokens
from bot.coding.rules import rule_code
from bot.coding.text_model import TextModel, fit_combiner, fit_model, save_model


class Gold(frozenset):
    """The codes of a labelled answer whose author labelled only some of the codebook's codes:
    ``unlabelled`` are the codes outside their label space (e.g. the success factors, for an
    author who coded barriers only). Those codes are neither positive nor negative evidence:
    fits give them no weight for this answer and scoring leaves them out."""

    unlabelled: frozenset[str]

    def __new__(cls, codes: Iterable[str] = (), unlabelled: Iterable[str] = ()) -> Gold:
        out = super().__new__(cls, codes)
        out.unlabelled = frozenset(unlabelled)
        return out


def unlabelled_of(gold: frozenset[str]) -> frozenset[str]:
    """Codes outside the label space of a labelled answer (empty for a plain frozenset)."""
    return getattr(gold, "unlabelled", frozenset())


def load_training_sets(
    path: Path, codebook: Codebook
) -> tuple[list[tuple[str, frozenset[str]]], list[str | None]]:
    """Labelled answers and, per answer, the labelled set it came from (its "set" field), or
    None for answers that are training-only ("train_only": true) or name no set. The combiner
    is fitted by holding out one set at a time; training-only answers are never held out.
    An answer with "label_space": "barriers" was labelled by an author who coded barriers
    only: its gold is a ``Gold`` whose success codes are unlabelled (not negatives)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CodebookError(f"{path}: cannot read training file ({exc.strerror or exc})") from exc
    known = {c.code for c in codebook.codes}
    rows: list[tuple[str, frozenset[str]]] = []
    groups: list[str | None] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            text, gold = obj["text"], frozenset(obj["codes"])
        except (ValueError, KeyError, TypeError) as exc:
            raise CodebookError(f"{path}, line {n}: expected {{'text', 'codes'}}: {exc}") from exc
        if not isinstance(text, str) or not gold <= known:
            raise CodebookError(f"{path}, line {n}: unknown code(s) {sorted(gold - known)}")
        space = obj.get("label_space", "all")
        if space == "barriers":
            gold = Gold(gold, codebook.success_codes)
        elif space != "all":
            raise CodebookError(f"{path}, line {n}: label_space must be 'all' or 'barriers'")
        rows.append((text, gold))
        group = obj.get("set")
        groups.append(None if obj.get("train_only") or not isinstance(group, str) else group)
    if not rows:
        raise CodebookError(f"{path}: no training answers")
    return rows, groups


def _fit_only(
    codebook: Codebook, rows: list[tuple[str, frozenset[str]]], threshold: float
) -> TextModel:
    return fit_model(
        [[t[2] for t in model_tokens(text, codebook)] for text, _ in rows],
        [gold for _, gold in rows],
        [c.code for c in codebook.codes],
        threshold,
    )


def fit_text_model(
    codebook: Codebook,
    rows: list[tuple[str, frozenset[str]]],
    groups: list[str | None] | None = None,
    threshold: float = 0.5,
) -> TextModel:
    """The text model fitted on ``rows``, and its combiner fitted by leave-one-set-out.

    For each labelled set (``groups``; at least three are needed, else the default combiner is
    kept) the rules are pruned to the cues with a correct hit on the *other* sets
    (``supported_cues``: what a cue writer who had not read this set would plausibly have
    written) and a model is fitted without it; their evidence on the held-out set is what the
    combiner learns from. So it learns how much rules and model are worth on unseen wording,
    not on the answers the cues were written from. Training-only answers (group None) are in
    every fit and never held out or used as cue support.
    """
    model = _fit_only(codebook, rows, threshold)
    held = sorted({g for g in groups or () if g is not None})
    if groups is None or len(held) < 3:
        return model
    codes = model.codes
    xs, ys, ms = [], [], []
    for g in held:
        train = [r for r, h in zip(rows, groups, strict=True) if h != g]
        support = [r for r, h in zip(rows, groups, strict=True) if h is not None and h != g]
        test = [r for r, h in zip(rows, groups, strict=True) if h == g]
        rules = pruned(codebook, supported_cues(support, codebook))
        fold = _fit_only(codebook, train, threshold)
        texts = [t for t, _ in test]
        codings = [rule_code(t, rules) for t in texts]
        toks = [model_tokens(t, codebook) for t in texts]
        xs.append(combiner_rows(texts, codings, toks, fold))
        ys.append(np.array([[c in gold for c in codes] for _, gold in test]).ravel())
        # (answer, code) rows outside an answer's label space teach the combiner nothing.
        ms.append(
            np.array([[c not in unlabelled_of(gold) for c in codes] for _, gold in test]).ravel()
        )
    keep = np.concatenate(ms)
    model.combiner = fit_combiner(np.vstack(xs)[keep], np.concatenate(ys)[keep])
    model.combiner_fitted = True
    return model


def supported_cues(
    examples: Iterable[tuple[str, frozenset[str]]], codebook: Codebook
) -> set[tuple[str, str]]:
    """(code, cue) pairs with at least one correct, non-negated hit on ``examples``."""
    keep: set[tuple[str, str]] = set()
    for text, gold in examples:
        for ev in rule_code(text, codebook).evidence:
            if not ev.negated and ev.code in gold and ev.cue is not None:
                keep.add((ev.code, ev.cue))
    return keep


def pruned(codebook: Codebook, keep: set[tuple[str, str]]) -> Codebook:
    """The codebook's rules with only the cues and topics in ``keep`` (lexicons untouched, no
    model): the rules as someone who had only read the answers behind ``keep`` might have
    written them."""
    codes = tuple(
        replace(
            c,
            cues=tuple(q for q in c.cues if (c.code, q) in keep),
            topics=tuple(t for t in c.topics if (c.code, t) in keep),
        )
        for c in codebook.codes
    )
    return Codebook(
        codes=codes,
        source=codebook.source,
        lexicon=dict(codebook.lexicon),
        language=codebook.language,
        lexicons=codebook.lexicons,
    )


def refit_model(path: Path | None = None) -> Path:
    """Fit the text model of a codebook and write it next to the codebook (``[model] file``,
    by default ``<codebook>.model.npz``); returns the artefact's path."""
    p = Path(path) if path is not None else default_codebook_path()
    book = load_codebook(p)
    if book.training is None or book.model_file is None:
        raise CodebookError(f"{p}: no 'training' file, so no model to fit")
    rows, groups = load_training_sets(book.training, book)
    fitted = fit_text_model(book, rows, groups, book.threshold)
    save_model(fitted, book.model_file, model_digest_for(book))
    return book.model_file


def main(argv: Sequence[str] | None = None) -> int:
    """python -m bot.coding.training fit [CODEBOOK]: fit the codebook's model and save it."""
    ap = argparse.ArgumentParser(prog="python -m bot.coding.training", description=main.__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    fit = sub.add_parser("fit", help="fit the text model of a codebook and write its artefact")
    fit.add_argument("codebook", nargs="?", type=Path, default=None)
    args = ap.parse_args(argv)
    print(f"wrote {refit_model(args.codebook)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
