"""Coding answers: the rules (rules.py) and, when the codebook has one, the text model
(text_model.py) decide together through the combiner; without a model the rules alone code.

The coder is deliberately transparent: every code it assigns can be traced back to the words
that triggered it (``Evidence``), so coordinators can check and overrule it. No network.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace

import numpy as np

from bot.coding.codebook import Codebook
from bot.coding.rules import DOUBTFUL_BELOW, Coding, Evidence, normalise, rule_code, strengths
from bot.coding.spelling import correct_typos
from bot.coding.text_model import (
    COMBINER_FEATURES,
    TextModel,
    combiner_inputs,
    segments_of,
    tokens_of,
)

Tokens = list[tuple[int, int, str]]  # (start, end, key) per word of an answer


def code_text(text: str, codebook: Codebook) -> Coding:
    """Assign barrier and success codes to one answer, with the evidence for each."""
    if codebook.model is None:
        return rule_code(text, codebook)
    return code_texts([text], codebook)[0]


BATCH = 2048


def code_texts(texts: Iterable[str], codebook: Codebook) -> list[Coding]:
    """Code many answers; the model part is vectorised in batches (same result as code_text)."""
    model = codebook.model
    if model is None:
        return [rule_code(t, codebook) for t in texts]
    out: list[Coding] = []
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == BATCH:
            out.extend(_code_batch(batch, codebook, model))
            batch = []
    if batch:
        out.extend(_code_batch(batch, codebook, model))
    return out


def model_tokens(text: str, codebook: Codebook) -> Tokens:
    """The text model's words of an answer, (start, end, key) with spans into the answer as
    written: lower-cased, and one-edit typos of cue words corrected as for the rules (the model
    has rarely seen "premisses", but knows "premises")."""
    fixed, omap = correct_typos(normalise(text), codebook.spelling)
    if omap is None:
        return tokens_of(fixed)
    return [(omap[s], omap[e], key) for s, e, key in tokens_of(fixed)]


def _code_batch(texts: list[str], codebook: Codebook, model: TextModel) -> list[Coding]:
    rules = [rule_code(t, codebook) for t in texts]
    toks = [model_tokens(t, codebook) for t in texts]
    q = _combined_proba(texts, rules, toks, model)
    thr = model.threshold
    codes = model.codes
    out: list[Coding] = []
    for i, coding in enumerate(rules):
        row = q[i]
        hits = (row >= thr).nonzero()[0]
        if len(hits) == len(coding.codes) and all(codes[j] in coding.codes for j in hits):
            out.append(coding)  # the combiner agrees with the rules
            continue
        probs = {codes[j]: float(row[j]) for j in range(len(codes))}
        out.append(_decide(texts[i], coding, toks[i], probs, model))
    return out


def _combined_proba(
    texts: list[str], rules: list[Coding], toks: list[Tokens], model: TextModel
) -> np.ndarray:
    """The combiner's probability per answer and code, from the text model's whole-answer and
    best-segment probabilities and the rules' evidence."""
    rows = combiner_rows(texts, rules, toks, model)
    return model.combine(rows).reshape(len(texts), len(model.codes))


def rule_inputs(
    codings: list[Coding], codes: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rule assigned, rule strength, self-contained cue) as (n_answers, n_codes) arrays."""
    col = {c: j for j, c in enumerate(codes)}
    shape = (len(codings), len(codes))
    rule, strength, cue = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for i, coding in enumerate(codings):
        for code in coding.codes:
            rule[i, col[code]] = 1.0
        for code, st in strengths(coding.evidence).items():
            strength[i, col[code]] = st
        for ev in coding.evidence:
            if ev.kind == "cue" and not ev.negated:
                cue[i, col[ev.code]] = 1.0
    return rule, strength, cue


def _decide(
    text: str,
    coding: Coding,
    tokens: list[tuple[int, int, str]],
    probs: dict[str, float],
    model: TextModel,
) -> Coding:
    """The final coding of one answer from the combiner's probability per code (``probs``; a
    code not named has probability 0).

    * A code is assigned when its probability reaches the model's threshold, except that a
      code whose cue the rules found and discarded as negated is never added ("the hall is
      *not* a problem").
    * A rule code below the threshold is set aside: its evidence stays, marked ``overruled``,
      and the answer is doubtful.
    * A code only the combiner found carries the (at most three) words that pushed the text
      model up, or is not assigned at all when no word of the answer speaks for it.
    """
    thr = model.threshold
    negated = {ev.code for ev in coding.evidence if ev.negated} - set(coding.codes)
    dropped = {c for c in coding.codes if probs.get(c, 0.0) < thr}
    evidence = [
        replace(ev, overruled=True, score=round(probs.get(ev.code, 0.0), 3))
        if ev.code in dropped and not ev.negated
        else ev
        for ev in coding.evidence
    ]
    added: dict[str, float] = {}
    for code, p in probs.items():
        if p < thr or code in coding.codes or code in negated:
            continue
        words = model.top_words(tokens, code)
        if not words:
            continue  # nothing in the text itself speaks for it: no evidence, no code
        for s, e, _w in words:
            evidence.append(Evidence(code, text[s:e], (s, e), False, "model", score=round(p, 3)))
        added[code] = p
    if not added and not dropped:
        return coding
    evidence.sort(key=lambda ev: (ev.span, ev.code))
    kept = [c for c in coding.codes if c not in dropped]
    strength = strengths(evidence)
    codes = tuple(sorted({*kept, *added}))
    conf = [strength[c] for c in kept] + list(added.values())
    confidence = round(min(conf), 3) if conf else 1.0
    near = thr + model.near
    doubtful = (
        bool(dropped)
        or any(ev.negated for ev in evidence)
        or any(strength[c] < DOUBTFUL_BELOW for c in kept)
        or any(ev.kind in ("contrast", "headline") and ev.code in kept for ev in evidence)
        or any(p < near for p in added.values())
    )
    return Coding(codes, tuple(evidence), confidence, doubtful)


def combiner_rows(
    texts: Sequence[str], codings: list[Coding], toks: Sequence[Tokens], model: TextModel
) -> np.ndarray:
    """Combiner inputs as (n_answers * n_codes, n_features) rows."""
    keys = [[t[2] for t in tk] for tk in toks]
    segs = [segments_of(normalise(t), tk) for t, tk in zip(texts, toks, strict=True)]
    p, p_seg = model.scores(keys, segs)
    rule, strength, cue = rule_inputs(codings, model.codes)
    x = combiner_inputs(p, p_seg, rule, strength, cue, [len(k) for k in keys], model.short_words)
    return x.reshape(-1, len(COMBINER_FEATURES))
