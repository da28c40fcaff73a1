"""Disclosure control for a period (a quarter): the period rule of bot.digests.disclosure.

A period is made of the rounds releasable on their own, and shows a figure only where every
one of its rounds showed its part, so it is a sum of figures already released: a period less
a round reveals nothing new.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from bot.coding.codebook import Codebook
from bot.digests.digest import (
    NOT_GIVEN,
    Barriers,
    ChoiceCount,
    Dimension,
    OrganisationDetail,
    Participation,
    QuestionSummary,
    ReachGap,
    SegmentRow,
    Text,
    said,
)
from bot.digests.disclosure import (
    MERGED_LABEL,
    NOT_REACH,
    SHOWN_FROM_TWO,
    RoundRelease,
    awaiting_shown,
    code_rows,
    dimension_label,
    participation_of,
    rate,
    scale_stats,
)
from bot.digests.figures import OrganisationFigures, QuestionFigures, RoundFigures
from bot.digests.segments import CHAT_LABEL
from bot.kernel.i18n import N_


def release_period(
    rounds: Sequence[RoundRelease],
    k: int,
    codebook: Codebook,
    *,
    audience: str,
    organisation_names: Mapping[int, str],
    own_organisation: int | None = None,
    previous: RoundRelease | None = None,
    previous_label: Text | None = None,
) -> RoundRelease:
    """The period made of the rounds releasable on their own (the others are left out, and
    said to be), each figure shown only where every round showed its part."""
    kept = [r for r in rounds if r.releasable]
    figures = RoundFigures(
        round_id=0,
        invited=sum(r.figures.invited for r in kept),
        responded=sum(r.figures.responded for r in kept),
        completed=sum(r.figures.completed for r in kept),
        segments={},
        organisations={},
        questions=[],
        codes=_sum_dicts(r.figures.codes for r in kept),
        quotes=[q for r in kept for q in r.figures.quotes],
    )
    notes: list[Text] = []
    left_out = [r.figures.round_id for r in rounds if not r.releasable]
    if left_out:
        notes.append(
            said(
                N_("Rounds with fewer than {k} respondents are left out of the period: {rounds}."),
                k=k,
                rounds=", ".join(str(i) for i in left_out),
            )
        )
    participation, rows_of = _period_participation(kept, figures, k, audience, organisation_names)
    questions = _period_questions(kept, k)
    shown_everywhere = {code for code in figures.codes if all(_code_shown(r, code) for r in kept)}
    compare = previous is not None and previous.releasable
    rows = code_rows(
        {c: figures.codes[c] for c in shown_everywhere},
        figures.responded,
        codebook,
        previous if compare else None,
    )
    hidden = sum(1 for c, n in figures.codes.items() if n and c not in shown_everywhere)
    if hidden or any(q.suppressed or q.merged_hidden or q.merged for q in questions):
        notes.append(
            said(
                N_(
                    "A figure is shown for the period only where each of its rounds showed its "
                    "own part, so nothing under {k} can be worked out by comparing them."
                ),
                k=k,
            )
        )
    # The period's sum only when every round showed its own: else it less the others shown
    # would give away the one held back.
    awaiting = sum(r.figures.awaiting_coding for r in kept)
    each_shown = all(awaiting_shown(r.figures.awaiting_coding, k) is not None for r in kept)
    barriers = Barriers(
        base=figures.responded if kept else None,
        rows=[r for r in rows if r.family != "success"],
        successes=[r for r in rows if r.family == "success"],
        hidden_codes=hidden,
        compared_with=previous_label if compare else None,
        awaiting_coding=awaiting if each_shown or awaiting == 0 else None,
    )
    organisation = None
    if own_organisation is not None:
        organisation = _period_organisation(
            kept, own_organisation, organisation_names.get(own_organisation, ""), codebook, k
        )
    return RoundRelease(
        figures, bool(kept), participation, rows_of, questions, barriers, organisation, notes
    )


def _sum_dicts(dicts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: dict[str, int] = {}
    for d in dicts:
        for key, n in d.items():
            total[key] = total.get(key, 0) + n
    return total


def _code_shown(r: RoundRelease, code: str) -> bool:
    """Did this round's release show the code's count (a code nobody named is shown as none)?"""
    if not r.figures.codes.get(code, 0):
        return True
    return any(row.code == code for row in r.barriers.rows + r.barriers.successes)


def _segments(r: RoundRelease, key: str) -> dict[str, list[int]]:
    """A round's cells for a dimension; a round where nobody had a value for it has them all
    under "not given" (under "Chat" for the channel: all its answers came by the chat)."""
    f = r.figures
    everyone = CHAT_LABEL if key == "channel" else NOT_GIVEN
    return f.segments.get(key) or {everyone: [f.invited, f.responded, f.completed]}


def _row(r: RoundRelease, key: str, label: str) -> SegmentRow | None:
    """The round's own row for a segment label, when it was shown on its own (not merged);
    for a round without the dimension, its totals (everyone "not given")."""
    if key not in r.figures.segments or len(r.figures.segments[key]) == 1:
        # Everyone under one label (or none for a round without the dimension): the totals.
        p = r.participation
        return SegmentRow(label, p.invited, p.responded, p.completed, None)
    if r.rows_of.get(key, {}).get(label) != label:
        return None
    for d in r.participation.dimensions:
        if d.key == key:
            return next((row for row in d.rows if row.label == label), None)
    return None


def _period_participation(
    kept: Sequence[RoundRelease],
    figures: RoundFigures,
    k: int,
    audience: str,
    organisation_names: Mapping[int, str],
) -> tuple[Participation, dict[str, dict[str, str]]]:
    completed_all = all(r.participation.completed is not None for r in kept)
    completed = figures.completed if kept and completed_all else None
    dimensions: list[Dimension] = []
    rows_of: dict[str, dict[str, str]] = {}
    gaps: list[ReachGap] = []
    keys = list(dict.fromkeys(key for r in kept for key in r.figures.segments))
    for key in keys:
        totals: dict[str, list[int]] = {}
        for r in kept:
            for label, cells in _segments(r, key).items():
                acc = totals.setdefault(label, [0, 0, 0])
                for i in range(3):
                    acc[i] += cells[i]
        rows: list[SegmentRow] = []
        rest = [0, 0, 0]
        rest_labels: list[str] = []
        rows_of[key] = {}
        for label, (n, resp, comp) in totals.items():
            parts = [_row(r, key, label) for r in kept if _segments(r, key).get(label, [0])[0]]
            if parts and all(p is not None and p.responded is not None for p in parts):
                comps_shown = completed is not None and all(
                    p is not None and p.completed is not None for p in parts
                )
                rows.append(
                    SegmentRow(label, n, resp, comp if comps_shown else None, rate(resp, n))
                )
                rows_of[key][label] = label
            else:
                rows_of[key][label] = MERGED_LABEL
                rest_labels.append(label)
                for i, x in enumerate((n, resp, comp)):
                    rest[i] += x
            if resp < k and label != NOT_GIVEN and key not in NOT_REACH:
                gaps.append(ReachGap(key, label, resp == 0 and n >= k, n))
        if rest_labels:
            # The rest is the total less the rows shown: already known, so shown.
            shown_c = all(row.completed is not None for row in rows) and completed is not None
            rows.append(
                SegmentRow(
                    MERGED_LABEL,
                    rest[0],
                    rest[1],
                    rest[2] if shown_c else None,
                    rate(rest[1], rest[0]),
                    merged=True,
                )
            )
        rows.sort(key=lambda s: (s.merged, s.label == NOT_GIVEN, -(s.rate or 0), s.label))
        note = said(N_("Some segments were merged.")) if rest_labels else None
        if key in SHOWN_FROM_TWO and len(totals) < 2:
            continue
        dimensions.append(Dimension(key, dimension_label(key), rows, note))
    totals = (figures.invited, figures.responded if kept else None, completed)
    participation = participation_of(
        totals, dimensions, gaps, _sum_org_responded(kept), k, audience, organisation_names
    )
    return participation, rows_of


def _sum_org_responded(kept: Sequence[RoundRelease]) -> dict[int, int]:
    per_org: dict[int, int] = {}
    for r in kept:
        for org, o in r.figures.organisations.items():
            per_org[org] = per_org.get(org, 0) + o.responded
    return per_org


def _period_questions(kept: Sequence[RoundRelease], k: int) -> list[QuestionSummary]:
    groups: dict[tuple[str, str], list[tuple[QuestionFigures, QuestionSummary]]] = {}
    for r in kept:
        for q, summary in zip(r.figures.questions, r.questions, strict=True):
            groups.setdefault((q.slug, q.key), []).append((q, summary))
    return [_period_question(parts, k) for parts in groups.values()]


def _period_question(
    parts: Sequence[tuple[QuestionFigures, QuestionSummary]], k: int
) -> QuestionSummary:
    latest, _ = parts[-1]
    summaries = [s for _, s in parts]
    summary = QuestionSummary(
        key=latest.key,
        text=latest.text,
        type=latest.type,
        answered=None,
        skipped=None,
        suppressed=True,
        consultation=latest.consultation,
        branch_withheld=any(s.branch_withheld for s in summaries),
        slug=latest.slug,
    )
    if any(s.suppressed or s.answered is None for s in summaries):
        return summary
    n = sum(q.answered for q, _ in parts)
    summary.answered, summary.suppressed = n, False
    if all(s.asked is not None for s in summaries):
        summary.asked = sum(s.asked or 0 for s in summaries)
    if all(s.skipped is not None for s in summaries):
        summary.skipped = sum(q.skipped for q, _ in parts)
    if latest.type in ("single", "yesno", "multi"):
        counts = _sum_dicts(q.choices for q, _ in parts)
        labels = dict(latest.options)
        for q, _ in parts:
            labels = {**dict(q.options), **labels}
        shown = [
            key
            for key in labels
            if all(
                any(c.key == key for c in s.choices) or not q.choices.get(key, 0) for q, s in parts
            )
        ]
        summary.choices = sorted(
            (
                ChoiceCount(key, labels[key], counts.get(key, 0), counts.get(key, 0) / n)
                for key in shown
            ),
            key=lambda c: -c.count,
        )
        other = sum(n_ for key, n_ in counts.items() if key not in shown)
        if other and latest.type != "multi":
            summary.merged = ChoiceCount("other", MERGED_LABEL, other, other / n)
        summary.merged_hidden = bool(other) and latest.type == "multi"
    elif latest.type == "scale" and all(s.scale is not None for s in summaries):
        values = _sum_dicts(q.values for q, _ in parts)
        numbers = sorted((float(v), c) for v, c in values.items() if c)
        summary.scale = scale_stats(numbers, k, latest.min_label, latest.max_label)
    return summary


def _period_organisation(
    kept: Sequence[RoundRelease], org_id: int, name: str, codebook: Codebook, k: int
) -> OrganisationDetail:
    details = [r.organisation for r in kept]
    orgs = [r.figures.organisations.get(org_id) or OrganisationFigures(0, 0, 0) for r in kept]
    invited = sum(o.invited for o in orgs)
    if not kept or any(
        d is None or (o.invited and d.responded is None) for d, o in zip(details, orgs, strict=True)
    ):
        # A round held the organisation's figure back, so the period does too, even a zero:
        # that round's people were fewer than k, and a zero says what each of them did.
        return OrganisationDetail(name, invited, None, None, [], True)
    responded = sum(o.responded for o in orgs)
    codes = _sum_dicts(o.codes for o in orgs)
    shown = {
        code: n
        for code, n in codes.items()
        if all(
            not o.codes.get(code, 0) or any(row.code == code for row in d.barriers)
            for o, d in zip(orgs, details, strict=True)
            if d is not None
        )
    }
    rows = [r for r in code_rows(shown, responded, codebook, None) if r.family != "success"]
    return OrganisationDetail(name, invited, responded, None, rows, False)
