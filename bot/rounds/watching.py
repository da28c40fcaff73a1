"""Watching rounds: the list with response rates, one round's figures by segment, and the
sending progress shown to the coordinator who opened it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from bot.rounds.services import RoundError
from storage.models import (
    Delivery,
    DeliveryStatus,
    Invitation,
    InvitationStatus,
    Organisation,
    Round,
)


@dataclass
class RoundStats:
    round: Round
    invited: int
    counts: Counter[str]
    delivered: int  # delivered or further along
    started: int
    completed: int
    unreachable: int
    by_segment: dict[str, dict[str, Counter[str]]]

    @property
    def response_rate(self) -> float:
        return self.completed / self.invited if self.invited else 0.0


def round_stats(
    session: Session, round_: Round, *, segments: tuple[str, ...] = ("area", "size", "sector")
) -> RoundStats:
    invitations = list(
        session.execute(
            select(
                Invitation.status,
                Invitation.segment,
                Organisation.area,
                Organisation.size,
                Organisation.sector,
            )
            .outerjoin(Organisation, Organisation.id == Invitation.organisation_id)
            .where(Invitation.round_id == round_.id)
        )
    )
    counts: Counter[str] = Counter()
    by_segment: dict[str, dict[str, Counter[str]]] = {k: {} for k in segments}
    for status, segment, area, size, sector in invitations:
        counts[status.value] += 1
        org = {"area": area, "size": size, "sector": sector}
        for key in segments:
            value = org.get(key) or (segment or {}).get(key) or "not given"
            by_segment[key].setdefault(str(value), Counter())[status.value] += 1
    started = counts["started"] + counts["completed"]
    delivered = started + counts["delivered"] + counts["declined"]
    return RoundStats(
        round_,
        len(invitations),
        counts,
        delivered,
        started,
        counts["completed"],
        counts["unreachable"],
        by_segment,
    )


def list_rounds(session: Session, *, limit: int = 20) -> list[tuple[Round, int, int]]:
    """Newest rounds first, with (invited, completed)."""
    rounds = list(
        session.scalars(
            select(Round)
            .options(selectinload(Round.consultation))
            .order_by(Round.opens_at.desc(), Round.id.desc())
            .limit(limit)
        )
    )
    invited: Counter[int] = Counter()
    completed: Counter[int] = Counter()
    for rid, status, n in session.execute(
        select(Invitation.round_id, Invitation.status, func.count())
        .where(Invitation.round_id.in_([r.id for r in rounds]))
        .group_by(Invitation.round_id, Invitation.status)
    ):
        invited[rid] += n
        if status == InvitationStatus.COMPLETED:
            completed[rid] += n
    return [(r, invited[r.id], completed[r.id]) for r in rounds]


def get_round(session: Session, round_id: int) -> Round:
    round_ = session.get(Round, round_id)
    if round_ is None:
        raise RoundError("no_round", round_id=round_id)
    return round_


def progress_counts(session: Session, round_id: int) -> tuple[int, int, int, int]:
    """(total, sent, unreachable, waiting) of a round's invitation deliveries."""
    rows = dict(
        session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.round_id == round_id, Delivery.kind == "invitation")
            .group_by(Delivery.status)
        ).all()
    )
    total = sum(rows.values())
    waiting = rows.get(DeliveryStatus.PENDING, 0) + rows.get(DeliveryStatus.SENDING, 0)
    return total, rows.get(DeliveryStatus.SENT, 0), rows.get(DeliveryStatus.UNREACHABLE, 0), waiting
