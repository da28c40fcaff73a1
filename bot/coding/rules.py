"""The rule coder: codes one answer from the codebook's cues and topics, with the evidence for
each code, so coordinators can check and overrule it.

Negation works in two directions, which is the point: "no problems with premises" negates the
*problem marker* and discards the topic, while "we never get told about tenders" is a cue whose
negative sense is the problem itself and is kept.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from bot.coding.codebook import Codebook
from bot.coding.cues import ABSENCE, APOSTROPHES, CUE, DEFICIT, NEG_CUE, TOPIC, Match, wordset
from bot.coding.spelling import correct_typos

EvidenceKind = Literal["cue", "topic", "contrast", "headline", "model"]

# Evidence weights feed the per-code confidence: a self-contained cue is far more reliable than
# a topic word that merely shares a clause with a problem marker.
_WEIGHTS: dict[str, float] = {
    "cue": 0.9,
    "absence": 0.75,
    "topic": 0.6,
    "contrast": 0.55,
    "headline": 0.6,
    "model": 0.5,
}
# Codes below this confidence, or answers where negation discarded something, are flagged so a
# coordinator looks at them rather than trusting the count blindly.
DOUBTFUL_BELOW = 0.7

# Clause boundaries: punctuation, contrastive conjunctions, and "and" when a new subject
# starts ("... too big and we don't have ..."), because negation and problem markers should not
# leak across clauses.
_CLAUSE_SPLIT = re.compile(
    r"[.;!?:\n(),\u2013\u2014]+|\s-\s|"
    r"\b(?:but|however|though|although|whereas|apart from|except|while|because|as long as|"
    r"(?:and|so)\s+(?=(?:we|our|i|the|they|their|it|its|it's|there|nobody|no one|everyone|"
    r"half|staff|now|then|also)\b))\b"
)
# The second half of "X isn't the problem, Y is" / "it's not X, it's Y" takes over the problem
# that the first half denied.
_CONTRAST_HEAD = re.compile(
    r"^\s*(?:and\s+)?(?:it's|its|it is|the problem is|the issue is|rather)\b"
)
_CONTRAST_TAIL = re.compile(r"\b(?:is|are|was|were|does|do)\s*$")
_TOKEN = re.compile(r"£?\d[\d,.]*[km]?|[\w]+(?:'\w+)*")


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why a code was (or was nearly) assigned."""

    code: str
    words: str  # the matched words exactly as they appear in the answer
    span: tuple[int, int]  # character offsets into the original answer
    negated: bool = False  # True: the cue was found but discarded because negated/denied
    kind: EvidenceKind = "cue"
    trigger: str | None = None  # the problem/absence marker that activated a topic
    cue: str | None = None  # the codebook cue or topic that matched, as written there
    score: float | None = None  # the combiner's probability for the code (model evidence,
    # or rule evidence that the combiner set aside)
    # True: rule evidence for a code the combiner set aside, because the text model and the
    # rest of the answer made the code unlikely (kept so a coordinator can see what was found)
    overruled: bool = False


@dataclass(frozen=True, slots=True)
class Coding:
    codes: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    confidence: float  # min over assigned codes; 1.0 when nothing at all was matched
    doubtful: bool  # worth a human look: weak single evidence, negation or contrast involved

    def barriers(self, codebook: Codebook) -> tuple[str, ...]:
        return tuple(c for c in self.codes if codebook.family_of(c) != "success")

    def successes(self, codebook: Codebook) -> tuple[str, ...]:
        return tuple(c for c in self.codes if codebook.family_of(c) == "success")


def normalise(text: str) -> str:
    """Lower-case and unify apostrophes *without changing length*, so spans stay valid."""
    low = text.translate(APOSTROPHES).lower()
    if len(low) == len(text):
        return low
    # Rare characters (e.g. 'İ') change length when lower-cased; fall back char by char.
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text.translate(APOSTROPHES))


