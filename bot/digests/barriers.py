"""Barriers and success factors: respondents per code and per family (each person counted once
per code however many answers carry it), the comparison with the previous round or period, and
an organisation's own barriers. An answer's codes are those that count (bot.coding.stored)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import case, func, literal, select, tuple_
from sqlalchemy.orm import Session

from bot.coding.codebook import Codebook
from bot.coding.stored import effective_codes
from bot.digests.digest import BarrierRow, Barriers, FamilyTotal, OrganisationDetail, Scope
from bot.digests.privacy import MERGED_LABEL, merge_small, shown
from bot.digests.segments import flag, has_completed, has_responded, on_postgresql
from storage.models import Answer, Invitation, Organisation


def _respondents(session: Session, ids: list[int], organisation_id: int | None = None) -> int:
    """People (invitations) with at least one answer not skipped: the base of the shares."""
    query = (
        select(func.count(func.distinct(Answer.invitation_id)))
        .join(Invitation, Invitation.id == Answer.invitation_id)
        .where(Invitation.round_id.in_(ids), Answer.skipped.is_(False))
    )
    if organisation_id is not None:
        query = query.where(Invitation.organisation_id == organisation_id)
    return int(session.scalar(query) or 0)


def _code_counts(
    session: Session, ids: list[int], organisation_id: int | None = None
) -> dict[str, int]:
    eff = effective_codes(ids)
    query = select(eff.c.code, func.count(func.distinct(eff.c.invitation_id))).group_by(eff.c.code)
    if organisation_id is not None:
        query = query.join(Invitation, Invitation.id == eff.c.invitation_id).where(
            Invitation.organisation_id == organisation_id
        )
    return {code: int(n) for code, n in session.execute(query)}


def _family_of(code: Any, codebook: Codebook) -> Any:
    """The codebook family of a code column, as SQL ("unknown" for a code not in the book)."""
    families: dict[str, list[str]] = defaultdict(list)
    for c in codebook.codes:
        families[c.family].append(c.code)
    return case(
        *[(code.in_(codes), literal(name)) for name, codes in families.items()],
        else_=literal("unknown"),
    )


def _code_and_family_counts(
    session: Session, ids: list[int], codebook: Codebook
) -> tuple[dict[str, int], dict[str, int]]:
    """Respondents per code and per family in one statement, each person counted once per code
    and once per family however many of their answers carry it.

    PostgreSQL groups the code rows by (person, code) and by (person, family) in one pass with
    GROUPING SETS, and counts the groups; a materialized set of pairs read twice cost it a
    spilled hash of the pairs, a second scan and a sort for COUNT(DISTINCT). SQLite has no
    GROUPING SETS: there the (person, code) pairs are worked out once (a MATERIALIZED CTE,
    SQLite 3.35+) and both GROUP BYs read them."""
    eff = effective_codes(ids)
    counts: dict[str, int] = {}
    fam: dict[str, int] = {}
    if on_postgresql(session):
        family = _family_of(eff.c.code, codebook).label("family")
        groups = (
            select(
                func.grouping(eff.c.code).label("by_family"),  # 0: a (person, code) group
                eff.c.code,
                family,
            )
            .group_by(
                func.grouping_sets(
                    tuple_(eff.c.invitation_id, eff.c.code),
                    tuple_(eff.c.invitation_id, family),
                )
            )
            .subquery("groups")
        )
        for by_family, code, name, n in session.execute(
            select(groups.c.by_family, groups.c.code, groups.c.family, func.count()).group_by(
                groups.c.by_family, groups.c.code, groups.c.family
            )
        ):
            if by_family:
                fam[name] = int(n)
            else:
                counts[code] = int(n)
        return counts, fam
    pairs = (
        select(eff.c.invitation_id, eff.c.code).distinct().cte("pairs").prefix_with("MATERIALIZED")
    )
    family = _family_of(pairs.c.code, codebook)
    by_code = select(
        literal("code").label("kind"), pairs.c.code.label("key"), func.count()
    ).group_by(pairs.c.code)
    by_family = select(
        literal("family").label("kind"),
        family.label("key"),
        func.count(func.distinct(pairs.c.invitation_id)),
    ).group_by(family)
    for kind, key, n in session.execute(by_code.union_all(by_family)):
        (counts if kind == "code" else fam)[key] = int(n)
    return counts, fam


FAMILY_LABELS = {
    "external": "External: how public bodies work with the sector",
    "internal": "Internal: the organisation's own means",
    "success": "What helps (success factors)",
}


def _rows_for(
    counts: dict[str, int], base: int, codebook: Codebook
) -> tuple[list[BarrierRow], list[BarrierRow]]:
    barriers: list[BarrierRow] = []
    successes: list[BarrierRow] = []
    for code, n in counts.items():
        if code not in codebook:
            continue
        entry = codebook[code]
        row = BarrierRow(code, entry.label, entry.family, n, n / base if base else 0.0)
        (successes if entry.family == "success" else barriers).append(row)
    return barriers, successes


def count_barriers(
    session: Session, ids: list[int], k: int, codebook: Codebook, scope: Scope, notes: list[str]
) -> Barriers:
    base = _respondents(session, ids)
    counts, fam = _code_and_family_counts(session, ids, codebook)
    barriers, successes = _rows_for(counts, base, codebook)
    p_base = _respondents(session, list(scope.previous)) if scope.previous else 0
    p_counts = _code_counts(session, list(scope.previous)) if p_base >= k else {}
    merged_b = merge_small(barriers, lambda r: r.respondents, k, complementary=False)
    merged_s = merge_small(successes, lambda r: r.respondents, k, complementary=False)
    if p_base >= k:
        for row in merged_b.kept + merged_s.kept:
            # Only compare with a previous cell that could itself be shown (zero or k and up).
            n = p_counts.get(row.code, 0)
            row.previous_share = n / p_base if shown(n, k) else None
    families = []
    for name in ("external", "internal", "success"):
        n = fam.get(name, 0)
        ok = shown(n, k)
        families.append(
            FamilyTotal(
                name, FAMILY_LABELS[name], n if ok else None, n / base if ok and base else None
            )
        )
    merged_count = None
    if merged_b.merged:
        # Count people, not mentions: one person naming three rare barriers is still one.
        eff = effective_codes(ids)
        distinct = int(
            session.scalar(
                select(func.count(func.distinct(eff.c.invitation_id))).where(
                    eff.c.code.in_([r.code for r in merged_b.merged])
                )
            )
            or 0
        )
        merged_count = distinct if distinct >= k else None
    merged_codes = len(merged_b.merged) + len(merged_s.merged)
    if merged_codes:
        notes.append(
            f"Barriers and success factors named by fewer than {k} people are merged into "
            f'"{MERGED_LABEL}" or not shown.'
        )
    return Barriers(
        base=base,
        rows=sorted(merged_b.kept, key=lambda r: (-r.respondents, r.code)),
        successes=sorted(merged_s.kept, key=lambda r: (-r.respondents, r.code)),
        families=families,
        merged=merged_count,
        merged_codes=merged_codes,
        compared_with=scope.previous_label if p_base >= k else None,
    )


def organisation_detail(
    session: Session, ids: list[int], k: int, codebook: Codebook, organisation_id: int
) -> OrganisationDetail | None:
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        return None
    invited, responded, completed = session.execute(
        select(func.count(), flag(has_responded()), flag(has_completed())).where(
            Invitation.round_id.in_(ids), Invitation.organisation_id == organisation_id
        )
    ).one()
    invited, responded, completed = int(invited), int(responded or 0), int(completed or 0)
    base = _respondents(session, ids, organisation_id)
    suppressed = base < k
    rows: list[BarrierRow] = []
    if not suppressed:
        counts = _code_counts(session, ids, organisation_id)
        barriers, _ = _rows_for(counts, base, codebook)
        rows = sorted(
            merge_small(barriers, lambda r: r.respondents, k, complementary=False).kept,
            key=lambda r: (-r.respondents, r.code),
        )
    return OrganisationDetail(
        name=organisation.name,
        invited=invited,
        responded=responded if shown(responded, k) else None,
        completed=completed if shown(completed, k) else None,
        barriers=rows,
        suppressed=suppressed,
    )
