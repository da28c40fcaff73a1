"""Coordinators run rounds, end to end: the /schedule dialog walked with button presses through
real PTB and the stand-in, the job opening the round, the outbox sending it with progress, the
watching commands, and every coordinator command and button refused to members and leads."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from bot.kernel.people import grant_role
from bot.kernel.reply import OutgoingMessage
from bot.outbox.queue import enqueue
from bot.rounds.planning import create_schedule, schedule_once
from bot.telegram.jobs import tick_now
from standin.models import FloodLimits
from storage.db import session_scope
from storage.models import (
    AuditEvent,
    Delivery,
    DeliveryStatus,
    Invitation,
    InvitationStatus,
    Participant,
    ParticipantStatus,
    Role,
    Round,
    RoundStatus,
    Schedule,
)
from tests.support import factories
from tests.support.harness import BotHarness

COORDINATOR = 900  # an admin in the test settings
MEMBER = 1001
LEAD = 1002


def people(harness: BotHarness, count: int = 3, *, area: str = "north") -> list[int]:
    ids = []
    with session_scope(harness.ctx.sessions) as s:
        factories.consultation(s)
        north = factories.organisation(s, "North Food Bank", area=area, sector="food")
        south = factories.organisation(s, "South Arts", area="south", sector="arts")
        for n in range(count):
            uid = 5000 + n
            factories.participant(s, uid, organisation=north)
            harness.standin.register_chat(uid)
            ids.append(uid)
        factories.participant(s, 4999, organisation=south)
        harness.standin.register_chat(4999)
        factories.participant(s, MEMBER, organisation=north, role=Role.MEMBER)
        factories.participant(s, LEAD, organisation=north, role=Role.LEAD)
    harness.standin.register_chat(MEMBER)
    harness.standin.register_chat(LEAD)
    return ids


async def wait_until(check: object, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def test_schedule_now_from_chat_opens_sends_and_shows_progress(harness: BotHarness) -> None:
    recipients = people(harness, 3)
    msg = await harness.say(COORDINATOR, "/schedule")
    assert "Which consultation?" in msg.text
    msg = await harness.press(COORDINATOR, msg, "How well are we working with you?")
    msg = await harness.press(COORDINATOR, msg, "By area")
    msg = await harness.press(COORDINATOR, msg, "North")
    msg = await harness.press(COORDINATOR, msg, "Now")
    msg = await harness.press(COORDINATOR, msg, "10 days")
    msg = await harness.press(COORDINATOR, msg, "2 days before")
    # Members and the lead of the north organisation count too: 3 + 2.
    assert "5 people" in msg.text and "area North" in msg.text
    assert "reminder 2 days before closing" in msg.text
    msg = await harness.press(COORDINATOR, msg, "Confirm")
    assert "opening now" in msg.text
    for uid in recipients:
        invite = await harness.standin.wait_for_message(uid, after=0, timeout=10)
        assert "How well are we working with you?" in invite.text
    with session_scope(harness.ctx.sessions) as s:
        round_ = s.scalar(select(Round))
        assert round_ is not None and round_.status == RoundStatus.OPEN
        assert round_.progress_chat_id == COORDINATOR
    await wait_until(
        lambda: any("Sent 5 of 5" in m.text for m in harness.standin.messages(COORDINATOR))
    )
    assert harness.standin.messages(4999) == []  # south was not asked
    with session_scope(harness.ctx.sessions) as s:
        actions = set(s.scalars(select(AuditEvent.action)))
        assert {"round.schedule", "round.open"} <= actions
        delivered = s.scalar(
            select(func.count())
            .select_from(Invitation)
            .where(Invitation.status == InvitationStatus.DELIVERED)
        )
        assert delivered == 5

    rounds_text = (await harness.say(COORDINATOR, "/rounds")).text
    assert "#1" in rounds_text and "open" in rounds_text
    detail = (await harness.say(COORDINATOR, "/round 1")).text
    assert "Invited 5" in detail and "delivered 5" in detail and "By area" in detail
    assert "\nNorth: 0 of 5 answered" in detail, "a row by its profile label, not its id"


async def test_recurring_schedule_from_chat_shows_the_first_dates(harness: BotHarness) -> None:
    people(harness, 1)
    msg = await harness.say(COORDINATOR, "/schedule")
    msg = await harness.press(COORDINATOR, msg, "How well are we working with you?")
    msg = await harness.press(COORDINATOR, msg, "Organisations")
    msg = await harness.press(COORDINATOR, msg, "Monthly")
    msg = await harness.press(COORDINATOR, msg, "first Monday")
    assert "What time" in msg.text or "At what time" in msg.text
    msg = await harness.say(COORDINATOR, "9:30")
    msg = await harness.press(COORDINATOR, msg, "10 days")
    msg = await harness.press(COORDINATOR, msg, "2 days before")
    # FakeClock starts Monday 5 January 2026 at 09:00: the next first Mondays, London time.
    assert "Mon 5 Jan 2026, 09:30" in msg.text and "Mon 2 Feb 2026, 09:30" in msg.text
    assert "Mon 2 Mar 2026, 09:30" in msg.text
    msg = await harness.press(COORDINATOR, msg, "Confirm")
    assert "Scheduled" in msg.text
    with session_scope(harness.ctx.sessions) as s:
        schedule = s.scalar(select(Schedule))
        assert schedule is not None and schedule.cron == "30 9 1-7 * mon"
        assert s.scalar(select(func.count()).select_from(Round)) == 1


async def test_dialog_refuses_stale_forged_and_bad_text(harness: BotHarness) -> None:
    people(harness, 1)
    first = await harness.say(COORDINATOR, "/schedule")
    old_data = first.buttons[0]["callback_data"]
    msg = await harness.press(COORDINATOR, first, "How well are we working with you?")
    assert "Who is asked" in msg.text
    harness.standin.press_button(COORDINATOR, msg.message_id, old_data, chat_id=COORDINATOR)
    harness.standin.press_button(
        COORDINATOR, msg.message_id, "co:s:aud:hackers", chat_id=COORDINATOR
    )
    await harness.settle(0.5)
    alerts = [a.text for a in harness.standin.callback_answers if a.show_alert]
    assert any("earlier step" in (t or "") for t in alerts)
    assert any("not one I offered" in (t or "") for t in alerts)
    msg = await harness.press(COORDINATOR, msg, "Everyone")
    msg = await harness.press(COORDINATOR, msg, "A date and time")
    bad = await harness.say(COORDINATOR, "next tuesday-ish")
    assert "YYYY-MM-DD HH:MM" in bad.text


async def test_remind_close_and_cancel_with_confirmation(harness: BotHarness) -> None:
    recipients = people(harness, 2)
    clock = harness.ctx.clock
    with session_scope(harness.ctx.sessions) as s:
        consultation = factories.consultation(s)
        round_ = factories.open_round(s, consultation, now=clock.now())
        for uid in recipients:
            person = s.scalar(select(Participant).where(Participant.telegram_user_id == uid))
            assert person is not None
            factories.invitation(
                s,
                round_,
                person,
                status=InvitationStatus.COMPLETED
                if uid == recipients[0]
                else InvitationStatus.DELIVERED,
            )
        rid = round_.id
    reply = await harness.say(COORDINATOR, f"/remind {rid}")
    assert "Reminding 1 person" in reply.text
    reminder = await harness.standin.wait_for_message(recipients[1], after=0, timeout=10)
    assert "reminder" in reminder.text.lower()
    assert harness.standin.messages(recipients[0]) == []

    ask = await harness.say(COORDINATOR, f"/cancel {rid}")
    assert "Cancel round" in ask.text
    done = await harness.press(COORDINATOR, ask, "Yes, cancel it")
    assert "cancelled" in done.text
    harness.standin.press(COORDINATOR, ask, "Yes, cancel it")  # twice
    await harness.settle(0.5)
    assert any("already cancelled" in (a.text or "") for a in harness.standin.callback_answers)
    assert "already cancelled" in (await harness.say(COORDINATOR, f"/close {rid}")).text
    assert "no round 99" in (await harness.say(COORDINATOR, "/round 99")).text.lower()
    with session_scope(harness.ctx.sessions) as s:
        actions = list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
        assert actions.count("round.cancel") == 1 and "round.remind" in actions


async def test_every_coordinator_command_and_button_is_refused_to_members_and_leads(
    harness: BotHarness,
) -> None:
    people(harness, 1)
    with session_scope(harness.ctx.sessions) as s:
        round_ = factories.open_round(s, factories.consultation(s), now=harness.ctx.clock.now())
        rid = round_.id
        grant_role(s, LEAD, Role.LEAD)
    for user in (MEMBER, LEAD):
        for command in (
            "/schedule",
            "/rounds",
            f"/round {rid}",
            f"/remind {rid}",
            f"/close {rid}",
            f"/cancel {rid}",
        ):
            answer = await harness.say(user, command)
            assert "only for coordinators" in answer.text, (user, command)
    # Buttons: a forged cancel, a forged dialog step, a coordinator's real button pressed by
    # someone else's hand (the stand-in lets a member press data in their own chat).
    welcome = await harness.say(MEMBER, "/start")
    for data in (f"co:x:{rid}", "co:s:con:1", "co:s:ok:go", f"co:k:{rid}", f"co:xs:{rid}"):
        harness.standin.press_button(MEMBER, welcome.message_id, data, chat_id=MEMBER)
    await harness.settle(0.6)
    refused = [a for a in harness.standin.callback_answers if a.user_id == MEMBER]
    assert len(refused) == 5 and all("only for coordinators" in (a.text or "") for a in refused)
    with session_scope(harness.ctx.sessions) as s:
        again = s.get(Round, rid)
        assert again is not None and again.status == RoundStatus.OPEN
        assert s.scalar(select(func.count()).select_from(Schedule)) == 0


async def test_round_completes_through_429_and_403_without_retrying_the_blocked(
    harness: BotHarness,
) -> None:
    recipients = people(harness, 60)
    blocked = recipients[10:13]
    for uid in blocked:
        harness.standin.block_chat(uid)
    # A stricter Telegram than our pace: 15/s overall with a burst of 15, against our 25/s.
    harness.standin.flood_limits = FloodLimits(global_rate=15.0, global_burst=15.0)
    harness.standin.reset_stats()
    with session_scope(harness.ctx.sessions) as s:
        consultation = factories.consultation(s)
        round_ = schedule_once(
            s,
            consultation,
            audience={"who": "everyone"},
            opens_at=harness.ctx.clock.now(),
            open_for=timedelta(days=3),
            remind_before=[],
            progress_chat_id=COORDINATOR,
        )
        rid = round_.id
    await tick_now(harness.ctx)
    total = 60 + 3  # the 60, the south one, the member and the lead

    def finished() -> bool:
        with session_scope(harness.ctx.sessions) as s:
            return not s.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(
                    Delivery.round_id == rid,
                    Delivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.SENDING)),
                )
            )

    await wait_until(finished, timeout=30)
    stats = harness.standin.stats
    with session_scope(harness.ctx.sessions) as s:
        by_status = dict(
            s.execute(
                select(Delivery.status, func.count())
                .where(Delivery.round_id == rid)
                .group_by(Delivery.status)
            ).all()
        )
        assert by_status == {DeliveryStatus.SENT: total - 3, DeliveryStatus.UNREACHABLE: 3}
        for uid in blocked:
            person = s.scalar(select(Participant).where(Participant.telegram_user_id == uid))
            assert person is not None and person.status == ParticipantStatus.UNREACHABLE
            row = s.scalar(select(Delivery).where(Delivery.chat_id == uid))
            assert row is not None and row.attempts == 1
    assert stats.errors[403] == 3  # each blocked chat was tried exactly once
    # Every 429 pauses the whole sender: a handful, not a storm of one per message.
    assert 1 <= stats.responses_429 <= 8, stats.responses_429
    assert stats.messages_sent >= total - 3


async def test_closing_a_round_delivers_the_digest_to_its_lead_and_coordinators(
    harness: BotHarness,
) -> None:
    people(harness, 3)
    with session_scope(harness.ctx.sessions) as s:
        coordinator = grant_role(s, COORDINATOR, Role.COORDINATOR)
        coordinator.chat_id = COORDINATOR
        round_ = schedule_once(
            s,
            factories.consultation(s),
            audience={"everyone": True},
            opens_at=harness.ctx.clock.now(),
            open_for=timedelta(days=10),
            remind_before=[],
        )
        round_id = round_.id
    harness.standin.register_chat(COORDINATOR)
    await tick_now(harness.ctx)
    harness.ctx.clock.advance(timedelta(days=10, minutes=1))  # type: ignore[attr-defined]
    await tick_now(harness.ctx)

    def digests_sent() -> bool:
        with session_scope(harness.ctx.sessions) as s:
            rows = s.scalars(select(Delivery).where(Delivery.kind == "digest")).all()
            return bool(rows) and all(r.status == DeliveryStatus.SENT for r in rows)

    await wait_until(digests_sent, timeout=20)
    with session_scope(harness.ctx.sessions) as s:
        assert s.get(Round, round_id).status == RoundStatus.CLOSED  # type: ignore[union-attr]
    for chat in (LEAD, COORDINATOR):
        assert any(
            f"digest-round-{round_id}" in d.file_name for d in harness.standin.documents(chat)
        )
    assert not harness.standin.documents(MEMBER), "members do not get the digest"


async def test_cancel_offers_to_stop_a_recurring_series(harness: BotHarness) -> None:
    people(harness, 1)
    with session_scope(harness.ctx.sessions) as s:
        schedule, first = create_schedule(
            s,
            factories.consultation(s),
            audience={"who": "everyone"},
            cron="0 9 1-7 * mon",
            zone=harness.ctx.settings.zone,
            open_for=timedelta(days=5),
            remind_before=[],
            now=harness.ctx.clock.now(),
        )
        rid = first.id
    ask = await harness.say(COORDINATOR, f"/cancel {rid}")
    assert "recurring series" in ask.text
    done = await harness.press(COORDINATOR, ask, "Cancel it and stop the series")
    assert "series is stopped" in done.text
    with session_scope(harness.ctx.sessions) as s:
        stopped = s.get(Schedule, schedule.id)
        assert stopped is not None and not stopped.active
        assert s.get(Round, rid).status == RoundStatus.CANCELLED  # type: ignore[union-attr]
    # Pressed again (stale): refused kindly, nothing changes.
    harness.standin.press(COORDINATOR, ask, "Cancel it and stop the series")
    await harness.settle(0.4)
    assert any("already cancelled" in (a.text or "") for a in harness.standin.callback_answers)


async def test_a_step_whose_message_cannot_be_edited_comes_as_a_new_message(
    harness: BotHarness,
) -> None:
    people(harness, 1)
    first = await harness.say(COORDINATOR, "/schedule")
    first.deleted = True  # deleted in the coordinator's app; Telegram still delivers the press
    msg = await harness.press(COORDINATOR, first, "How well are we working with you?")
    assert "Who is asked" in msg.text and msg.message_id != first.message_id


async def test_a_stopped_lead_is_sent_nothing_more_not_even_the_digest(
    harness: BotHarness,
) -> None:
    people(harness, 3)
    clock = harness.ctx.clock
    with session_scope(harness.ctx.sessions) as s:
        coordinator = grant_role(s, COORDINATOR, Role.COORDINATOR)
        coordinator.chat_id = COORDINATOR
        lead = s.scalar(select(Participant).where(Participant.telegram_user_id == LEAD))
        assert lead is not None
        # Something already waiting in the outbox for the lead when they say /stop.
        enqueue(
            s,
            chat_id=LEAD,
            message=OutgoingMessage("a notice for later"),
            kind="notice",
            not_before=clock.now() + timedelta(hours=1),
            participant_id=lead.id,
        )
        round_id = schedule_once(
            s,
            factories.consultation(s),
            audience={"everyone": True},
            opens_at=clock.now(),
            open_for=timedelta(days=10),
            remind_before=[],
        ).id
    harness.standin.register_chat(COORDINATOR)
    assert "Stopped" in (await harness.say(LEAD, "/stop")).text
    stopped_at = harness.standin.cursor(LEAD)
    await tick_now(harness.ctx)  # opens: the lead's organisation is invited, the lead is not
    clock.advance(timedelta(days=10, minutes=1))  # type: ignore[attr-defined]
    await tick_now(harness.ctx)  # closes: the digest goes to the coordinator only

    def digests_sent() -> bool:
        with session_scope(harness.ctx.sessions) as s:
            rows = s.scalars(select(Delivery).where(Delivery.kind == "digest")).all()
            return bool(rows) and all(r.status == DeliveryStatus.SENT for r in rows)

    await wait_until(digests_sent, timeout=20)
    assert any(
        f"digest-round-{round_id}" in d.file_name for d in harness.standin.documents(COORDINATOR)
    )
    await harness.settle()
    assert harness.standin.cursor(LEAD) == stopped_at, "nothing reached the lead after /stop"
    assert not harness.standin.documents(LEAD)
    with session_scope(harness.ctx.sessions) as s:
        rows = s.scalars(select(Delivery).where(Delivery.chat_id == LEAD)).all()
        assert [(r.kind, r.status) for r in rows] == [("notice", DeliveryStatus.CANCELLED)]


async def test_schedule_warns_when_the_audience_is_not_the_one_the_set_is_written_for(
    harness: BotHarness,
) -> None:
    people(harness, 1)
    # The organisations' health check for everyone: service users would be asked it too.
    msg = await harness.say(COORDINATOR, "/schedule")
    msg = await harness.press(COORDINATOR, msg, "How well are we working with you?")
    assert "written for organisations" in msg.text
    msg = await harness.press(COORDINATOR, msg, "Everyone")
    msg = await harness.press(COORDINATOR, msg, "Now")
    msg = await harness.press(COORDINATOR, msg, "10 days")
    summary = await harness.press(COORDINATOR, msg, "No reminder")
    assert "⚠️" in summary.text and "written for organisations" in summary.text
    assert "service users" in summary.text
    assert "Confirm" in [b["text"] for b in summary.buttons]
    # For the organisations it is written for (or some of them): no warning.
    for audience in ("Organisations", "By area"):
        msg = await harness.say(COORDINATOR, "/schedule")
        msg = await harness.press(COORDINATOR, msg, "How well are we working with you?")
        msg = await harness.press(COORDINATOR, msg, audience)
        if audience == "By area":
            msg = await harness.press(COORDINATOR, msg, "North")
        msg = await harness.press(COORDINATOR, msg, "Now")
        msg = await harness.press(COORDINATOR, msg, "10 days")
        summary = await harness.press(COORDINATOR, msg, "No reminder")
        assert "Ready to schedule" in summary.text and "⚠️" not in summary.text
