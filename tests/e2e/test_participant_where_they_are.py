"""Bringing a person to where they are (issue 13): a summary too long for one message, a
press redelivered or repeated after a crash, and a round that opened while they were away."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from bot.consultations.catalogue import import_consultation
from bot.consultations.sets import load_consultation
from bot.kernel.context import AppContext
from bot.rounds.events import run_due_events
from bot.rounds.planning import schedule_once
from bot.rounds.services import round_services
from standin import BotApiStandIn
from standin.models import BotMessage
from storage.db import session_scope
from storage.models import Answer, Invitation, InvitationStatus, Participant, ParticipantStatus
from tests.conftest import Database
from tests.support import factories
from tests.support.harness import TOKEN, BotHarness

ME = 3201
ERROR = "something went wrong"
LIMIT = 4096  # Telegram's, which the stand-in enforces

SIX_TEXTS = """
id = "six-texts"
version = 1
title = "Six long stories"
intro = "Six typed answers."
estimated_minutes = 10
audience_hint = "everyone"
""" + "".join(
    f"""
[[questions]]
id = "story{n}"
type = "text"
text = "Tell us about part {n} of how the partnership works with you, in your own words."
"""
    for n in range(1, 7)
)


def setup_six_texts(harness: BotHarness, path: Path) -> int:
    path.write_text(SIX_TEXTS)
    with session_scope(harness.ctx.sessions) as session:
        consultation, _ = import_consultation(session, load_consultation(path))
        person = factories.participant(session, ME)
        return factories.invitation(session, factories.open_round(session, consultation), person).id


def story(n: int) -> str:
    """About 800 characters, the most a typed answer may have, each answer's own."""
    words = f"Answer {n} begins here. " + "The forms & the meetings <never> end. " * 21
    return words[:800]


def errors(harness: BotHarness) -> list[str]:
    return [m.text for m in harness.standin.messages(ME) if ERROR in m.text.lower()]


async def test_a_summary_of_six_long_answers_fits_one_message_with_its_buttons(
    harness: BotHarness, tmp_path: Path
) -> None:
    invitation_id = setup_six_texts(harness, tmp_path / "six.toml")
    harness.standin.press(ME, await harness.say(ME, "/resume"), "Start now")
    for n in range(1, 7):
        await harness.standin.wait_for_message(ME, predicate=lambda m, n=n: f"{n} of 6" in m.text)
        await harness.say(ME, story(n))
    summary = await harness.standin.wait_for_message(ME, predicate=lambda m: "Thank you" in m.text)
    assert errors(harness) == []
    assert len(summary.text) <= LIMIT
    assert [b["text"] for b in summary.buttons] == [f"Change {n}" for n in range(1, 7)]
    for n in range(1, 7):
        # Each answer shortened alike, from its start, with an ellipsis to say so.
        assert f"→ Answer {n} begins here. The forms & the meetings <never>" in summary.text
    assert summary.text.count("…") == 6
    with session_scope(harness.ctx.sessions) as session:
        stored = session.scalars(select(Answer.text).order_by(Answer.id)).all()
        assert stored == [story(n) for n in range(1, 7)], "stored whole: only the summary is short"
        invitation = session.get(Invitation, invitation_id)
        assert invitation is not None and invitation.status == InvitationStatus.COMPLETED

    # At the summary step, /resume shows the summary again, Change buttons and all.
    again = await harness.say(ME, "/resume")
    assert again.text == summary.text and again.buttons == summary.buttons
    # And its Change buttons work: the card shows the whole answer so far.
    change = await harness.press(ME, again, "Change 3")
    assert "3 of 6" in change.text and story(3) in change.text
    assert errors(harness) == []


async def test_pressing_again_on_a_card_left_behind_brings_it_on(
    harness: BotHarness, tmp_path: Path
) -> None:
    # The edit that moves the card on is lost (Telegram refused it; a process killed before
    # it went out loses it the same way): the answer is stored and the card shows the old
    # question. Pressing again must move the card on, not just say "Already saved".
    path = tmp_path / "pulse.toml"
    path.write_text((factories.SETS / "pulse.toml").read_text())
    with session_scope(harness.ctx.sessions) as session:
        consultation, _ = import_consultation(session, load_consultation(path))
        round_ = factories.open_round(session, consultation)
        factories.invitation(session, round_, factories.participant(session, ME))
    standin = harness.standin
    standin.press(ME, await harness.say(ME, "/resume"), "Start now")
    card = await standin.wait_for_message(ME, predicate=lambda m: "1 of 2" in m.text)

    async def press_losing_the_edit(label: str) -> None:
        answered = len(standin.callback_answers)
        standin.fail_next(1, status=400, method="editMessageText")
        standin.press(ME, card, label)
        await harness.eventually(lambda: len(standin.callback_answers) > answered)

    await press_losing_the_edit("4")
    assert "1 of 2" in standin_cards(standin, {ME: card})[0].text, "left behind"
    moved = await harness.press(ME, card, "2")
    assert moved.message_id == card.message_id
    assert "✓ 4" in moved.text and "2 of 2" in moved.text and moved.buttons
    await harness.eventually(lambda: standin.callback_answers[-1].text == "Already saved ✓")

    await press_losing_the_edit("Skip")  # the last answer: the summary still comes
    summary = await standin.wait_for_message(ME, predicate=lambda m: "Thank you" in m.text)
    assert "2 of 2" in standin_cards(standin, {ME: card})[0].text, "left behind"
    shown = await harness.press(ME, card, "Skip")
    assert shown.message_id == card.message_id
    assert "✓ (skipped)" in shown.text and not shown.buttons
    await harness.settle()
    assert [m.message_id for m in standin.messages(ME) if "Thank you" in m.text] == [
        summary.message_id
    ], "a repeated tap brings the card on; the summary is not sent twice"
    with session_scope(harness.ctx.sessions) as session:
        answers = session.scalars(select(Answer).order_by(Answer.id)).all()
        assert [(a.number, a.skipped) for a in answers] == [(4.0, False), (None, True)]
    assert errors(harness) == []


