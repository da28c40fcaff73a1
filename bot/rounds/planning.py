"""Planning rounds: a round is rows (firm principle 2). Scheduling writes the Round and one
ScheduledEvent per moment of its life (OPEN_ROUND, one REMIND per reminder, CLOSE_ROUND; for a
recurring Schedule also PLAN_NEXT at the round's opening, which creates the following round).
bot.rounds.events runs them when they come due."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.kernel.audit import record
from bot.rounds.audiences import normalise_audience
from bot.rounds.recurrence import next_occurrence, occurrences, parse_cron
from bot.rounds.services import RoundError
from storage.models import (
    Consultation,
    EventKind,
    Round,
    RoundStatus,
    Schedule,
    ScheduledEvent,
)


def plan_round(
    session: Session,
    consultation: Consultation,
    *,
    audience: dict[str, Any],
    opens_at: datetime,
    open_for: timedelta,
    remind_before: list[timedelta] | None = None,
    schedule: Schedule | None = None,
    actor: int | None = None,
    progress_chat_id: int | None = None,
) -> Round:
    """A SCHEDULED round and the events that will open, remind and close it."""
    if open_for <= timedelta(0):
        raise RoundError("no_time_open")
    reminders = sorted({int(r.total_seconds()) for r in remind_before or [] if r > timedelta(0)})
    round_ = Round(
        consultation_id=consultation.id,
        schedule_id=schedule.id if schedule else None,
        audience=normalise_audience(audience),
        status=RoundStatus.SCHEDULED,
        opens_at=opens_at,
        closes_at=opens_at + open_for,
        remind_before_seconds=reminders,
        created_by=actor,
        progress_chat_id=progress_chat_id,
    )
    session.add(round_)
    session.flush()
    # A new round, so none of its events can exist yet.
    events = [(EventKind.OPEN_ROUND, opens_at), (EventKind.CLOSE_ROUND, round_.closes_at)]
    for seconds in reminders:
        due = round_.closes_at - timedelta(seconds=seconds)
        if due > opens_at:
            events.append((EventKind.REMIND, due))
    if schedule is not None:
        events.append((EventKind.PLAN_NEXT, opens_at))
    session.add_all(
        ScheduledEvent(
            kind=kind,
            due_at=due,
            round_id=round_.id,
            schedule_id=schedule.id if kind == EventKind.PLAN_NEXT and schedule else None,
        )
        for kind, due in events
    )
    return round_


def create_schedule(
    session: Session,
    consultation: Consultation,
    *,
    audience: dict[str, Any],
    cron: str,
    zone: ZoneInfo,
    open_for: timedelta,
    remind_before: list[timedelta] | None,
    now: datetime,
    actor: int | None = None,
    progress_chat_id: int | None = None,
) -> tuple[Schedule, Round]:
    """A recurring schedule and its first round (the next firing after `now`)."""
    first = occurrences(cron, zone, now, 1)
    if not first:
        raise RoundError("never_fires", cron=cron)
    schedule = Schedule(
        consultation_id=consultation.id,
        audience=normalise_audience(audience),
        cron=cron.strip(),
        timezone=zone.key,
        open_for_seconds=int(open_for.total_seconds()),
        remind_before_seconds=sorted({int(r.total_seconds()) for r in remind_before or []}),
        created_by=actor,
    )
    session.add(schedule)
    session.flush()
    round_ = plan_round(
        session,
        consultation,
        audience=audience,
        opens_at=first[0],
        open_for=open_for,
        remind_before=remind_before,
        schedule=schedule,
        actor=actor,
        progress_chat_id=progress_chat_id,
    )
    record(
        session,
        "schedule.create",
        actor=actor,
        subject=("schedule", schedule.id),
        details={"cron": schedule.cron, "audience": schedule.audience, "first_round": round_.id},
    )
    return schedule, round_


def schedule_once(
    session: Session,
    consultation: Consultation,
    *,
    audience: dict[str, Any],
    opens_at: datetime,
    open_for: timedelta,
    remind_before: list[timedelta] | None,
    actor: int | None = None,
    progress_chat_id: int | None = None,
) -> Round:
    round_ = plan_round(
        session,
        consultation,
        audience=audience,
        opens_at=opens_at,
        open_for=open_for,
        remind_before=remind_before,
        actor=actor,
        progress_chat_id=progress_chat_id,
    )
    record(
        session,
        "round.schedule",
        actor=actor,
        subject=("round", round_.id),
        details={"opens_at": opens_at.isoformat(), "audience": round_.audience},
    )
    return round_


def plan_next(session: Session, schedule: Schedule, after: Round, *, now: datetime) -> Round | None:
    """The schedule's round after `after` (which may itself be in the past: catch-up)."""
    if not schedule.active:
        return None
    zone = ZoneInfo(schedule.timezone)
    trigger = parse_cron(schedule.cron, zone)
    nxt = next_occurrence(trigger, zone, after.opens_at, previous=after.opens_at)
    if nxt is None:
        return None
    existing = session.scalar(
        select(Round).where(Round.schedule_id == schedule.id, Round.opens_at == nxt)
    )
    if existing is not None:
        return existing
    return plan_round(
        session,
        schedule.consultation,
        audience=schedule.audience,
        opens_at=nxt,
        open_for=timedelta(seconds=schedule.open_for_seconds),
        remind_before=[timedelta(seconds=s) for s in schedule.remind_before_seconds],
        schedule=schedule,
        actor=schedule.created_by,
        progress_chat_id=after.progress_chat_id,
    )