def _is_negator(tok: str, negators: frozenset[str]) -> bool:
    return tok in negators or tok.endswith("n't")


def _split_clauses(norm: str) -> list[tuple[int, int]]:
    clauses: list[tuple[int, int]] = []
    pos = 0
    for m in _CLAUSE_SPLIT.finditer(norm):
        if m.start() > pos:
            clauses.append((pos, m.start()))
        pos = m.end()
    if pos < len(norm):
        clauses.append((pos, len(norm)))
    return clauses or [(0, len(norm))]


Topic = tuple[str, int, int]  # (code, start, end) in the normalised answer


class _Reading:
    """One answer as the rules read it: normalised (typos corrected), cut into clauses and
    tokens, with the way back to the words as written."""

    def __init__(self, text: str, codebook: Codebook) -> None:
        self.text = text
        self.norm, self.omap = correct_typos(normalise(text), codebook.spelling)
        self.clauses = _split_clauses(self.norm)
        self.clause_starts = [c[0] for c in self.clauses]
        self.tokens = [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(self.norm)]
        self.tok_starts = [t[0] for t in self.tokens]
        self.negators = codebook.negators
        self.cue_at: dict[tuple[str, int, int], str] = {}  # the codebook cue behind a match

    def scan(self, codebook: Codebook) -> list[Match]:
        """Every cue, topic and marker match, in text order (longest first at one start)."""
        matches = codebook.index.scan(self.norm, self.tokens)
        matches.sort(key=lambda m: (m[2], -m[3]))
        source = codebook.index.source
        for _g, code, s, e, rx in matches:
            if code:
                self.cue_at[(code, s, e)] = source[rx]
        return matches

    def src(self, s: int, e: int) -> tuple[str, tuple[int, int]]:
        """The words as written, and their span, for a span of the normalised answer."""
        if self.omap is None:
            return self.text[s:e], (s, e)
        os_, oe = self.omap[s], self.omap[e]
        return self.text[os_:oe], (os_, oe)

    def evidence(
        self,
        code: str,
        s: int,
        e: int,
        neg: bool,
        kind: EvidenceKind,
        trig: tuple[int, int] | None = None,
    ) -> Evidence:
        words, span = self.src(s, e)
        trigger = None if trig is None else self.src(*trig)[0]
        return Evidence(code, words, span, neg, kind, trigger, self.cue_at.get((code, s, e)))

    def clause_index(self, pos: int) -> int:
        return max(bisect_right(self.clause_starts, pos) - 1, 0)

    def negator_before(self, start: int, window: int = 3, strict: bool = False) -> int | None:
        """Start of the closest negator among the few words before ``start``, in its clause.

        ``strict`` (for self-contained cues): only words that do not change the subject may sit
        between the negator and the cue, so "it's not tokenistic" and "never had any damp" are
        denials but "the landlord won't fix the damp" is not.
        """
        tokens, tok_starts = self.tokens, self.tok_starts
        cstart = self.clauses[self.clause_index(start)][0]
        i = bisect_left(tok_starts, start)
        # A cue starting mid-word ("n't very confident" in "aren't") carries its own negator,
        # so the word it starts in does not count as a negator before it.
        if i > 0 and tokens[i - 1][1] > start:
            i -= 1
        lo = max(bisect_left(tok_starts, cstart), i - window)
        for j in range(i - 1, lo - 1, -1):
            if _is_negator(tokens[j][2], self.negators):
                return tokens[j][0]
            if strict and tokens[j][2] not in _TRANSPARENT:
                return None
        return None


