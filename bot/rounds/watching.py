"""Watching rounds: the list with response rates, one round's figures by segment, and the
sending progress shown to the coordinator who opened it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from bot.digests.digest import Participation
from bot.digests.disclosure import release_participation, safe
from bot.digests.figures import RoundFigures
from bot.digests.published import released_figures
from bot.digests.segments import participation_cells
from bot.rounds.services import RoundError
from storage.models import (
    CHAT,
    Delivery,
    DeliveryStatus,
    Invitation,
    InvitationStatus,
    Round,
)


@dataclass
class RoundStats:
    """A round's live figures for coordinators. Sending figures (delivered, unreachable) are
    about messages; figures about people (started, completed, by segment) pass through
    disclosure control like a digest's, so none under k is shown or can be worked out."""

    round: Round
    invited: int
    counts: Counter[str]  # the chat's invitations by status, for the sending figures
    delivered: int  # delivered or further along
    unreachable: int
    imported: int  # submissions gathered elsewhere (bot.participation.imported): never sent
    participation: Participation  # started (responded) and completed, overall and by segment
    k: int


def round_stats(session: Session, round_: Round, k: int) -> RoundStats:
    counts: Counter[str] = Counter()
    imported = 0
    for status, channel, n in session.execute(
        select(Invitation.status, Invitation.channel, func.count())
        .where(Invitation.round_id == round_.id)
        .group_by(Invitation.status, Invitation.channel)
    ):
        if channel == CHAT:
            counts[status.value] += int(n)
        else:
            imported += int(n)
    # A published round shows the figures it was published with: recounted after an erasure
    # they would differ by the person who left, and give them away.
    published = released_figures(session, [round_.id], missing_ok=True).get(round_.id)
    if published is not None:
        live = published
    else:
        totals, segments, _, atoms = participation_cells(session, round_.id)
        live = RoundFigures(
            round_.id, totals[0], totals[1], totals[2], segments, {}, [], {}, atoms=atoms
        )
    delivered = sum(counts[s] for s in ("delivered", "declined", "started", "completed"))
    return RoundStats(
        round_,
        live.invited,
        counts,
        delivered,
        counts["unreachable"],
        imported,
        release_participation(live, k, "coordinator", {}),
        k,
    )


def list_rounds(
    session: Session, k: int, *, limit: int = 20
) -> list[tuple[Round, int, int | None]]:
    """Newest rounds first, with (invited, completed); completed is None when it is under k."""
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
    published = released_figures(session, [r.id for r in rounds], missing_ok=True)
    for rid, status, n in session.execute(
        select(Invitation.round_id, Invitation.status, func.count())
        .where(Invitation.round_id.in_([r.id for r in rounds]))
        .group_by(Invitation.round_id, Invitation.status)
    ):
        invited[rid] += n
        if status == InvitationStatus.COMPLETED:
            completed[rid] += n
    for rid, figures in published.items():  # as published: see round_stats
        invited[rid], completed[rid] = figures.invited, figures.completed
    return [
        (r, invited[r.id], completed[r.id] if safe(completed[r.id], k) else None) for r in rounds
    ]


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
