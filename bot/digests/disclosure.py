"""Disclosure control: the one place that decides which figures about people a reader may see.

Every digest (Telegram, HTML, Markdown, charts, CSV), `/round N` and `/rounds` take their
figures from here; nothing else turns counts of people into output. The rules, as statistical
offices practise primary and secondary cell suppression, with k from the configuration:

- A cell is a count of people. It is shown when it is 0 or at least k ("safe").
- Cells that add up to a shown total (segments of one dimension; the options of a single-choice
  question) are suppressed together: when the hidden ones would add up to fewer than k, the
  smallest shown ones are hidden too, so no hidden cell can be had by subtraction.
- A yes/no property of people (named a barrier; ticked an option of a multi-choice question)
  is shown only when both those who have it and those who do not are safe.
- A lead's own organisation is shown only where the rest of the partnership, in every group the
  organisation sits in, is safe too, so subtracting one from the other tells nothing.
- A mean or spread comes from at least k answers; the lowest and highest values are shown only
  when at least k people gave them.
- A round with fewer than k respondents releases participation figures only.
- A period (a quarter) is built from rounds that were releasable on their own, and shows a
  figure only where every one of its rounds showed its part: a period is then a sum of figures
  already released, and a period minus a round reveals nothing new (bot.digests.periods).
Figures that are shown are exact; nothing is rounded away or made noisy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from bot.coding.codebook import Codebook
from bot.consultations.conditions import Not, Selected, parse
from bot.digests.atoms import Atoms
from bot.digests.digest import (
    NOT_GIVEN,
    BarrierRow,
    Barriers,
    ChoiceCount,
    CodeLabel,
    Dimension,
    OrganisationDetail,
    Participation,
    QuestionSummary,
    ReachGap,
    ScaleStats,
    SegmentRow,
    Text,
    said,
)
from bot.digests.figures import OrganisationFigures, QuestionFigures, RoundFigures
from bot.digests.segments import DIMENSIONS as SEGMENT_DIMENSIONS
from bot.kernel.i18n import N_

# A label as counted (a key, as NOT_GIVEN): put into the reader's words when shown.
MERGED_LABEL = N_("Other (merged)")
DIMENSION_LABELS = dict(SEGMENT_DIMENSIONS)
# Dimensions of how people were asked, not of who they are: nobody is "not reached" by one.
NOT_REACH = frozenset({"channel"})
# Dimensions shown only with two labels or more: "everyone in English" is no breakdown (the one
# row is the total). Kept in the figures all the same, so a quarter counts each round's people
# under their language.
SHOWN_FROM_TWO = frozenset({"language"})

T = TypeVar("T")


def dimension_label(key: str) -> Text:
    """A dimension's name, said in the reader's language (an unknown key reads as itself)."""
    return said(DIMENSION_LABELS[key]) if key in DIMENSION_LABELS else key


def safe(count: int, k: int) -> bool:
    """May a count of people be shown? Zero describes nobody."""
    return count == 0 or count >= k


def hidden_in_partition(counts: Mapping[str, int], k: int) -> set[str]:
    """The cells of a table whose total is shown that must be hidden: those under k, and then
    the smallest others until the hidden ones add up to 0 or k or more."""
    hidden = {key for key, n in counts.items() if not safe(n, k)}
    while not safe(sum(counts[key] for key in hidden), k):
        rest = sorted((n, key) for key, n in counts.items() if key not in hidden and n > 0)
        if not rest:
            break  # the total itself is under k: the caller holds it back
        hidden.add(rest[0][1])
    return hidden


def awaiting_shown(count: int, k: int) -> int | None:
    """Answers waiting to be coded, as shown: a count of answers, not people, but each is one
    person's (a set rarely asks more than one free text), so it gets a count of people's rule:
    0 or k and more; otherwise None ("fewer than k")."""
    return count if safe(count, k) else None


def binary_shown(count: int, base: int, k: int) -> bool:
    """A yes/no property: shown when those with it and those without are both safe."""
    return safe(count, k) and safe(base - count, k)


@dataclass
class Merged(Generic[T]):
    kept: list[T]
    merged: list[T]  # folded into "Other (merged)"


def merge_small(items: Sequence[T], count: Callable[[T], int], k: int) -> Merged[T]:
    """Fold the items with fewer than k (invited people, for segments) into one cell; when that
    cell is itself under k the next smallest item joins it."""
    hidden = hidden_in_partition({str(i): count(item) for i, item in enumerate(items)}, k)
    return Merged(
        [item for i, item in enumerate(items) if str(i) not in hidden],
        [item for i, item in enumerate(items) if str(i) in hidden],
    )


def rate(part: int | None, whole: int) -> float | None:
    return None if part is None or whole == 0 else part / whole


# --------------------------------------------------------------------------- one round


@dataclass
class RoundRelease:
    """What one reader may see of one round, with the round's figures beside it (so a period
    can tell which cells every round showed)."""

    figures: RoundFigures
    releasable: bool
    participation: Participation
    rows_of: dict[str, dict[str, str]]  # dimension -> segment label -> the row it is shown in
    questions: list[QuestionSummary]
    barriers: Barriers
    organisation: OrganisationDetail | None
    notes: list[Text]


def release_round(
    figures: RoundFigures,
    k: int,
    codebook: Codebook,
    *,
    audience: str,
    organisation_names: Mapping[int, str],
    own_organisation: int | None = None,
    previous: RoundRelease | None = None,
    previous_label: Text | None = None,
) -> RoundRelease:
    notes: list[Text] = []
    releasable = figures.responded >= k
    participation, rows_of = _participation(figures, k, audience, organisation_names, notes)
    if not releasable:
        notes.append(
            said(
                N_(
                    "Fewer than {k} people answered this round, so only who took part is "
                    "shown, not what they said."
                ),
                k=k,
            )
        )
    questions: list[QuestionSummary] = []
    earlier: dict[str, tuple[QuestionFigures, QuestionSummary]] = {}
    for q in figures.questions:
        base_shown = asked_shown(q, earlier, k)
        summary = _question(q, k, releasable and base_shown)
        summary.branch_withheld = releasable and not base_shown
        questions.append(summary)
        earlier[q.key] = (q, summary)
    if any(q.suppressed or q.merged_hidden or q.merged for q in questions) and releasable:
        notes.append(
            said(
                N_(
                    "Questions answered by fewer than {k} people are not shown; answer "
                    'options chosen by fewer than {k} are merged into "{merged}" or held back.'
                ),
                k=k,
                merged=said(MERGED_LABEL),
            )
        )
    if any(q.branch_withheld for q in questions):
        notes.append(
            said(
                N_(
                    "A question asked only after certain earlier answers is shown only when "
                    "those asked it can be counted from figures already shown: here the "
                    "answers it depends on were too few, or combined too finely."
                )
            )
        )
    barriers = _barriers(figures, k, codebook, releasable, previous, previous_label, notes)
    organisation = None
    if own_organisation is not None:
        organisation = _organisation(
            figures,
            own_organisation,
            organisation_names.get(own_organisation, ""),
            k,
            participation,
            rows_of,
            barriers,
            releasable,
            codebook,
        )
    return RoundRelease(
        figures, releasable, participation, rows_of, questions, barriers, organisation, notes
    )


def release_participation(
    f: RoundFigures, k: int, audience: str, organisation_names: Mapping[int, str]
) -> Participation:
    """Who took part, as a reader may see it (also /round N's live figures)."""
    return _participation(f, k, audience, organisation_names, [])[0]


def _participation(
    f: RoundFigures,
    k: int,
    audience: str,
    organisation_names: Mapping[int, str],
    notes: list[Text],
) -> tuple[Participation, dict[str, dict[str, str]]]:
    responded = f.responded if f.responded >= k else None
    completed = f.completed if responded is not None and safe(f.completed, k) else None
    rows_of: dict[str, dict[str, str]] = {}
    tables: list[tuple[str, list[tuple[str, list[int], bool]], bool]] = []
    hidden_r: set[tuple[str, str]] = set()
    hidden_c: set[tuple[str, str]] = set()
    for key, raw in f.segments.items():
        if key in SHOWN_FROM_TWO and len(raw) < 2:
            rows_of[key] = {label: label for label in raw}  # the one row: the total, shown
            continue
        merged = merge_small(list(raw.items()), lambda kv: kv[1][0], k)
        cells: list[tuple[str, list[int], bool]] = [(lab, c, False) for lab, c in merged.kept]
        if merged.merged:
            summed = [sum(c[i] for _, c in merged.merged) for i in range(3)]
            cells.append((MERGED_LABEL, summed, True))
        rows_of[key] = {lab: lab for lab, _ in merged.kept}
        rows_of[key].update({lab: MERGED_LABEL for lab, _ in merged.merged})
        tables.append((key, cells, bool(merged.merged)))
        for index, part in ((1, hidden_r), (2, hidden_c)):
            counts = {lab: c[index] for lab, c, _ in cells}
            part.update((key, lab) for lab in hidden_in_partition(counts, k))
            # A zero is shown only for k or more invited (see safe); fewer: held back.
            part.update((key, lab) for lab, c, _ in cells if c[0] < k)
    atoms = Atoms(f, rows_of)
    if responded is not None:
        atoms.audit(hidden_r, 1, k)
        atoms.released(hidden_r, 1, k)
    if completed is not None:
        atoms.audit(hidden_c, 2, k)
        atoms.released(hidden_c, 2, k)
    dimensions: list[Dimension] = []
    gaps: list[ReachGap] = []
    for key, cells, any_merged in tables:
        rows: list[SegmentRow] = []
        for lab, (n, r, c), is_merged in cells:
            shown_r = (key, lab) not in hidden_r and (responded is not None or r == 0)
            resp = r if shown_r else None
            comp = (
                c
                if completed is not None and (key, lab) not in hidden_c and resp is not None
                else None
            )
            rows.append(SegmentRow(lab, n, resp, comp, rate(resp, n), is_merged, 0 < r < k))
            if r < k and lab != NOT_GIVEN and key not in NOT_REACH:
                gaps.append(ReachGap(key, lab, r == 0 and n >= k, n))
        rows.sort(key=lambda s: (s.merged, s.label == NOT_GIVEN, -(s.rate or 0), s.label))
        note = said(N_("Some small segments were merged.")) if any_merged else None
        dimensions.append(Dimension(key, dimension_label(key), rows, note))
    if any(d.note for d in dimensions) or any(
        r.responded is None for d in dimensions for r in d.rows
    ):
        notes.append(
            said(
                N_(
                    'Segments with fewer than {k} people invited are merged into "{merged}"; '
                    "response counts under {k}, and any that would give one away, are not "
                    "shown."
                ),
                k=k,
                merged=said(MERGED_LABEL),
            )
        )
    responded_by = {org: o.responded for org, o in f.organisations.items()}
    totals = (f.invited, responded, completed)
    participation = participation_of(
        totals, dimensions, gaps, responded_by, k, audience, organisation_names
    )
    return participation, rows_of


def participation_of(
    totals: tuple[int, int | None, int | None],
    dimensions: list[Dimension],
    gaps: list[ReachGap],
    responded_by: Mapping[int, int],
    k: int,
    audience: str,
    organisation_names: Mapping[int, str],
) -> Participation:
    invited, responded, completed = totals
    without, few = _organisations_under_k(responded_by, k, organisation_names)
    return Participation(
        invited=invited,
        responded=responded,
        completed=completed,
        rate=rate(responded, invited),
        completion_rate=rate(completed, invited),
        dimensions=dimensions,
        reach_gaps=gaps,
        organisations_without=without if audience == "coordinator" else [],
        organisations_few=few,
    )


def _organisations_under_k(
    responded_by: Mapping[int, int], k: int, organisation_names: Mapping[int, str]
) -> tuple[list[str], int]:
    """Registered organisations that gave fewer than k responses (none, or some), by name,
    and how many there are. Names and words only: no count is given."""
    orgs = set(organisation_names) | set(responded_by)
    few = sorted(
        (organisation_names.get(org, "?"), responded_by.get(org, 0))
        for org in orgs
        if responded_by.get(org, 0) < k
    )
    # "None" against "fewer than k" would tell a small organisation's people apart.
    return [name for name, _ in few], len(few)


def asked_shown(
    q: QuestionFigures, earlier: Mapping[str, tuple[QuestionFigures, QuestionSummary]], k: int
) -> bool:
    """Whether how many were asked `q` may be shown: always for a question asked of everyone;
    for one with a condition, only when that number can already be worked out from what is
    shown of the one question the condition reads (its shown options, one shown tick of a
    multi question or its complement, or a split of a scale's answers with k or more on each
    side). Anything finer (a condition over two questions, or over options held back) is a
    cross-tabulation the digest never shows, and the question's own counts would give it away.
    """
    if not q.condition:
        return True
    condition = parse(q.condition)
    names = condition.names()
    if len(names) != 1 or condition.holds({}):
        return False
    (name,) = names
    if name not in earlier:
        return False
    read, shown = earlier[name]
    if shown.suppressed or shown.answered is None or q.asked is None:
        return False
    on_show = {c.key for c in shown.choices}
    if read.type in ("single", "yesno"):
        picked = [key for key, _ in read.options if condition.holds({name: key})]
        return all(key in on_show for key in picked) and q.asked == sum(
            read.choices.get(key, 0) for key in picked
        )
    if read.type == "multi":
        tree = condition.tree
        inner = tree.inner if isinstance(tree, Not) else tree
        return isinstance(inner, Selected) and inner.option in on_show
    if read.type == "scale":
        return binary_shown(q.asked, read.answered, k)
    return False


def _question(q: QuestionFigures, k: int, releasable: bool) -> QuestionSummary:
    shown = releasable and q.answered >= k
    summary = QuestionSummary(
        key=q.key,
        text=q.text,
        type=q.type,
        answered=q.answered if shown else None,
        skipped=q.skipped if shown and safe(q.skipped, k) else None,
        suppressed=not shown,
        consultation=q.consultation,
        asked=q.asked if shown else None,
        slug=q.slug,
    )
    if not shown:
        return summary
    n = q.answered
    if q.type in ("single", "yesno"):
        counts = {key: q.choices.get(key, 0) for key, _ in q.options}
        hidden = hidden_in_partition(counts, k)
        summary.choices = sorted(
            (
                ChoiceCount(key, lab, counts[key], counts[key] / n)
                for key, lab in q.options
                if key not in hidden
            ),
            key=lambda c: -c.count,
        )
        other = sum(counts[key] for key in hidden)
        if other:
            summary.merged = ChoiceCount("other", MERGED_LABEL, other, other / n)
    elif q.type == "multi":
        cells = [(key, lab, q.choices.get(key, 0)) for key, lab in q.options]
        summary.choices = sorted(
            (ChoiceCount(key, lab, c, c / n) for key, lab, c in cells if binary_shown(c, n, k)),
            key=lambda c: -c.count,
        )
        summary.merged_hidden = any(c and not binary_shown(c, n, k) for _, _, c in cells)
    elif q.type == "scale":
        summary.scale = scale_stats(q.numbers(), k, q.min_label, q.max_label)
    return summary


def scale_stats(
    values: Sequence[tuple[float, int]], k: int, min_label: str | None, max_label: str | None
) -> ScaleStats | None:
    """Mean and spread of at least k numbers; lowest and highest only when k people share them."""
    n = sum(c for _, c in values)
    if n < k:
        return None
    mean = sum(v * c for v, c in values) / n
    variance = sum(c * (v - mean) ** 2 for v, c in values) / (n - 1) if n > 1 else 0.0
    lowest, highest = values[0], values[-1]
    return ScaleStats(
        n=n,
        mean=mean,
        sd=math.sqrt(variance),
        min=lowest[0] if lowest[1] >= k else None,
        max=highest[0] if highest[1] >= k else None,
        min_label=min_label,
        max_label=max_label,
    )


def _barriers(
    f: RoundFigures,
    k: int,
    codebook: Codebook,
    releasable: bool,
    previous: RoundRelease | None,
    previous_label: str | None,
    notes: list[Text],
) -> Barriers:
    if not releasable:
        return Barriers(None, [], [], 0, None)
    shown = {c: n for c, n in f.codes.items() if binary_shown(n, f.responded, k)}
    compare = previous is not None and previous.releasable
    rows = code_rows(shown, f.responded, codebook, previous if compare else None)
    hidden = sum(1 for c, n in f.codes.items() if n and c not in shown)
    if hidden:
        notes.append(
            said(
                N_(
                    "Barriers and success factors named by fewer than {k} people (or by all "
                    "but a few) are not shown."
                ),
                k=k,
            )
        )
    return Barriers(
        base=f.responded,
        rows=[r for r in rows if r.family != "success"],
        successes=[r for r in rows if r.family == "success"],
        hidden_codes=hidden,
        compared_with=previous_label if compare else None,
        awaiting_coding=awaiting_shown(f.awaiting_coding, k),
    )


def code_rows(
    shown: Mapping[str, int], base: int, codebook: Codebook, previous: RoundRelease | None
) -> list[BarrierRow]:
    """Rows for the codes shown, most named first; with a previous release, the change from
    the share it showed (0 for a code nobody named; none for one it held back)."""
    before: dict[str, float] = {}
    if previous is not None:
        before = {c: 0.0 for c in shown if not previous.figures.codes.get(c, 0)}
        before.update(
            {r.code: r.share for r in previous.barriers.rows + previous.barriers.successes}
        )
    rows = [
        BarrierRow(
            code,
            CodeLabel(codebook, code),
            codebook[code].family,
            n,
            n / base if base else 0.0,
            before.get(code),
        )
        for code, n in shown.items()
        if code in codebook and n
    ]
    return sorted(rows, key=lambda r: (-r.respondents, r.code))


def _organisation(
    f: RoundFigures,
    org_id: int,
    name: str,
    k: int,
    participation: Participation,
    rows_of: dict[str, dict[str, str]],
    barriers: Barriers,
    releasable: bool,
    codebook: Codebook,
) -> OrganisationDetail:
    o = f.organisations.get(org_id) or OrganisationFigures(0, 0, 0)
    ro = o.responded
    shown = (
        releasable
        and ro >= k
        and safe(f.responded - ro, k)
        and _nested_safely(f, org_id, participation, rows_of, k)
    )
    if not shown:
        none = ro == 0 and o.invited >= k  # a zero of k or more describes nobody in particular
        return OrganisationDetail(name, o.invited, 0 if none else None, None, [], True)
    partnership = {r.code: r.respondents for r in barriers.rows + barriers.successes}
    rest = f.responded - ro
    mine: dict[str, int] = {}
    for code, a in o.codes.items():
        if not binary_shown(a, ro, k):
            continue
        if code in partnership and not binary_shown(partnership[code] - a, rest, k):
            continue
        mine[code] = a
    rows = [r for r in code_rows(mine, ro, codebook, None) if r.family != "success"]
    # How many of them finished is not shown: set against the rows' figures it would need
    # its own checks, and "how many of you answered" is what a lead reads.
    return OrganisationDetail(name, o.invited, ro, None, rows, False)


def _nested_safely(
    f: RoundFigures,
    org_id: int,
    participation: Participation,
    rows_of: dict[str, dict[str, str]],
    k: int,
) -> bool:
    """Set beside the rows shown, the organisation's own count gives no segment and no
    combination of fewer than k away (see Atoms)."""
    atoms = Atoms(f, rows_of)
    hidden = {
        (d.key, r.label) for d in participation.dimensions for r in d.rows if r.responded is None
    }
    return atoms.exposed([*atoms.shown(hidden), atoms.organisation(org_id)], 1, k) is None
