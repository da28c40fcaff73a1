"""Ending rounds: close (the digest goes out), cancel, and stop a recurring series. Either way
unsent invitations and reminders are withdrawn and the round's pending events skipped, so
nothing more goes out for it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.kernel.audit import record
from bot.outbox.payloads import PURGED
from bot.rounds.services import RoundError
from storage.models import (
    Delivery,
    DeliveryStatus,
    EventKind,
    EventStatus,
    Round,
    RoundStatus,
    Schedule,
    ScheduledEvent,
)


def close_round(
    session: Session,
    round_: Round,
    *,
    now: datetime,
    actor: int | None = None,
    on_closed: Callable[[Session, Round], Any] | None = None,
) -> None:
    # A round that never opened may be closed too: it simply will not run.
    _end_round(session, round_, RoundStatus.CLOSED, now=now, actor=actor)
    round_.closed_at = now
    if on_closed is not None:
        on_closed(session, round_)


def cancel_round(
    session: Session, round_: Round, *, now: datetime, actor: int | None = None
) -> None:
    _end_round(session, round_, RoundStatus.CANCELLED, now=now, actor=actor)
    round_.cancelled_at = now


def _end_round(
    session: Session, round_: Round, status: RoundStatus, *, now: datetime, actor: int | None
) -> None:
    """Closing and cancelling alike: unsent invitations and reminders are withdrawn and the
    round's pending events skipped, so nothing more goes out for it."""
    if round_.status not in (RoundStatus.SCHEDULED, RoundStatus.OPEN):
        raise RoundError("ended", round_id=round_.id, status=round_.status.value)
    round_.status = status
    cancelled = _cancel_pending_deliveries(session, round_, now)
    verb = "closed" if status == RoundStatus.CLOSED else "cancelled"
    skip_pending_events(session, round_, now, note=f"round {verb}")
    record(
        session,
        "round.close" if status == RoundStatus.CLOSED else "round.cancel",
        actor=actor,
        subject=("round", round_.id),
        details={"unsent_cancelled": cancelled},
    )


def stop_series(session: Session, round_: Round, *, now: datetime, actor: int | None = None) -> int:
    """End the recurring schedule `round_` belongs to: no further rounds are planned, and its
    rounds not yet open are cancelled. Rounds already open run to their close. Returns how
    many planned rounds were cancelled."""
    schedule = session.get(Schedule, round_.schedule_id) if round_.schedule_id else None
    if schedule is None:
        raise RoundError("one_off", round_id=round_.id)
    if not schedule.active:
        raise RoundError("series_stopped", round_id=round_.id)
    schedule.active = False
    planned = session.scalars(
        select(Round).where(Round.schedule_id == schedule.id, Round.status == RoundStatus.SCHEDULED)
    ).all()
    for future in planned:
        cancel_round(session, future, now=now, actor=actor)
    record(
        session,
        "schedule.stop",
        actor=actor,
        subject=("schedule", schedule.id),
        details={"from_round": round_.id, "planned_cancelled": len(planned)},
    )
    return len(planned)


def skip_pending_events(
    session: Session, round_: Round, now: datetime, *, note: str, keep_plan_next: bool = True
) -> None:
    kinds = [EventKind.OPEN_ROUND, EventKind.REMIND, EventKind.CLOSE_ROUND]
    if not keep_plan_next:
        kinds.append(EventKind.PLAN_NEXT)
    session.execute(
        update(ScheduledEvent)
        .where(
            ScheduledEvent.round_id == round_.id,
            ScheduledEvent.status == EventStatus.PENDING,
            ScheduledEvent.kind.in_(kinds),
        )
        .values(status=EventStatus.SKIPPED, done_at=now, note=note)
        .execution_options(synchronize_session=False)
    )


def _cancel_pending_deliveries(session: Session, round_: Round, now: datetime) -> int:
    result = session.execute(
        update(Delivery)
        .where(
            Delivery.round_id == round_.id,
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.kind.in_(("invitation", "reminder")),
        )
        .values(status=DeliveryStatus.CANCELLED, error="round closed", payload=PURGED)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
