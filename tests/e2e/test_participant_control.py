"""A participant in control: /pause, /stop, /resume, /mydata, /forget, and blocking the bot."""

from __future__ import annotations

import json

from sqlalchemy import inspect, select, text

from bot.kernel.audit import record
from bot.kernel.reply import OutgoingMessage
from bot.outbox.queue import enqueue
from storage.db import session_scope
from storage.models import Answer, Base, Invitation, Participant, ParticipantStatus
from tests.support import factories
from tests.support.harness import BotHarness

ME = 4001


def seed(harness: BotHarness) -> int:
    with session_scope(harness.ctx.sessions) as session:
        org = factories.organisation(session, "Riverside Food Bank")
        person = factories.participant(
            session, ME, organisation=org, profile={"area": "east"}, display_name="Sam Q"
        )
        round_ = factories.open_round(session, factories.consultation(session, "pulse"))
        invitation = factories.invitation(session, round_, person)
        enqueue(
            session,
            chat_id=ME,
            message=OutgoingMessage("hi"),
            kind="invitation",
            not_before=harness.ctx.clock.now(),
            participant_id=person.id,
        )
        record(session, "participant.consent", actor=ME, subject=("participant", person.id))
        return invitation.id


def status(harness: BotHarness) -> ParticipantStatus | None:
    with session_scope(harness.ctx.sessions) as session:
        person = session.scalar(select(Participant))
        return person.status if person else None


async def test_pause_stop_resume(harness: BotHarness) -> None:
    seed(harness)
    assert "Paused" in (await harness.say(ME, "/pause")).text
    assert status(harness) == ParticipantStatus.PAUSED
    back = await harness.say(ME, "/resume")
    assert "Welcome back" in back.text
    await harness.standin.wait_for_message(ME, predicate=lambda m: "Monthly pulse" in m.text)
    assert status(harness) == ParticipantStatus.ACTIVE
    assert "Stopped" in (await harness.say(ME, "/stop")).text
    assert status(harness) == ParticipantStatus.STOPPED
    hint = await harness.say(ME, "/resume")
    assert "/start" in hint.text and status(harness) == ParticipantStatus.STOPPED
    again = await harness.say(ME, "/start")
    assert "Welcome back" in again.text
    assert status(harness) == ParticipantStatus.ACTIVE


async def test_mydata_matches_the_database(harness: BotHarness) -> None:
    inv_id = seed(harness)
    intro = await harness.say(ME, "/resume")
    harness.standin.press(ME, intro, "Start now")
    q1 = await harness.standin.wait_for_message(ME, predicate=lambda m: "1 of 2" in m.text)
    harness.standin.press(ME, q1, "3")
    await harness.standin.wait_for_message(ME, predicate=lambda m: "2 of 2" in m.text)
    summary = await harness.say(ME, "/mydata")
    assert "Riverside Food Bank" in summary.text
    await harness.settle(0.3)
    [document] = harness.standin.documents(ME)
    data = json.loads(document.content)
    with session_scope(harness.ctx.sessions) as session:
        person = session.scalar(select(Participant))
        assert person is not None
        assert data["participant"]["telegram_user_id"] == person.telegram_user_id
        assert data["participant"]["profile"] == person.profile
        assert data["participant"]["organisation"] == "Riverside Food Bank"
        invitation = session.get(Invitation, inv_id)
        assert invitation is not None
        [consultation] = data["consultations"]
        assert consultation["status"] == invitation.status.value == "started"
        [answer] = consultation["answers"]
        stored = session.scalar(select(Answer))
        assert stored is not None and answer["number"] == stored.number == 3
        assert len(data["messages_queued_or_sent"]) == 1
        assert any(e["action"] == "participant.consent" for e in data["activity"])


async def test_forget_leaves_nothing_that_names_the_person(harness: BotHarness) -> None:
    inv_id = seed(harness)
    intro = await harness.say(ME, "/resume")
    harness.standin.press(ME, intro, "Start now")
    q1 = await harness.standin.wait_for_message(ME, predicate=lambda m: "1 of 2" in m.text)
    harness.standin.press(ME, q1, "3")
    await harness.standin.wait_for_message(ME, predicate=lambda m: "2 of 2" in m.text)
    confirm = await harness.say(ME, "/forget")
    kept = await harness.press(ME, confirm, "No, keep it")
    assert "nothing has been erased" in kept.text
    confirm = await harness.say(ME, "/forget")
    gone = await harness.press(ME, confirm, "Yes, erase everything")
    assert "not recalled" in gone.text
    with session_scope(harness.ctx.sessions) as session:
        assert session.get(Invitation, inv_id) is None
        # Every table, every column: no trace of the Telegram id or the name.
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)).mappings():
                values = [str(v) for v in row.values()]
                assert str(ME) not in values, (table.name, dict(row))
                assert not any("Sam Q" in v for v in values), (table.name, dict(row))
        assert session.scalar(select(Participant)) is None
        assert session.scalar(select(Answer)) is None
        names = inspect(session.get_bind()).get_table_names()
        assert "participants" in names
        session.execute(text("SELECT 1"))
    # Pressing the old confirmation again finds nobody.
    again = await harness.press_data(ME, confirm, "f:yes")
    assert "don't keep anything" in again.text


async def test_blocking_marks_unreachable_and_start_brings_back(harness: BotHarness) -> None:
    seed(harness)
    harness.standin.block_chat(ME, notify=True)
    await harness.settle(0.4)
    assert status(harness) == ParticipantStatus.UNREACHABLE
    harness.standin.unblock_chat(ME)
    await harness.say(ME, "/start")
    await harness.standin.wait_for_message(ME, predicate=lambda m: "Monthly pulse" in m.text)
    assert status(harness) == ParticipantStatus.ACTIVE
    # A 403 on a direct reply (they blocked the bot while it was answering) marks them too.
    harness.standin.fail_next(1, status=403, method="sendMessage")
    harness.standin.send_text(ME, "/pause")
    await harness.settle(0.5)
    assert status(harness) == ParticipantStatus.UNREACHABLE
