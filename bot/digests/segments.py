"""Who took part: invited, responded and completed, overall, by segment (area, size, sector,
answering as, organisation type) and by organisation, with small segments merged under k.

Who counts as what: invited: an invitation row; responded: the person answered at least one
question; completed: they finished the round.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import JSON, ColumnElement, Text, case, cast, func, or_, select, type_coerce
from sqlalchemy.orm import Session

from bot.digests.digest import NOT_GIVEN, Dimension, Participation, SegmentRow
from bot.digests.privacy import MERGED_LABEL, merge_small, shown
from storage.models import Invitation, InvitationStatus, Organisation

DIMENSIONS: tuple[tuple[str, str], ...] = (
    ("area", "Area"),
    ("size", "Organisation size"),
    ("sector", "Sector"),
    ("answers_as", "Answering as"),
    ("kind", "Organisation type"),
)
ANSWERS_AS_LABELS = {"organisation": "An organisation", "service_user": "A service user"}


def on_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def flag(condition: ColumnElement[bool]) -> Any:
    return func.sum(case((condition, 1), else_=0))


def has_responded() -> ColumnElement[bool]:
    return or_(
        Invitation.started_at.is_not(None),
        Invitation.completed_at.is_not(None),
        Invitation.status.in_([InvitationStatus.STARTED, InvitationStatus.COMPLETED]),
    )


def has_completed() -> ColumnElement[bool]:
    return or_(
        Invitation.completed_at.is_not(None), Invitation.status == InvitationStatus.COMPLETED
    )


def _dimension_column(key: str, segment: Any) -> Any:
    """`key` of an invitation's `segment` (a JSON expression)."""
    if key == "answers_as":
        return segment["answers_as"].as_string()
    # As copied into the invitation when it was made (bot.participation.profile.segment_of), so
    # a digest counts an organisation as it was when asked; the organisation's value today only
    # for invitations made before sector and kind were copied. "" (none at the time) is not given.
    copied = segment[key].as_string()
    return func.nullif(func.coalesce(copied, getattr(Organisation, key)), "")


def rate(part: int | None, whole: int) -> float | None:
    if part is None or whole == 0:
        return None
    return part / whole


def participation(
    session: Session, ids: list[int], k: int, audience: str, notes: list[str]
) -> Participation:
    """Totals, each dimension's segments and the organisations under k, from one pass over the
    counted cells."""
    invited = responded = completed = 0
    per_org: dict[int, int] = defaultdict(int)
    per_value: list[dict[Any, list[int]]] = [{} for _ in DIMENSIONS]
    for org, *values, n, r, c in _cells(session, ids):
        n, r, c = int(n), int(r or 0), int(c or 0)
        invited, responded, completed = invited + n, responded + r, completed + c
        if org is not None:
            per_org[org] += r
        for acc, value in zip(per_value, values, strict=True):
            sums = acc.setdefault(value, [0, 0, 0])
            sums[0] += n
            sums[1] += r
            sums[2] += c
    gaps: list[str] = []
    dimensions = _dimensions(per_value, k, gaps)
    if any(d.note for d in dimensions):
        notes.append(
            f"Segments with fewer than {k} people invited are merged into "
            f'"{MERGED_LABEL}"; response counts under {k} are shown as "fewer than {k}".'
        )
    # Registered organisations with few or no responses in this scope.
    org_rows = session.execute(
        select(Organisation.id, Organisation.name).order_by(Organisation.name)
    ).all()
    few = [(name, per_org.get(org, 0)) for org, name in org_rows if per_org.get(org, 0) < k]
    without = [f"{name} ({'none' if r == 0 else f'fewer than {k}'})" for name, r in few]
    return Participation(
        invited=invited,
        responded=responded,
        completed=completed,
        rate=rate(responded, invited),
        completion_rate=rate(completed, invited),
        dimensions=dimensions,
        reach_gaps=gaps,
        organisations_without=without if audience == "coordinator" else [],
        organisations_few=len(few),
    )


