"""Round lifecycle as rows: open, remind only non-finishers, close, catch-up after downtime,
recurrence across daylight-saving changes, fatigue cap, and the claim that never runs an event
twice. Services are called directly with the FakeClock's time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.kernel.clock import FakeClock
from bot.kernel.context import AppContext
from bot.outbox.payloads import PURGED
from bot.rounds.closing import stop_series
from bot.rounds.events import run_due_events
from bot.rounds.planning import create_schedule, schedule_once
from bot.rounds.recurrence import next_occurrence, occurrences, parse_cron
from bot.rounds.services import RoundError, Services
from storage.db import session_scope
from storage.models import (
    Delivery,
    DeliveryStatus,
    EventStatus,
    Invitation,
    InvitationStatus,
    ParticipantStatus,
    Round,
    RoundStatus,
    ScheduledEvent,
)
from tests.support import factories

LONDON = ZoneInfo("Europe/London")


def services(ctx: AppContext) -> Services:
    return Services(ctx.renderer, "Riverside Partnership", max_rounds_per_period=2, period_days=30)


def tick(ctx: AppContext) -> list[tuple[int, str, str]]:
    return run_due_events(ctx.sessions, now=ctx.clock.now(), services=services(ctx))


def population(ctx: AppContext) -> dict[str, int]:
    """Five people: two in north organisations, one south, one paused, one stopped."""
    with session_scope(ctx.sessions) as s:
        north = factories.organisation(
            s, "North Food Bank", area="north", size="small", sector="food"
        )
        north2 = factories.organisation(
            s, "North Youth", area="north", size="micro", sector="youth"
        )
        south = factories.organisation(s, "South Arts", area="south", size="large", sector="arts")
        ids = {
            "a": factories.participant(s, 101, organisation=north, language="cy").id,
            "b": factories.participant(s, 102, organisation=north2).id,
            "c": factories.participant(s, 103, organisation=south).id,
            "paused": factories.participant(
                s, 104, organisation=north, status=ParticipantStatus.PAUSED
            ).id,
            "stopped": factories.participant(
                s, 105, organisation=north, status=ParticipantStatus.STOPPED
            ).id,
            "unconsented": factories.participant(s, 106, organisation=north, consented=False).id,
        }
        ids["consultation"] = factories.consultation(s).id
    return ids


def plan(ctx: AppContext, ids: dict[str, int], **kw: object) -> int:
    with session_scope(ctx.sessions) as s:
        consultation = s.get(factories.Consultation, ids["consultation"])
        assert consultation is not None
        params: dict[str, object] = {
            "audience": {"who": "organisations", "where": {"area": "north"}},
            "opens_at": ctx.clock.now() + timedelta(hours=1),
            "open_for": timedelta(days=10),
            "remind_before": [timedelta(days=2)],
        }
        params.update(kw)
        return schedule_once(s, consultation, **params).id  # type: ignore[arg-type]


def test_round_opens_reminds_non_finishers_and_closes_on_time(
    ctx: AppContext, clock: FakeClock
) -> None:
    ids = population(ctx)
    round_id = plan(ctx, ids)
    assert tick(ctx) == []  # nothing due yet
    clock.advance(timedelta(hours=1))
    done = tick(ctx)
    assert [kind for _, kind, _ in done] == ["open_round"]
    with session_scope(ctx.sessions) as s:
        invitations = s.scalars(select(Invitation).where(Invitation.round_id == round_id)).all()
        # Only active, consented north people: not paused, stopped, unconsented or south.
        assert sorted(i.participant_id for i in invitations) == sorted([ids["a"], ids["b"]])
        # Each invitation copies what a digest counts, as it is now: the (empty) profile, how
        # the person answers, their area (none of their own: their organisation's), and their
        # organisation's sector and type (none: ""), and their language (none chosen: "").
        by_person = {i.participant_id: i.segment for i in invitations if i.organisation_id}
        assert by_person == {
            ids["a"]: {
                "answers_as": "organisation",
                "area": "north",
                "sector": "food",
                "kind": "",
                "language": "cy",
            },
            ids["b"]: {
                "answers_as": "organisation",
                "area": "north",
                "sector": "youth",
                "kind": "",
                "language": "",
            },
        }
        deliveries = s.scalars(select(Delivery).where(Delivery.round_id == round_id)).all()
        assert len(deliveries) == 2 and {d.kind for d in deliveries} == {"invitation"}
        # Simulate the sender and the participants: a finished, b has not.
        for d in deliveries:
            d.status = DeliveryStatus.SENT
        for i in invitations:
            i.status = (
                InvitationStatus.COMPLETED
                if i.participant_id == ids["a"]
                else InvitationStatus.DELIVERED
            )
    assert tick(ctx) == []  # opening is not repeated
    clock.advance(timedelta(days=8) - timedelta(seconds=1))
    assert tick(ctx) == []
    clock.advance(timedelta(seconds=1))
    assert [kind for _, kind, _ in tick(ctx)] == ["remind"]
    with session_scope(ctx.sessions) as s:
        reminders = s.scalars(select(Delivery).where(Delivery.kind == "reminder")).all()
        assert [d.participant_id for d in reminders] == [ids["b"]]
    clock.advance(timedelta(days=2))
    assert [kind for _, kind, _ in tick(ctx)] == ["close_round"]
    with session_scope(ctx.sessions) as s:
        round_ = s.get(Round, round_id)
        assert round_ is not None and round_.status == RoundStatus.CLOSED
        assert round_.closed_at == clock.now()
        # The reminder never sent is withdrawn, and keeps nothing of what it would have said.
        [reminder] = s.scalars(select(Delivery).where(Delivery.kind == "reminder")).all()
        assert reminder.status == DeliveryStatus.CANCELLED and reminder.payload == PURGED


def test_catch_up_after_downtime_closes_without_opening_and_skips_late_reminders(
    ctx: AppContext, clock: FakeClock
) -> None:
    ids = population(ctx)
    missed = plan(ctx, ids)  # opens in 1 h, closes 10 days later
    late = plan(ctx, ids, opens_at=clock.now() + timedelta(days=9), open_for=timedelta(days=3))
    clock.advance(timedelta(days=11))  # the bot was down for eleven days
    done = tick(ctx)
    with session_scope(ctx.sessions) as s:
        first = s.get(Round, missed)
        second = s.get(Round, late)
        assert first is not None and second is not None
        assert first.status == RoundStatus.CLOSED and first.opened_at is None
        assert (
            s.scalar(
                select(func.count()).select_from(Invitation).where(Invitation.round_id == missed)
            )
            == 0
        )
        # The second round is still within its window: it opens late rather than never.
        assert second.status == RoundStatus.OPEN
        skipped = s.scalars(select(ScheduledEvent).where(ScheduledEvent.round_id == missed)).all()
        assert {e.kind.value: e.status for e in skipped}["remind"] == EventStatus.SKIPPED
        assert (
            s.scalar(select(func.count()).select_from(Delivery).where(Delivery.kind == "reminder"))
            == 0
        )
    assert len(done) >= 2


def test_a_claimed_event_runs_once_even_when_ticked_twice(
    ctx: AppContext, clock: FakeClock
) -> None:
    ids = population(ctx)
    round_id = plan(ctx, ids, opens_at=clock.now())
    first = tick(ctx)
    second = tick(ctx)
    assert len(first) == 1 and second == []
    with session_scope(ctx.sessions) as s:
        assert (
            s.scalar(
                select(func.count()).select_from(Invitation).where(Invitation.round_id == round_id)
            )
            == 2
        )


def test_person_mid_way_through_another_round_is_queued(ctx: AppContext, clock: FakeClock) -> None:
    ids = population(ctx)
    with session_scope(ctx.sessions) as s:
        consultation = s.get(factories.Consultation, ids["consultation"])
        assert consultation is not None
        other = factories.open_round(s, consultation, now=clock.now())
        person = s.get(factories.Participant, ids["a"])
        assert person is not None
        factories.invitation(s, other, person, status=InvitationStatus.STARTED)
    round_id = plan(ctx, ids, opens_at=clock.now())
    tick(ctx)
    with session_scope(ctx.sessions) as s:
        rows = {
            i.participant_id: i.status
            for i in s.scalars(select(Invitation).where(Invitation.round_id == round_id))
        }
        assert rows == {ids["a"]: InvitationStatus.QUEUED, ids["b"]: InvitationStatus.PENDING}
        assert (
            s.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.round_id == round_id)
            )
            == 1
        )


def test_fatigue_cap_leaves_out_organisations_and_tells_the_coordinator(
    ctx: AppContext, clock: FakeClock
) -> None:
    ids = population(ctx)
    for _ in range(2):
        plan(ctx, ids, opens_at=clock.now(), open_for=timedelta(hours=1))
        tick(ctx)
        clock.advance(timedelta(hours=2))
        tick(ctx)
    third = plan(ctx, ids, opens_at=clock.now(), progress_chat_id=900)
    tick(ctx)
    with session_scope(ctx.sessions) as s:
        assert (
            s.scalar(
                select(func.count()).select_from(Invitation).where(Invitation.round_id == third)
            )
            == 0
        )
        notice = s.scalar(select(Delivery).where(Delivery.kind == "notice"))
        assert notice is not None and notice.chat_id == 900
        assert "North Food Bank" in notice.payload["text"] and "left out" in notice.payload["text"]


def test_cron_never_skips_or_doubles_across_daylight_saving() -> None:
    # 01:30 on the last Sunday: does not exist on 29 March 2026, happens twice on 25 October.
    start = datetime(2026, 3, 1, tzinfo=UTC)
    dates = occurrences("30 1 25-31 3-11 sun", LONDON, start, 9)
    months = [d.astimezone(LONDON).month for d in dates]
    assert months == [3, 4, 5, 6, 7, 8, 9, 10, 11]  # one a month: no skip, no double
    october = [d for d in dates if d.astimezone(LONDON).month == 10]
    assert october == [datetime(2026, 10, 25, 0, 30, tzinfo=UTC)]  # the first 01:30 (BST)
    march = dates[0]
    assert march.astimezone(LONDON).date().isoformat() == "2026-03-29"
    # The first Monday at 09:00 stays 09:00 local on both sides of the change.
    mondays = occurrences("0 9 1-7 * mon", LONDON, start, 9)
    assert {d.astimezone(LONDON).hour for d in mondays} == {9}
    assert mondays[0].hour == 9 and mondays[1].hour == 8  # GMT, then BST in UTC terms


def test_next_occurrence_refuses_the_repeated_hour() -> None:
    trigger = parse_cron("30 1 * * *", LONDON)
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 01:30 BST
    nxt = next_occurrence(trigger, LONDON, first, previous=first)
    assert nxt == datetime(2026, 10, 26, 1, 30, tzinfo=UTC)


def test_monthly_schedule_runs_through_both_changes_once_each(
    ctx: AppContext, clock: FakeClock
) -> None:
    ids = population(ctx)
    clock.set(datetime(2026, 3, 1, tzinfo=UTC))
    with session_scope(ctx.sessions) as s:
        consultation = s.get(factories.Consultation, ids["consultation"])
        assert consultation is not None
        create_schedule(
            s,
            consultation,
            audience={"who": "everyone"},
            cron="30 1 25-31 3-11 sun",
            zone=LONDON,
            open_for=timedelta(days=3),
            remind_before=[timedelta(days=1)],
            now=clock.now(),
        )
    # Walk through the year a day at a time, as the job would after each sleep.
    ctx.settings.rounds.max_rounds_per_period = 99
    while clock.now() < datetime(2026, 12, 1, tzinfo=UTC):
        clock.advance(timedelta(hours=6))
        run_due_events(
            ctx.sessions,
            now=clock.now(),
            services=Services(ctx.renderer, "P", max_rounds_per_period=99, period_days=30),
        )
    with session_scope(ctx.sessions) as s:
        opened = s.scalars(
            select(Round.opens_at).where(Round.opened_at.is_not(None)).order_by(Round.opens_at)
        ).all()
    months = [d.astimezone(LONDON).month for d in opened]
    assert months == [3, 4, 5, 6, 7, 8, 9, 10, 11]


def test_catch_up_of_a_recurring_schedule_after_months_down(
    ctx: AppContext, clock: FakeClock
) -> None:
    ids = population(ctx)
    clock.set(datetime(2026, 1, 1, tzinfo=UTC))
    with session_scope(ctx.sessions) as s:
        consultation = s.get(factories.Consultation, ids["consultation"])
        assert consultation is not None
        create_schedule(
            s,
            consultation,
            audience={"who": "everyone"},
            cron="0 9 1-7 * mon",
            zone=LONDON,
            open_for=timedelta(days=10),
            remind_before=[timedelta(days=2)],
            now=clock.now(),
        )
    clock.set(datetime(2026, 4, 10, 12, tzinfo=UTC))  # down from New Year to 10 April
    tick(ctx)
    with session_scope(ctx.sessions) as s:
        statuses = [
            (r.opens_at.astimezone(LONDON).date().isoformat(), r.status, r.opened_at is not None)
            for r in s.scalars(select(Round).order_by(Round.opens_at))
        ]
        reminders = s.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.kind == "reminder")
        )
    assert statuses == [
        ("2026-01-05", RoundStatus.CLOSED, False),
        ("2026-02-02", RoundStatus.CLOSED, False),
        ("2026-03-02", RoundStatus.CLOSED, False),
        ("2026-04-06", RoundStatus.OPEN, True),  # opened late, still within its ten days
        ("2026-05-04", RoundStatus.SCHEDULED, False),
    ]
    assert reminders == 0


def test_stopping_a_series_plans_no_more_rounds(ctx: AppContext, clock: FakeClock) -> None:
    ids = population(ctx)
    clock.set(datetime(2026, 1, 1, tzinfo=UTC))
    with session_scope(ctx.sessions) as s:
        consultation = s.get(factories.Consultation, ids["consultation"])
        assert consultation is not None
        create_schedule(
            s,
            consultation,
            audience={"who": "everyone"},
            cron="0 9 1-7 * mon",  # first Monday of the month
            zone=LONDON,
            open_for=timedelta(days=10),
            remind_before=[],
            now=clock.now(),
        )
    clock.set(datetime(2026, 1, 5, 9, 1, tzinfo=UTC))
    tick(ctx)  # January's round opens and February's is planned
    with session_scope(ctx.sessions) as s:
        january = s.scalars(select(Round).order_by(Round.opens_at)).first()
        assert january is not None and january.status == RoundStatus.OPEN
        withdrawn = stop_series(s, january, now=clock.now(), actor=900)
        january_id = january.id
    with session_scope(ctx.sessions) as s:
        statuses = [r.status for r in s.scalars(select(Round).order_by(Round.opens_at))]
    assert statuses[0] == RoundStatus.OPEN, "the open round runs to its close"
    assert all(status == RoundStatus.CANCELLED for status in statuses[1:])
    assert withdrawn == len(statuses) - 1
    clock.set(datetime(2026, 6, 1, tzinfo=UTC))
    tick(ctx)
    with session_scope(ctx.sessions) as s:
        opened = s.scalar(
            select(func.count()).select_from(Round).where(Round.opened_at.is_not(None))
        )
        assert opened == 1, "nothing after the stop"
        try:
            stop_series(s, s.get(Round, january_id), now=clock.now())  # type: ignore[arg-type]
        except RoundError as exc:
            assert "already stopped" in exc.say(ctx.renderer)
        else:
            raise AssertionError("stopping twice must be refused")
