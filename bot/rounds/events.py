"""The tick: run the rounds' scheduled events that are due. One repeating job calls
:func:`run_due_events` with ``now``; it claims due events one at a time and runs each in the
same transaction that claims it, so an event is either fully done or not at all, whatever
crashes.

Claiming is one conditional UPDATE (``... WHERE id = (SELECT ... LIMIT 1) AND status='pending'``):
on PostgreSQL the sub-select uses ``FOR UPDATE SKIP LOCKED`` so two bot processes never run the
same event; on SQLite (one writer at a time) the UPDATE takes the write lock first, so the
second process sees the event already done.

Catch-up after downtime: events are run in due order, whatever their age. An OPEN_ROUND whose
round has already passed its closing time closes the round without opening it (nobody is asked
for a round that is over); a REMIND that comes due after its round closed is skipped, not sent;
PLAN_NEXT keeps creating rounds until the next one lies in the future.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.rounds.closing import close_round
from bot.rounds.opening import open_round
from bot.rounds.planning import plan_next
from bot.rounds.reminders import remind_round
from bot.rounds.services import Services
from storage.db import SessionFactory
from storage.models import EventKind, EventStatus, Round, RoundStatus, Schedule, ScheduledEvent

log = logging.getLogger(__name__)

MAX_EVENT_ATTEMPTS = 3


def _claim_next(session: Session, now: datetime) -> ScheduledEvent | None:
    """Claim the earliest due event for this transaction (see the module docstring)."""
    inner = (
        select(ScheduledEvent.id)
        .where(ScheduledEvent.status == EventStatus.PENDING, ScheduledEvent.due_at <= now)
        .order_by(ScheduledEvent.due_at, ScheduledEvent.id)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        inner = inner.with_for_update(skip_locked=True)
    claimed = session.scalar(
        update(ScheduledEvent)
        .where(
            ScheduledEvent.id == inner.scalar_subquery(),
            ScheduledEvent.status == EventStatus.PENDING,
        )
        .values(attempts=ScheduledEvent.attempts + 1)
        .returning(ScheduledEvent.id)
        .execution_options(synchronize_session=False)
    )
    if claimed is None:
        return None
    return session.get(ScheduledEvent, claimed, populate_existing=True)


def run_event(session: Session, event: ScheduledEvent, *, now: datetime, services: Services) -> str:
    """Run one claimed event; returns a short note of what happened."""
    round_ = session.get(Round, event.round_id) if event.round_id else None
    note = "done"
    status = EventStatus.DONE
    if event.kind == EventKind.PLAN_NEXT:
        schedule = session.get(Schedule, event.schedule_id) if event.schedule_id else None
        if schedule is None or round_ is None:
            status, note = EventStatus.SKIPPED, "schedule gone"
        else:
            nxt = plan_next(session, schedule, round_, now=now)
            note = f"planned round {nxt.id}" if nxt else "schedule ended"
    elif round_ is None:
        status, note = EventStatus.SKIPPED, "round gone"
    elif event.kind == EventKind.OPEN_ROUND:
        if round_.status != RoundStatus.SCHEDULED:
            status, note = EventStatus.SKIPPED, f"round {round_.status.value}"
        else:
            result = open_round(session, round_, now=now, services=services)
            if result.opened:
                note = f"invited {result.invited}, queued {result.queued}"
            else:
                status, note = EventStatus.SKIPPED, "closed, not opened: over before it could open"
    elif event.kind == EventKind.REMIND:
        if round_.status != RoundStatus.OPEN or round_.closes_at <= now:
            status, note = EventStatus.SKIPPED, "round not open"
        else:
            count = remind_round(session, round_, now=now, services=services, key=f"e{event.id}")
            note = f"reminded {count}"
    elif event.kind == EventKind.CLOSE_ROUND:
        if round_.status in (RoundStatus.OPEN, RoundStatus.SCHEDULED):
            close_round(session, round_, now=now, on_closed=services.on_closed)
        else:
            status, note = EventStatus.SKIPPED, f"round {round_.status.value}"
    event.status = status
    event.done_at = now
    event.note = note[:300]
    return note


def run_due_events(
    sessions: SessionFactory, *, now: datetime, services: Services, limit: int = 1000
) -> list[tuple[int, str, str]]:
    """Run every event due at `now`, each in its own transaction. Returns (id, kind, note)."""
    done: list[tuple[int, str, str]] = []
    for _ in range(limit):
        session: Session = sessions()
        try:
            event = _claim_next(session, now)
            if event is None:
                session.rollback()
                break
            ident, kind = event.id, event.kind.value
            note = run_event(session, event, now=now, services=services)
            session.commit()
            done.append((ident, kind, note))
        except Exception as exc:
            session.rollback()
            log.exception("scheduled event failed")
            if not _record_failure(sessions, now, exc):
                break
        finally:
            session.close()
    return done


def _record_failure(sessions: SessionFactory, now: datetime, exc: Exception) -> bool:
    """Count a failed attempt on the event that failed; give up on it after a few."""
    session: Session = sessions()
    try:
        event = session.scalar(
            select(ScheduledEvent)
            .where(ScheduledEvent.status == EventStatus.PENDING, ScheduledEvent.due_at <= now)
            .order_by(ScheduledEvent.due_at, ScheduledEvent.id)
            .limit(1)
        )
        if event is None:
            return False
        event.attempts += 1
        event.note = f"{type(exc).__name__}: {exc}"[:300]
        if event.attempts >= MAX_EVENT_ATTEMPTS:
            event.status = EventStatus.FAILED
            event.done_at = now
        session.commit()
        return event.status == EventStatus.FAILED
    except Exception:
        session.rollback()
        return False
    finally:
        session.close()