def _cells(session: Session, ids: list[int]) -> list[Any]:
    """(organisation, the DIMENSIONS' values..., invited, responded, completed) per cell.

    The invitations are counted by organisation and segment as stored (its JSON text), and
    only those few hundred cells have their dimensions read out of the JSON and their
    organisation joined: reading five JSON keys out of every invitation cost more than the
    counting. The cells are folded into the totals, each dimension and each organisation in
    Python, instead of a query for each."""
    segment_text = cast(Invitation.segment, Text)
    counted = (
        select(
            Invitation.organisation_id,
            segment_text.label("segment"),
            func.count().label("invited"),
            flag(has_responded()).label("responded"),
            flag(has_completed()).label("completed"),
        )
        .where(Invitation.round_id.in_(ids))
        .group_by(Invitation.organisation_id, segment_text)
        .subquery("counted")
    )
    # PostgreSQL reads JSON out of a json value (the text is cast back); SQLite out of text.
    if on_postgresql(session):
        segment: Any = cast(counted.c.segment, JSON)
    else:
        segment = type_coerce(counted.c.segment, JSON)
    return list(
        session.execute(
            select(
                counted.c.organisation_id,
                *[_dimension_column(key, segment) for key, _ in DIMENSIONS],
                counted.c.invited,
                counted.c.responded,
                counted.c.completed,
            ).outerjoin(Organisation, Organisation.id == counted.c.organisation_id)
        ).all()
    )


def _dimensions(per_value: list[dict[Any, list[int]]], k: int, gaps: list[str]) -> list[Dimension]:
    dimensions: list[Dimension] = []
    for (key, label), acc in zip(DIMENSIONS, per_value, strict=True):
        # In value order, NULL first, as a GROUP BY on SQLite returns them (ties in merging
        # small segments are broken by this order).
        raw = [
            (_segment_label(key, value), n, r, c)
            for value, (n, r, c) in sorted(
                acc.items(), key=lambda kv: (kv[0] is not None, str(kv[0] or ""))
            )
        ]
        if all(value == NOT_GIVEN for value, *_ in raw):
            continue  # nobody has this segment: leave the dimension out
        dimensions.append(_dimension(key, label, raw, k, gaps))
    return dimensions


def _segment_label(key: str, value: Any) -> str:
    if value is None or str(value).strip() == "":
        return NOT_GIVEN
    text = str(value)
    if key == "answers_as":
        return ANSWERS_AS_LABELS.get(text, text.replace("_", " ").capitalize())
    return text.replace("_", " ")  # stored keys such as volunteers_only read as words


def _dimension(
    key: str, label: str, raw: list[tuple[str, int, int, int]], k: int, gaps: list[str]
) -> Dimension:
    # Fold segments with fewer than k *invited* into one cell, so a tiny group is never a row.
    merged = merge_small(raw, lambda r: r[1], k)
    rows: list[SegmentRow] = []
    cells = [(v, n, r, c, False) for v, n, r, c in merged.kept]
    if merged.merged:
        cells.append(
            (
                MERGED_LABEL,
                sum(x[1] for x in merged.merged),
                sum(x[2] for x in merged.merged),
                sum(x[3] for x in merged.merged),
                True,
            )
        )
    for value, n, r, c, is_merged in cells:
        if merged.suppressed and is_merged:
            continue
        resp = r if shown(r, k) else None
        comp = c if shown(c, k) else None
        rows.append(SegmentRow(value, n, resp, comp, rate(resp, n), is_merged))
        if r < k and value != NOT_GIVEN:
            words = "no responses" if r == 0 else f"fewer than {k} responses"
            gaps.append(f"{label}: {value} ({words} from {n} invited)")
    rows.sort(key=lambda s: (s.merged, s.label == NOT_GIVEN, -(s.rate or 0), s.label))
    note = "Some small segments were merged." if merged.merged else None
    return Dimension(key, label, rows, note)