def rule_code(text: str, codebook: Codebook) -> Coding:
    """The rules' coding of one answer (no model)."""
    r = _Reading(text, codebook)
    matches = r.scan(codebook)
    evidence, cue_spans = _cue_evidence(r, matches)
    _deny_overlapping_praise(evidence, cue_spans, codebook.success_set)
    evidence += _topic_evidence(r, matches, cue_spans)
    evidence.sort(key=lambda ev: (ev.span, ev.code))
    strength = strengths(evidence)
    codes = tuple(sorted(strength))
    confidence = round(min(strength.values()), 3) if strength else 1.0
    doubtful = (
        confidence < DOUBTFUL_BELOW
        or any(ev.negated for ev in evidence)
        or any(ev.kind in ("contrast", "headline") for ev in evidence)
    )
    return Coding(codes, tuple(evidence), confidence, doubtful)


def _cue_evidence(
    r: _Reading, matches: list[Match]
) -> tuple[list[Evidence], list[tuple[int, int]]]:
    """Strong cues: they count on their own unless a negator sits just before them. Also the
    spans the kept cues explain."""
    evidence: list[Evidence] = []
    cue_spans: list[tuple[int, int]] = []
    for group, code, s, e, _rx in matches:
        if group == CUE:
            neg = r.negator_before(s, strict=True) is not None
            evidence.append(r.evidence(code, s, e, neg, "cue"))
            if not neg:
                cue_spans.append((s, e))
        elif group == NEG_CUE:
            neg_at = r.negator_before(s)
            if neg_at is not None:
                ev = r.evidence(code, neg_at, e, False, "cue")
                evidence.append(replace(ev, cue=r.cue_at.get((code, s, e))))
                cue_spans.append((neg_at, e))
    return evidence, cue_spans


def _deny_overlapping_praise(
    evidence: list[Evidence], cue_spans: list[tuple[int, int]], success: frozenset[str]
) -> None:
    """Overlapping praise matches of one success code are one statement: if any of them is
    negated, all are ("we don't all want the same thing" must not keep "same thing"). Not for
    barriers, whose cues often carry their own negation ("don't hear about ... until")."""
    for i, ev in enumerate(evidence):
        if (
            ev.code in success
            and not ev.negated
            and any(
                o.negated
                and o.code == ev.code
                and o.span[0] < ev.span[1]
                and ev.span[0] < o.span[1]
                for o in evidence
            )
        ):
            evidence[i] = Evidence(ev.code, ev.words, ev.span, True, ev.kind, ev.trigger, ev.cue)
            cue_spans.remove(ev.span)


@dataclass
class _Clauses:
    """Per clause: the problem and deficit markers (start, end, points forward), whether a
    negated problem denies it, and its topics; and the absence words of the whole answer."""

    markers: list[list[tuple[int, int, bool]]]
    denied: list[bool]
    topics: list[list[Topic]]
    absences: list[tuple[int, int]]


def _read_clauses(
    r: _Reading, matches: list[Match], cue_spans: list[tuple[int, int]]
) -> tuple[_Clauses, list[Topic]]:
    """Problem markers per clause; a negated one denies the clause ("no problems with X").
    Deficit markers ("need", "lack of", "can't find") point forward at their object; problem
    words ("X is a nightmare") point back at their subject. Each falls back to the other side.
    Words already explained by a cue are not reused for topic inference, so "we can't pay
    wages until the grant lands" stays int.finance and does not also become funding."""
    n = len(r.clauses)
    found = _Clauses([[] for _ in range(n)], [False] * n, [[] for _ in range(n)], [])
    raw_topics: list[Topic] = []
    for group, code, s, e, _rx in matches:
        if group in (CUE, NEG_CUE) or any(cs <= s and e <= ce for cs, ce in cue_spans):
            continue
        if group == TOPIC:
            raw_topics.append((code, s, e))
        elif group == ABSENCE:
            found.absences.append((s, e))
        elif group == DEFICIT:
            found.markers[r.clause_index(s)].append((s, e, True))
        elif (neg_at := r.negator_before(s)) is not None:
            idx = r.clause_index(s)
            found.denied[idx] = True
            # The negator of a denied problem ("never had a problem") is not also a deficit.
            found.markers[idx] = [m for m in found.markers[idx] if not (neg_at <= m[0] < s)]
        else:
            found.markers[r.clause_index(s)].append((s, e, False))
    # A topic inside a longer topic of another code is part of that phrase ("write funding
    # bids" is about skills, not funding).
    topics = [
        t
        for t in raw_topics
        if not any(
            o is not t and o[1] <= t[1] and t[2] <= o[2] and o[2] - o[1] > t[2] - t[1]
            for o in raw_topics
        )
    ]
    for t in topics:
        found.topics[r.clause_index(t[1])].append(t)
    return found, topics


