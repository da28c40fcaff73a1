"""Round lifecycle: plan, open, remind, close, cancel, recur. Plain functions over a session.

Time-driven work is rows (firm principle 2). Scheduling a round writes the Round and one
ScheduledEvent per moment of its life (OPEN_ROUND, one REMIND per reminder, CLOSE_ROUND; for a
recurring Schedule also PLAN_NEXT at the round's opening, which creates the following round).
One repeating job calls :func:`run_due_events` with ``now``; it claims due events one at a time
and runs each in the same transaction that claims it, so an event is either fully done or not at
all, whatever crashes.

Claiming is one conditional UPDATE (``... WHERE id = (SELECT ... LIMIT 1) AND status='pending'``):
on PostgreSQL the sub-select uses ``FOR UPDATE SKIP LOCKED`` so two bot processes never run the
same event; on SQLite (one writer at a time) the UPDATE takes the write lock first, so the
second process sees the event already done.

Catch-up after downtime: events are run in due order, whatever their age. An OPEN_ROUND whose
round has already passed its closing time closes the round without opening it (nobody is asked
for a round that is over); a REMIND that comes due after its round closed is skipped, not sent;
PLAN_NEXT keeps creating rounds until the next one lies in the future.

Recurrence uses APScheduler's CronTrigger in the partnership time zone (cron fields are ANDed,
as APScheduler does, so ``0 9 1-7 * mon`` is the first Monday of the month). On the autumn DST
change APScheduler would fire a wall-clock time that happens twice twice; :func:`next_occurrence`
drops the second one. A spring-forward time that does not exist fires once, an hour later.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from bot.kernel.audit import record
from bot.kernel.render import Renderer
from bot.kernel.reply import OutgoingMessage
from bot.outbox.queue import enqueue
from bot.participation import cards
from bot.participation.profile import segment_of
from storage.models import (
    Consultation,
    Delivery,
    DeliveryStatus,
    EventKind,
    EventStatus,
    Invitation,
    InvitationStatus,
    Organisation,
    Participant,
    ParticipantStatus,
    Round,
    RoundStatus,
    Schedule,
    ScheduledEvent,
)

log = logging.getLogger(__name__)

SEGMENT_FIELDS = ("area", "size", "sector", "kind")
WHO = ("everyone", "organisations", "service_users")
# Invitations that are still waiting for an answer: reminders go to these only.
NOT_FINISHED = (InvitationStatus.DELIVERED, InvitationStatus.STARTED)
ACTIVE_INVITATION = (
    InvitationStatus.PENDING,
    InvitationStatus.QUEUED,
    InvitationStatus.DELIVERED,
    InvitationStatus.STARTED,
)
MAX_EVENT_ATTEMPTS = 3


class RoundError(Exception):
    """Something the coordinator can fix (bad cron, unknown round, round already closed)."""


# ---------------------------------------------------------------------------- audience


def normalise_audience(audience: dict[str, Any] | None) -> dict[str, Any]:
    """Audience as stored: ``{"who": everyone|organisations|service_users, "where": {...}}``.

    ``where`` filters on organisation fields (area, size, sector, kind); a participant's own
    profile answer of the same name counts too (service users have no organisation).
    """
    audience = dict(audience or {})
    who = audience.get("who", "everyone")
    if who not in WHO:
        raise RoundError(f"unknown audience {who!r} (use one of {', '.join(WHO)})")
    where = {str(k): str(v) for k, v in (audience.get("where") or {}).items()}
    for key in where:
        if key not in SEGMENT_FIELDS:
            raise RoundError(f"unknown segment {key!r} (use one of {', '.join(SEGMENT_FIELDS)})")
    return {"who": who, "where": where}


def describe_audience(audience: dict[str, Any]) -> str:
    audience = normalise_audience(audience)
    who = {
        "everyone": "everyone",
        "organisations": "organisations",
        "service_users": "service users",
    }[audience["who"]]
    if audience["where"]:
        return who + " with " + ", ".join(f"{k} {v}" for k, v in audience["where"].items())
    return who


def _matches(person: Participant, audience: dict[str, Any]) -> bool:
    who = audience["who"]
    if who == "organisations" and not (
        person.organisation_id is not None or person.answers_as == "organisation"
    ):
        return False
    if who == "service_users" and person.answers_as != "service_user":
        return False
    org = person.organisation
    for key, wanted in audience["where"].items():
        have = getattr(org, key, None) if org is not None else None
        if have is None:
            have = (person.profile or {}).get(key)
        if have is None or str(have).casefold() != wanted.casefold():
            return False
    return True


def audience_members(session: Session, audience: dict[str, Any]) -> list[Participant]:
    """Active, consented people in the audience. PAUSED, STOPPED and UNREACHABLE are left out."""
    audience = normalise_audience(audience)
    people = session.scalars(
        select(Participant)
        .options(selectinload(Participant.organisation))
        .where(
            Participant.status == ParticipantStatus.ACTIVE,
            Participant.consent_at.is_not(None),
            Participant.chat_id.is_not(None),
        )
        .order_by(Participant.id)
    )
    return [p for p in people if _matches(p, audience)]


def segment_values(session: Session, key: str) -> list[str]:
    """Known values of an organisation field, for the dialog's buttons."""
    if key not in SEGMENT_FIELDS:
        raise RoundError(f"unknown segment {key!r}")
    column = getattr(Organisation, key)
    return [v for v in session.scalars(select(column).distinct().order_by(column)) if v]


