"""Input that once broke a reply (issue 13): blank text, edited messages, control characters,
and what the log may say about the person who wrote."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.consultations.catalogue import import_consultation
from bot.consultations.sets import load_consultation
from bot.kernel.logs import setup_logging
from storage.db import session_scope
from storage.models import Answer, Invitation, Participant
from tests.support import factories
from tests.support.harness import BotHarness

ME = 3101
ERROR = "something went wrong"

TWO_TEXTS = """
id = "two-texts"
version = 1
title = "Two stories"
intro = "Two typed answers."
estimated_minutes = 1
audience_hint = "everyone"

[[questions]]
id = "story"
type = "text"
text = "What happened?"

[[questions]]
id = "next"
type = "text"
text = "What would help?"
"""


@pytest.fixture
def two_texts(harness: BotHarness, tmp_path: Path) -> int:
    """ME has joined and one round of two text questions is open for them: its invitation."""
    path = tmp_path / "two-texts.toml"
    path.write_text(TWO_TEXTS)
    with session_scope(harness.ctx.sessions) as session:
        consultation, _ = import_consultation(session, load_consultation(path))
        person = factories.participant(session, ME)
        return factories.invitation(session, factories.open_round(session, consultation), person).id


async def first_question(harness: BotHarness) -> None:
    intro = await harness.say(ME, "/resume")
    harness.standin.press(ME, intro, "Start now")
    await harness.standin.wait_for_message(ME, predicate=lambda m: "1 of 2" in m.text)


def stored_texts(harness: BotHarness) -> list[str | None]:
    with session_scope(harness.ctx.sessions) as session:
        return [a.text for a in session.scalars(select(Answer).order_by(Answer.id))]


@pytest.mark.parametrize("blank", ["   ", "\u3000", "\n\t"])
async def test_whitespace_only_text_gets_a_reply_not_an_error(
    harness: BotHarness, two_texts: int, blank: str
) -> None:
    stranger = await harness.say(ME + 1, blank)
    assert ERROR not in stranger.text and "invite link" in stranger.text
    nothing_yet = await harness.say(ME, blank)
    assert ERROR not in nothing_yet.text and "Two stories" in nothing_yet.text
    await first_question(harness)
    asked_again = await harness.say(ME, blank)
    assert ERROR not in asked_again.text and "1 of 2" in asked_again.text
    assert stored_texts(harness) == []


async def test_an_edited_answer_is_not_taken_as_the_next_answer(
    harness: BotHarness, two_texts: int
) -> None:
    await first_question(harness)
    sent = harness.standin.send_text(ME, "The form came back twice")
    card = await harness.standin.wait_for_message(ME, predicate=lambda m: "2 of 2" in m.text)
    harness.standin.edit_text(ME, sent["message"]["message_id"], "The form came back")
    hint = await harness.standin.wait_for_message(
        ME, predicate=lambda m: m.message_id > card.message_id
    )
    assert "Change" in hint.text and "answer again" in hint.text
    await harness.settle()
    assert stored_texts(harness) == ["The form came back twice"]
    with session_scope(harness.ctx.sessions) as session:
        invitation = session.get(Invitation, two_texts)
        assert invitation is not None and len(invitation.answers) == 1


async def test_an_edited_command_is_not_a_command(harness: BotHarness, two_texts: int) -> None:
    sent = harness.standin.send_text(ME, "/mydata")
    await harness.standin.wait_for_message(ME, predicate=lambda m: "/forget erases" in m.text)
    await harness.settle()
    before = len(harness.standin.messages(ME))
    harness.standin.edit_text(ME, sent["message"]["message_id"], "/forget")
    hint = await harness.standin.wait_for_message(
        ME, predicate=lambda m: m.message_id > harness.standin.messages(ME)[before - 1].message_id
    )
    assert "Change" in hint.text and not hint.buttons, "no erase confirmation"
    await harness.settle()
    assert len(harness.standin.messages(ME)) == before + 1
    with session_scope(harness.ctx.sessions) as session:
        assert session.scalar(select(Participant)) is not None


async def test_control_characters_are_cleaned_before_an_answer_is_stored(
    harness: BotHarness, two_texts: int
) -> None:
    await first_question(harness)
    await harness.say(ME, "The form\x00 came\x07 back\x1b\ntwice\tover\x7f")
    await harness.standin.wait_for_message(ME, predicate=lambda m: "2 of 2" in m.text)
    nothing_left = await harness.say(ME, "\x00\x01")
    assert ERROR not in nothing_left.text and "2 of 2" in nothing_left.text
    assert stored_texts(harness) == ["The form came back\ntwice\tover"]


async def test_an_unknown_command_logs_ids_not_names(
    harness: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # the bot's level in production; PTB's DEBUG dumps updates
    harness.standin.send_text(ME, "/frobnicate now", first_name="Zelda", username="zelda_q")
    reply = await harness.standin.wait_for_message(ME)
    assert "/frobnicate" in reply.text
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "unknown command" in logged and str(ME) in logged
    assert "Zelda" not in logged and "zelda_q" not in logged and "frobnicate" not in logged


@pytest.mark.parametrize("value", ["²", "١", "٣"])  # superscript two; Arabic-Indic one, three
async def test_a_unicode_digit_in_callback_data_is_answered_kindly(
    harness: BotHarness, two_texts: int, value: str
) -> None:
    # Issue 13 #5: str.isdigit() says yes to these, and int() then refuses "²" (or reads "١"
    # as 1): only ASCII digits are numbers, so the press is refused kindly, nothing stored.
    await first_question(harness)
    with session_scope(harness.ctx.sessions) as session:
        invitation = session.get(Invitation, two_texts)
        assert invitation is not None
        question = invitation.round.consultation.questions[0].id
    card = harness.standin.last_message(ME)
    assert card is not None
    for data in (
        f"a:{two_texts}:{question}:{value}",
        f"t:{two_texts}:{question}:{value}",
        f"a:{two_texts}:{value}:0",
        f"s:{value}:{question}",
        f"p:go:{value}",
    ):
        reply = await harness.press_data(ME, card, data)
        assert ERROR not in reply.text.lower() and "doesn't work" in reply.text, data
    await harness.settle()
    assert not any(ERROR in m.text.lower() for m in harness.standin.messages(ME))
    assert stored_texts(harness) == []


def test_debug_logging_keeps_ptbs_whole_updates_out() -> None:
    """At log_level DEBUG the bot's own lines (ids only) come through, PTB's do not: they
    carry whole updates, with people's names and words."""
    root, ptb = logging.getLogger(), logging.getLogger("telegram")
    handlers, level, ptb_level = root.handlers[:], root.level, ptb.level
    setup_logging("DEBUG")
    try:
        assert logging.getLogger("bot.participation").isEnabledFor(logging.DEBUG)
        assert not logging.getLogger("telegram.ext.Application").isEnabledFor(logging.DEBUG)
        assert logging.getLogger("telegram.ext.Application").isEnabledFor(logging.INFO)
    finally:
        root.handlers[:], root.level = handlers, level
        ptb.setLevel(ptb_level)