def _triggers(found: _Clauses) -> dict[Topic, tuple[int, int]]:
    """The marker pointing at each topic it makes a barrier (within 60 characters)."""
    trigger_of: dict[Topic, tuple[int, int]] = {}
    for idx, marks in enumerate(found.markers):
        for ms, me, forward in marks:
            after = [t for t in found.topics[idx] if t[1] >= me and t[1] - me <= 60]
            before = [t for t in found.topics[idx] if t[2] <= ms and ms - t[2] <= 60]
            targets = (after or before) if forward else (before or after)
            for t in targets:
                trigger_of.setdefault(t, (ms, me))
    return trigger_of


def _topic_evidence(
    r: _Reading, matches: list[Match], cue_spans: list[tuple[int, int]]
) -> list[Evidence]:
    """Topics need a marker pointing at them, an absence word right before them, or a
    contrast with a denied clause just before."""
    found, topics = _read_clauses(r, matches, cue_spans)
    trigger_of = _triggers(found)
    norm, denied = r.norm, found.denied
    evidence: list[Evidence] = []
    for t in sorted(topics, key=lambda t: t[1]):
        code, s, e = t
        idx = r.clause_index(s)
        cs, ce = r.clauses[idx]
        ab = _absence_before(found.absences, s, e, r.tok_starts, cs)
        if ab is not None:
            evidence.append(r.evidence(code, s, e, False, "topic", ab))
        elif t in trigger_of:
            evidence.append(r.evidence(code, s, e, False, "topic", trigger_of[t]))
        elif denied[idx]:
            evidence.append(r.evidence(code, s, e, True, "topic"))
        elif (neg_at := r.negator_before(s, window=2)) is not None:
            if _BUT_NOT.search(norm, 0, neg_at + 3) and norm.startswith("not", neg_at):
                # "we have the passion but not the skills": "but not" is a lack, not a denial.
                evidence.append(r.evidence(code, s, e, False, "topic", (neg_at, neg_at + 3)))
                continue
            # "it's not the money, ...": the topic itself is denied, which sets up a contrast.
            denied[idx] = True
            evidence.append(r.evidence(code, s, e, True, "topic"))
        elif idx > 0 and denied[idx - 1] and not found.markers[idx - 1]:
            seg = norm[cs:ce]
            if _CONTRAST_HEAD.search(seg) or _CONTRAST_TAIL.search(seg):
                evidence.append(r.evidence(code, s, e, False, "contrast"))
            elif _is_headline(norm, cs, ce, found.topics[idx]):
                evidence.append(r.evidence(code, s, e, False, "headline"))
        elif _is_headline(norm, cs, ce, found.topics[idx]):
            # A bare subject as the whole clause answers "what gets in the way?": "Cash flow.",
            # "Time, money and volunteers", "the forms, the meetings... pick one".
            evidence.append(r.evidence(code, s, e, False, "headline"))
    return evidence


def strengths(evidence: Iterable[Evidence]) -> dict[str, float]:
    """Per code, how strongly the rules' evidence speaks for it (0..1): independent pieces of
    evidence combine as 1 - prod(1 - weight)."""
    strength: dict[str, float] = {}
    for ev in evidence:
        if ev.negated or ev.overruled or ev.kind == "model":
            continue
        absent = ev.kind == "topic" and ev.trigger is not None and _is_absence(ev.trigger)
        kind = "absence" if absent else ev.kind
        strength[ev.code] = 1 - (1 - strength.get(ev.code, 0.0)) * (1 - _WEIGHTS[kind])
    return strength