# --- item 9: a press whose reply was lost ------------------------------------------------------

PEOPLE = range(3300, 3320)


def _bot_process_env(db: Database, standin: BotApiStandIn) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULTBOT_")}
    env.update(
        CONSULTBOT_TOKEN=TOKEN,
        CONSULTBOT_DATABASE__URL=db.url,
        CONSULTBOT_TELEGRAM__BASE_URL=standin.bot_base_url,
        CONSULTBOT_TELEGRAM__BASE_FILE_URL=standin.file_base_url,
        CONSULTBOT_TELEGRAM__POLL_TIMEOUT="1",
    )
    return env


async def _start_bot(env: dict[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from bot.cli import main; main()",
        "run",
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def _kill(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGKILL)
    await process.wait()


async def test_presses_redelivered_after_a_kill_bring_each_card_on(
    ctx: AppContext, db: Database, standin: BotApiStandIn, tmp_path: Path
) -> None:
    # `consultbot run` stores a burst of answers and is killed before any reply goes out
    # (edits held by the Bot API, the batch not yet confirmed); on restart Telegram delivers
    # the presses again. Each is a duplicate, and each person's card must still move on.
    path = tmp_path / "all.toml"
    path.write_text((factories.SETS / "pulse.toml").read_text())
    with session_scope(ctx.sessions) as session:
        consultation, _ = import_consultation(session, load_consultation(path))
        round_ = factories.open_round(session, consultation)
        for user_id in PEOPLE:
            standin.register_chat(user_id)
            factories.invitation(session, round_, factories.participant(session, user_id))
    env = _bot_process_env(db, standin)
    first = await _start_bot(env, tmp_path)
    try:
        cards = {}
        for user_id in PEOPLE:
            intro = await harness_say(standin, user_id, "/resume", timeout=30)
            standin.press(user_id, intro, "Start now")
            cards[user_id] = await standin.wait_for_message(
                user_id, predicate=lambda m: "1 of 2" in m.text
            )
        await asyncio.sleep(0)  # the long poll is waiting again
        standin.slow(3600, "editMessageText")  # no reply reaches anyone before the kill...
        standin.slow(3600, "getUpdates")  # ...and the batch of presses is never confirmed
        for user_id, card in cards.items():
            standin.press(user_id, card, "4")
        await stored_once(ctx, len(PEOPLE), wait=True)
    finally:
        await _kill(first)
    assert all("1 of 2" in card.text for card in standin_cards(standin, cards))
    standin.slow(0, "editMessageText")
    standin.slow(0, "getUpdates")

    second = await _start_bot(env, tmp_path)
    try:
        for user_id in PEOPLE:
            await standin.wait_for_message(
                user_id, predicate=lambda m: "2 of 2" in m.text, after=0, timeout=30
            )
        moved = standin_cards(standin, cards)
        assert all("✓ 4" in m.text and "2 of 2" in m.text and m.buttons for m in moved)
        for user_id in PEOPLE:
            assert len(standin.messages(user_id)) == 2, "the intro and its one card"
        assert await stored_once(ctx, len(PEOPLE))

        # The same for typed answers: the second question's, each finishing the round.
        standin.slow(3600, "sendMessage")
        standin.slow(3600, "getUpdates")
        for user_id in PEOPLE:
            standin.send_text(user_id, f"More help with forms, says {user_id}")
        await stored_once(ctx, 2 * len(PEOPLE), wait=True)
    finally:
        await _kill(second)
    standin.slow(0, "sendMessage")
    standin.slow(0, "getUpdates")

    third = await _start_bot(env, tmp_path)
    try:
        for user_id in PEOPLE:
            summary = await standin.wait_for_message(
                user_id, predicate=lambda m: "Thank you" in m.text, after=0, timeout=30
            )
            assert f"More help with forms, says {user_id}" in summary.text
            assert [b["text"] for b in summary.buttons] == ["Change 1", "Change 2"]
    finally:
        await _kill(third)
    for user_id in PEOPLE:
        assert not any(ERROR in m.text.lower() for m in standin.messages(user_id))
    assert await stored_once(ctx, 2 * len(PEOPLE))


async def stored_once(ctx: AppContext, count: int, *, wait: bool = False) -> bool:
    """Whether `count` answers are stored, one per question and person (`wait`: for them)."""
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        with session_scope(ctx.sessions) as session:
            answers = session.execute(select(Answer.invitation_id, Answer.question_id)).all()
        if len(answers) >= count or not wait:
            assert len(set(answers)) == len(answers)
            return len(answers) == count
        assert asyncio.get_running_loop().time() < deadline, f"{len(answers)} answers stored"
        await asyncio.sleep(0.05)


def standin_cards(standin: BotApiStandIn, cards: dict[int, BotMessage]) -> list[BotMessage]:
    """Each card as the chat shows it now."""
    return [
        next(m for m in standin.messages(user_id) if m.message_id == card.message_id)
        for user_id, card in cards.items()
    ]


async def harness_say(
    standin: BotApiStandIn, user_id: int, text: str, *, timeout: float
) -> BotMessage:
    standin.send_text(user_id, text)
    return await standin.wait_for_message(user_id, timeout=timeout)


# --- item 18: a round that opened while they were away ------------------------------------------


def open_now(harness: BotHarness, set_name: str, audience: dict[str, object]) -> int:
    """A round of `set_name` scheduled and opened now, as the rounds job would: its id."""
    ctx = harness.ctx
    with session_scope(ctx.sessions) as session:
        round_ = schedule_once(
            session,
            factories.consultation(session, set_name),
            audience=audience,
            opens_at=ctx.clock.now(),
            open_for=timedelta(days=5),
            remind_before=[],
        )
        round_id = round_.id
    run_due_events(ctx.sessions, now=ctx.clock.now(), services=round_services(ctx))
    return round_id


def invited(harness: BotHarness, user_id: int) -> dict[int, InvitationStatus]:
    with session_scope(harness.ctx.sessions) as session:
        rows = session.execute(
            select(Invitation.round_id, Invitation.status)
            .join(Participant)
            .where(Participant.telegram_user_id == user_id)
        )
        return {round_id: status for round_id, status in rows}


async def test_a_round_opened_during_a_pause_is_offered_on_resume(harness: BotHarness) -> None:
    with session_scope(harness.ctx.sessions) as session:
        org = factories.organisation(session, "Riverside Food Bank", area="east")
        factories.participant(session, ME, organisation=org)
    assert "Paused" in (await harness.say(ME, "/pause")).text
    everyone = open_now(harness, "pulse", {"who": "everyone"})
    elsewhere = open_now(harness, "pulse", {"who": "everyone", "where": {"area": "north"}})
    assert invited(harness, ME) == {}, "paused: left out when they opened"

    back = await harness.say(ME, "/resume")
    assert "Welcome back" in back.text
    intro = await harness.standin.wait_for_message(
        ME, predicate=lambda m: "Monthly pulse" in m.text
    )
    assert invited(harness, ME) == {everyone: InvitationStatus.DELIVERED}, "not the north's"
    harness.standin.press(ME, intro, "Start now")
    await harness.standin.wait_for_message(ME, predicate=lambda m: "1 of 2" in m.text)
    assert elsewhere not in invited(harness, ME)
    # Coming back again offers nothing twice.
    again = await harness.say(ME, "/resume")
    assert "1 of 2" in again.text and len(invited(harness, ME)) == 1


async def test_a_round_opened_while_blocked_is_offered_on_start(harness: BotHarness) -> None:
    with session_scope(harness.ctx.sessions) as session:
        factories.participant(session, ME, status=ParticipantStatus.UNREACHABLE)
    round_id = open_now(harness, "pulse", {"who": "everyone"})
    assert invited(harness, ME) == {}
    back = await harness.say(ME, "/start")
    assert "Welcome back" in back.text
    intro = await harness.standin.wait_for_message(
        ME, predicate=lambda m: "Monthly pulse" in m.text
    )
    assert intro.buttons and invited(harness, ME) == {round_id: InvitationStatus.DELIVERED}


async def test_a_latecomer_is_not_offered_a_round_the_fatigue_cap_kept_from_them(
    harness: BotHarness,
) -> None:
    cap = harness.ctx.settings.rounds.max_rounds_per_period
    with session_scope(harness.ctx.sessions) as session:
        org = factories.organisation(session, "Riverside Food Bank")
        factories.participant(session, ME + 1, organisation=org)
        factories.participant(session, ME, organisation=org, status=ParticipantStatus.PAUSED)
    asked = [open_now(harness, "pulse", {"who": "everyone"}) for _ in range(cap)]
    capped = open_now(harness, "pulse", {"who": "everyone"})
    assert capped not in invited(harness, ME + 1), "the organisation was asked often enough"
    await harness.say(ME, "/resume")
    await harness.standin.wait_for_message(ME, predicate=lambda m: "Monthly pulse" in m.text)
    assert sorted(invited(harness, ME)) == asked
