"""Free text is coded the moment it is stored through the chat, so a digest codes nothing:
AUTO codes on the first answer, recoded on a change, and a coordinator's HUMAN codes kept; in
the writer's language, so Welsh text (no Welsh cues are shipped) is stored uncoded."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.coding.coder import code_text
from bot.coding.stored import NO_CODE, UNCODED, code_uncoded_answers, codebook_for
from bot.consultations.catalogue import import_consultation
from bot.consultations.sets import load_consultation
from storage.db import session_scope
from storage.models import Answer, AnswerCode, CodeSource, Round
from tests.support import factories
from tests.support.harness import BotHarness

pytestmark = pytest.mark.languages("en", "cy")

ME = 3101

TWO_QUESTIONS = """
id = "coded-text"
version = 1
title = "Tell us more"
intro = "One button, one free text."
estimated_minutes = 1
audience_hint = "everyone"

[[questions]]
id = "when"
type = "single"
text = "When are you asked?"
options = [
  { id = "early", label = "Early" },
  { id = "late", label = "Late", codes = ["ext.engagement"] },
]

[[questions]]
id = "more"
type = "text"
text = "What gets in the way?"
required = false
"""


def _coder(harness: BotHarness, text: str) -> list[str]:
    """What the coder makes of `text` (rules and model), NO_CODE when nothing."""
    codebook = codebook_for(harness.ctx.settings, harness.ctx.loaded)
    return sorted(code_text(text, codebook).codes) or [NO_CODE]


def _codes(harness: BotHarness) -> dict[CodeSource, list[str]]:
    with session_scope(harness.ctx.sessions) as session:
        answer = session.scalar(select(Answer).where(Answer.text.is_not(None)))
        assert answer is not None
        out: dict[CodeSource, list[str]] = {}
        for c in session.scalars(select(AnswerCode).where(AnswerCode.answer_id == answer.id)):
            out.setdefault(c.source, []).append(c.code)
        return {k: sorted(v) for k, v in out.items()}


async def to_the_text_question(
    harness: BotHarness, tmp_path: Path, *, language: str | None = None
) -> None:
    """ME, invited to a round of TWO_QUESTIONS, starts it and answers the first: the typed
    question is asked."""
    path = tmp_path / "coded.toml"
    path.write_text(TWO_QUESTIONS)
    with session_scope(harness.ctx.sessions) as session:
        consultation, _ = import_consultation(session, load_consultation(path))
        person = factories.participant(session, ME)
        person.language = language
        factories.invitation(session, factories.open_round(session, consultation), person)

    intro = await harness.say(ME, "/resume")
    harness.standin.press(ME, intro, "Start now")
    q1 = await harness.standin.wait_for_message(ME, predicate=lambda m: "1 of 2" in m.text)
    harness.standin.press(ME, q1, "Early")
    await harness.standin.wait_for_message(ME, predicate=lambda m: "2 of 2" in m.text)


async def test_text_is_coded_when_stored_and_recoded_on_change(
    harness: BotHarness, tmp_path: Path
) -> None:
    await to_the_text_question(harness, tmp_path)
    first = "Funding is always short term and confirmed late, so we cannot plan."
    await harness.say(ME, first)
    summary = await harness.standin.wait_for_message(ME, predicate=lambda m: "Thank you" in m.text)
    # Coded in the same update that stored it: no digest has run.
    assert "ext.funding" in _coder(harness, first)
    assert _codes(harness) == {CodeSource.AUTO: _coder(harness, first)}

    # A coordinator adds a code of their own; a change must leave it alone.
    with session_scope(harness.ctx.sessions) as session:
        answer = session.scalar(select(Answer).where(Answer.text.is_not(None)))
        assert answer is not None
        session.add(AnswerCode(answer_id=answer.id, code="int.capacity", source=CodeSource.HUMAN))

    change = await harness.press(ME, summary, "Change 2")
    second = "Meetings are in the daytime when our volunteers are at work."
    await harness.say(ME, second)
    again = await harness.standin.wait_for_message(
        ME, predicate=lambda m: "Thank you" in m.text and m.message_id != change.message_id
    )
    assert "daytime" in again.text
    assert "ext.funding" not in _coder(harness, second)
    assert _codes(harness) == {
        CodeSource.AUTO: _coder(harness, second),  # the funding code went with the old text
        CodeSource.HUMAN: ["int.capacity"],
    }

    # Text the coder finds nothing in is marked as coded, so a digest does not code it again.
    change = await harness.press(ME, again, "Change 2")
    third = "Hard to say really, it depends on the week."
    await harness.say(ME, third)
    await harness.standin.wait_for_message(
        ME, predicate=lambda m: "Thank you" in m.text and "Hard to say" in m.text
    )
    assert _coder(harness, third) == [NO_CODE]
    assert _codes(harness) == {CodeSource.AUTO: [NO_CODE], CodeSource.HUMAN: ["int.capacity"]}


async def test_welsh_text_is_stored_uncoded_even_after_a_switch_to_welsh(
    harness: BotHarness, tmp_path: Path
) -> None:
    """The shipped codebook has no Welsh cues: a Welsh speaker's text is stored uncoded for a
    coordinator, never coded with the English cues its loan words would match, also when they
    were asked in English and switched to Welsh mid-round."""
    await to_the_text_question(harness, tmp_path, language="en")
    choice = await harness.say(ME, "/language")
    await harness.press(ME, choice, "Cymraeg")
    card = await harness.say(ME, "/resume")
    assert "2 o 2" in card.text
    welsh = "Mae'r funding yn short term a does dim digon o volunteers"
    await harness.say(ME, welsh)
    await harness.standin.wait_for_message(ME, predicate=lambda m: "Diolch!" in m.text)
    assert "ext.funding" in _coder(harness, welsh), "English cues would code it"
    assert _codes(harness) == {CodeSource.AUTO: [UNCODED]}

    # The next digest's catch-up leaves it for a coordinator, as stored.
    with session_scope(harness.ctx.sessions) as session:
        round_ids = list(session.scalars(select(Round.id)))
        codebook = codebook_for(harness.ctx.settings, harness.ctx.loaded)
        assert code_uncoded_answers(session, round_ids, codebook) == 0
    assert _codes(harness) == {CodeSource.AUTO: [UNCODED]}