_BUT_NOT = re.compile(r"\bbut\s+not\s*$")
# Words that may sit between a negator and a self-contained cue without changing what the
# negator denies ("not *really* tokenistic", "never *had any* damp").
_TRANSPARENT = wordset(
    "a an the any at all really very so too that this it its it's is are was were be been",
    "being ever had have has got get getting much of our us we quite particularly exactly",
    "just even actually still yet as",
)
# Words a bare heading may carry besides its subject ("The paperwork.", "time, money and ...").
_FILLER = wordset(
    "a an the our and or of more any just lack also too plus simple as that honestly",
    "mainly mostly probably definitely basically really 1 2 3 4 5 etc",
)


_HEAD_PUNCT = frozenset(".,;:!?\n()-\u2013\u2014")


def _is_headline(norm: str, cs: int, ce: int, topics: list[tuple[str, int, int]]) -> bool:
    """A clause that is nothing but subjects and filler words ("Cash flow", "the forms").

    It must stand between punctuation marks (or the ends of the answer), not be one half of a
    sentence split at a conjunction ("so the rent and the post are at risk").
    """
    before = norm[:cs].rstrip()
    after = norm[ce:].lstrip()
    if (before and before[-1] not in _HEAD_PUNCT) or (after and after[0] not in _HEAD_PUNCT):
        return False
    covered = [(s, e) for _, s, e in topics]
    for m in _TOKEN.finditer(norm, cs, ce):
        if m.group() in _FILLER:
            continue
        if not any(s <= m.start() and m.end() <= e for s, e in covered):
            return False
    return bool(covered)


def _is_absence(trigger: str) -> bool:
    return trigger.lower().split()[0] in {"no", "zero", "without", "nor", "lack", "lost"}


def _absence_before(
    absences: list[tuple[int, int]], start: int, end: int, tok_starts: list[int], clause_start: int
) -> tuple[int, int] | None:
    """An absence word ending at most one word before the topic, in the same clause."""
    first = bisect_left(tok_starts, start)
    for a_s, a_e in absences:
        if a_s < clause_start or a_e > start:
            continue
        if first - bisect_left(tok_starts, a_e) <= 1:
            return (a_s, a_e)
    return None


def explain(coding: Coding) -> str:
    """One line for coordinators: 'ext.funding: 'grant', 'cash' ; int.capacity: 'volunteers''."""
    if not coding.codes:
        dropped = [f"'{ev.words}' ({ev.code})" for ev in coding.evidence if ev.negated]
        aside = [f"'{ev.words}' ({ev.code})" for ev in coding.evidence if ev.overruled]
        return (
            "no code"
            + (f" (negated: {', '.join(dropped)})" if dropped else "")
            + (f" (set aside as unlikely: {', '.join(aside)})" if aside else "")
        )
    parts: list[str] = []
    for code in coding.codes:
        words: list[str] = []
        for ev in coding.evidence:
            if ev.code == code and not ev.negated and not ev.overruled:
                w = f"'{ev.words}'"
                if ev.kind in ("contrast", "headline", "model"):
                    w += {"contrast": " (by contrast)", "headline": " (as a heading)"}.get(
                        ev.kind, " (model)"
                    )
                if w not in words:
                    words.append(w)
        parts.append(f"{code}: {', '.join(words)}")
    line = " ; ".join(parts)
    dropped = sorted({f"'{ev.words}' ({ev.code})" for ev in coding.evidence if ev.negated})
    if dropped:
        line += f" [negated: {', '.join(dropped)}]"
    aside = sorted({f"'{ev.words}' ({ev.code})" for ev in coding.evidence if ev.overruled})
    if aside:
        line += f" [set aside as unlikely: {', '.join(aside)}]"
    if coding.doubtful:
        line += " [doubtful]"
    return line