def organisations_over_cap(
    session: Session, org_ids: set[int], *, now: datetime, cap: int, period_days: int
) -> dict[int, int]:
    """Organisations already asked in `cap` or more rounds within the period: {id: rounds}."""
    if not org_ids:
        return {}
    since = now - timedelta(days=period_days)
    rows = session.execute(
        select(Invitation.organisation_id, func.count(func.distinct(Invitation.round_id)))
        .join(Round, Round.id == Invitation.round_id)
        .where(
            Invitation.organisation_id.in_(org_ids),
            Round.opened_at.is_not(None),
            Round.opened_at >= since,
            Round.status.in_((RoundStatus.OPEN, RoundStatus.CLOSED)),
        )
        .group_by(Invitation.organisation_id)
    )
    return {org: count for org, count in rows if org is not None and count >= cap}


@dataclass
class AudiencePreview:
    size: int
    left_out_orgs: list[str]  # over the fatigue cap
    left_out_people: int
    busy: int  # people with an invitation still active in an open round


def preview_audience(
    session: Session, audience: dict[str, Any], *, now: datetime, cap: int, period_days: int
) -> AudiencePreview:
    people = audience_members(session, audience)
    capped = organisations_over_cap(
        session,
        {p.organisation_id for p in people if p.organisation_id},
        now=now,
        cap=cap,
        period_days=period_days,
    )
    kept = [p for p in people if p.organisation_id not in capped]
    busy = _busy_people(session, [p.id for p in kept])
    names = [
        o.name
        for o in session.scalars(
            select(Organisation).where(Organisation.id.in_(capped)).order_by(Organisation.name)
        )
    ]
    return AudiencePreview(len(kept), names, len(people) - len(kept), len(busy))


def _busy_people(
    session: Session, ids: list[int], *, statuses: tuple[Any, ...] = ACTIVE_INVITATION
) -> set[int]:
    if not ids:
        return set()
    busy: set[int] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        busy.update(
            session.scalars(
                select(Invitation.participant_id)
                .join(Round, Round.id == Invitation.round_id)
                .where(
                    Round.status == RoundStatus.OPEN,
                    Invitation.participant_id.in_(chunk),
                    Invitation.status.in_(statuses),
                )
            )
        )
    return busy


# ---------------------------------------------------------------------------- recurrence


def parse_cron(expression: str, zone: ZoneInfo) -> CronTrigger:
    try:
        return CronTrigger.from_crontab(expression.strip(), timezone=zone)
    except (ValueError, TypeError) as exc:
        raise RoundError(f"not a cron expression {expression!r}: {exc}") from None


def next_occurrence(
    trigger: CronTrigger, zone: ZoneInfo, after: datetime, *, previous: datetime | None = None
) -> datetime | None:
    """The first firing strictly after `after` (UTC), never the same wall-clock time twice."""
    prev_local = previous.astimezone(zone).replace(tzinfo=None) if previous else None
    moment = after
    for _ in range(10):
        nxt = trigger.get_next_fire_time(moment, moment)
        if nxt is None:
            return None
        if nxt <= after:
            moment = nxt + timedelta(seconds=1)
            continue
        local = nxt.astimezone(zone).replace(tzinfo=None)
        after_local = after.astimezone(zone).replace(tzinfo=None)
        if local in (prev_local, after_local):
            # The autumn hour repeats: 01:30 BST and 01:30 GMT are one local 01:30.
            moment = nxt
            continue
        return nxt.astimezone(ZoneInfo("UTC"))
    return None


def occurrences(expression: str, zone: ZoneInfo, after: datetime, count: int) -> list[datetime]:
    trigger = parse_cron(expression, zone)
    found: list[datetime] = []
    moment = after - timedelta(microseconds=1)
    while len(found) < count:
        nxt = next_occurrence(trigger, zone, moment, previous=found[-1] if found else None)
        if nxt is None:
            break
        found.append(nxt)
        moment = nxt
    return found


# ---------------------------------------------------------------------------- planning


def _add_event(
    session: Session,
    kind: EventKind,
    due_at: datetime,
    *,
    round_id: int | None,
    schedule_id: int | None = None,
) -> None:
    exists = session.scalar(
        select(ScheduledEvent.id).where(
            ScheduledEvent.kind == kind,
            ScheduledEvent.round_id == round_id
            if round_id is not None
            else ScheduledEvent.round_id.is_(None),
            ScheduledEvent.schedule_id == schedule_id
            if schedule_id is not None
            else ScheduledEvent.schedule_id.is_(None),
            ScheduledEvent.due_at == due_at,
        )
    )
    if exists is None:
        session.add(
            ScheduledEvent(kind=kind, due_at=due_at, round_id=round_id, schedule_id=schedule_id)
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
        raise RoundError("a round must stay open for some time")
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
    _add_event(session, EventKind.OPEN_ROUND, opens_at, round_id=round_.id)
    for seconds in reminders:
        due = round_.closes_at - timedelta(seconds=seconds)
        if due > opens_at:
            _add_event(session, EventKind.REMIND, due, round_id=round_.id)
    _add_event(session, EventKind.CLOSE_ROUND, round_.closes_at, round_id=round_.id)
    if schedule is not None:
        _add_event(
            session, EventKind.PLAN_NEXT, opens_at, round_id=round_.id, schedule_id=schedule.id
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
        raise RoundError(f"{cron!r} never fires")
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


# ---------------------------------------------------------------------------- running events


@dataclass
class Services:
    """What running an event needs besides the session and the time."""

    renderer: Renderer
    partnership: str
    max_rounds_per_period: int = 2
    period_days: int = 30
    # Called in the closing transaction, e.g. to queue the digest to leads and coordinators.
    on_closed: Callable[[Session, Round], Any] | None = None


@dataclass
class OpenResult:
    round_id: int
    invited: int = 0
    queued: int = 0
    left_out_orgs: list[str] = field(default_factory=list)
    opened: bool = True


def _reminder_message(
    session: Session, renderer: Renderer, invitation: Invitation, partnership: str
) -> OutgoingMessage:
    builder = getattr(cards, "reminder_message", None)
    if builder is not None:
        return builder(session, renderer, invitation, partnership=partnership)  # type: ignore[no-any-return]
    # Until the participant journey ships its own: the invitation again, introduced as a reminder.
    message = cards.invitation_message(session, renderer, invitation, partnership=partnership)
    return OutgoingMessage(text="<i>A reminder</i>\n" + message.text, buttons=message.buttons)


def open_round(
    session: Session, round_: Round, *, now: datetime, services: Services, actor: int | None = None
) -> OpenResult:
    """Invite the audience: Invitations and Deliveries written in the caller's transaction."""
    if round_.status != RoundStatus.SCHEDULED:
        raise RoundError(f"round {round_.id} is {round_.status.value}, not scheduled")
    if round_.closes_at <= now:
        round_.status = RoundStatus.CLOSED
        round_.closed_at = now
        _skip_pending_events(session, round_, now, note="round was over before it could open")
        record(
            session,
            "round.missed",
            actor=actor,
            subject=("round", round_.id),
            details={
                "opens_at": round_.opens_at.isoformat(),
                "closes_at": round_.closes_at.isoformat(),
            },
        )
        return OpenResult(round_.id, opened=False)
    people = audience_members(session, round_.audience)
    capped = organisations_over_cap(
        session,
        {p.organisation_id for p in people if p.organisation_id},
        now=now,
        cap=services.max_rounds_per_period,
        period_days=services.period_days,
    )
    people = [p for p in people if p.organisation_id not in capped]
    busy = _busy_people(session, [p.id for p in people], statuses=(InvitationStatus.STARTED,))
    round_.status = RoundStatus.OPEN
    round_.opened_at = now
    result = OpenResult(round_.id)
    invitations: list[Invitation] = []
    for person in people:
        invitation = Invitation(
            round=round_,
            participant=person,
            status=InvitationStatus.QUEUED if person.id in busy else InvitationStatus.PENDING,
            segment=segment_of(person),
            organisation_id=person.organisation_id,
            invited_at=now,
        )
        session.add(invitation)
        invitations.append(invitation)
    session.flush()
    for invitation in invitations:
        if invitation.status == InvitationStatus.QUEUED:
            result.queued += 1
            continue
        person = invitation.participant
        assert person.chat_id is not None
        enqueue(
            session,
            chat_id=person.chat_id,
            message=cards.invitation_message(
                session, services.renderer, invitation, partnership=services.partnership
            ),
            kind="invitation",
            participant_id=person.id,
            round_id=round_.id,
            invitation_id=invitation.id,
            dedupe_key=f"invite:{round_.id}:{person.id}",
            not_before=now,
        )
        result.invited += 1
    if capped:
        result.left_out_orgs = [
            o.name
            for o in session.scalars(
                select(Organisation).where(Organisation.id.in_(capped)).order_by(Organisation.name)
            )
        ]
    record(
        session,
        "round.open",
        actor=actor,
        subject=("round", round_.id),
        details={
            "invited": result.invited,
            "queued": result.queued,
            "left_out": result.left_out_orgs,
        },
    )
    if round_.progress_chat_id and result.left_out_orgs:
        enqueue(
            session,
            chat_id=round_.progress_chat_id,
            message=OutgoingMessage(
                services.renderer.render(
                    "messages/coordinator/left_out.html",
                    round=round_,
                    names=result.left_out_orgs,
                    cap=services.max_rounds_per_period,
                    days=services.period_days,
                )
            ),
            kind="notice",
            round_id=round_.id,
            dedupe_key=f"leftout:{round_.id}",
            not_before=now,
        )
    return result


def remind_round(
    session: Session,
    round_: Round,
    *,
    now: datetime,
    services: Services,
    key: str,
    actor: int | None = None,
) -> int:
    """Remind the people who have the invitation but have not finished. Returns how many."""
    if round_.status != RoundStatus.OPEN or round_.closes_at <= now:
        raise RoundError(f"round {round_.id} is not open")
    count = 0
    invitations = session.scalars(
        select(Invitation)
        .options(selectinload(Invitation.participant))
        .where(Invitation.round_id == round_.id, Invitation.status.in_(NOT_FINISHED))
        .order_by(Invitation.id)
    )
    for invitation in invitations:
        person = invitation.participant
        if person.status != ParticipantStatus.ACTIVE or person.chat_id is None:
            continue
        added = enqueue(
            session,
            chat_id=person.chat_id,
            message=_reminder_message(session, services.renderer, invitation, services.partnership),
            kind="reminder",
            participant_id=person.id,
            round_id=round_.id,
            invitation_id=invitation.id,
            dedupe_key=f"remind:{invitation.id}:{key}",
            not_before=now,
        )
        if added is not None:
            invitation.reminded_at = now
            count += 1
    record(
        session,
        "round.remind",
        actor=actor,
        subject=("round", round_.id),
        details={"reminded": count, "key": key},
    )
    return count


def _skip_pending_events(
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
        .values(status=DeliveryStatus.CANCELLED, error="round closed")
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


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
        raise RoundError(f"round {round_.id} is already {round_.status.value}")
    round_.status = status
    cancelled = _cancel_pending_deliveries(session, round_, now)
    verb = "closed" if status == RoundStatus.CLOSED else "cancelled"
    _skip_pending_events(session, round_, now, note=f"round {verb}")
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
        raise RoundError(f"round {round_.id} is a one-off, not part of a recurring series")
    if not schedule.active:
        raise RoundError(f"the series of round {round_.id} is already stopped")
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
    sessions: Any, *, now: datetime, services: Services, limit: int = 1000
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


def _record_failure(sessions: Any, now: datetime, exc: Exception) -> bool:
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


# ---------------------------------------------------------------------------- watching


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
    out = [(r, invited[r.id], completed[r.id]) for r in rounds]
    return out


def get_round(session: Session, round_id: int) -> Round:
    round_ = session.get(Round, round_id)
    if round_ is None:
        raise RoundError(f"there is no round {round_id}")
    return round_


def audience_has_open_round(session: Session, audience: dict[str, Any]) -> int:
    """How many of this audience still have an unfinished invitation in an open round."""
    people = audience_members(session, audience)
    return len(_busy_people(session, [p.id for p in people]))


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
