"""Everyone takes part in their own language, end to end through the stand-in: the choice
before the privacy notice, a round answered in Welsh and in English with the answers counted
together, /language mid-round, a set without Welsh, and forged language presses."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.consultations.catalogue import import_consultation
from bot.consultations.sets import load_consultation
from bot.kernel.config import Settings, load_settings
from bot.participation.invites import create_invite
from storage.db import session_scope
from storage.models import AnswerChoice, Invitation, Participant
from tests.conftest import Database
from tests.support import factories
from tests.support.harness import BotHarness

CY, EN = 4001, 4002
PRIVATE = {"type": "all_private_chats"}

BILINGUAL = """
id = "bilingual"
version = 1
title = "Getting help"
intro = "Two questions about getting help."
estimated_minutes = 1
audience_hint = "everyone"

[[questions]]
id = "when"
type = "single"
text = "When did you last ask for help?"
options = [
  { id = "week", label = "This week" },
  { id = "month", label = "This month" },
]

[[questions]]
id = "easy"
type = "yesno"
text = "Was it easy?"

[translations.cy]
title = "Cael help"
intro = "Dau gwestiwn am gael help."
"when.text" = "Pryd wnaethoch chi ofyn am help ddiwethaf?"
"when.o.week" = "Yr wythnos hon"
"when.o.month" = "Y mis hwn"
"easy.text" = "Oedd hi'n hawdd?"
"""

ENGLISH_ONLY = """
id = "english-only"
version = 1
title = "Only in English"
intro = "One question."
estimated_minutes = 1
audience_hint = "everyone"

[[questions]]
id = "easy"
type = "yesno"
text = "Was it easy?"
"""


@pytest.fixture
def settings(db: Database, tmp_path: Path) -> Settings:
    return load_settings(
        None,
        database={"url": db.url},
        partnership={"name": "Riverside Partnership", "admins": [900], "languages": ["en", "cy"]},
    )


def open_round(harness: BotHarness, tmp_path: Path, text: str, people: dict[int, str]) -> int:
    """A round of the set `text`, with an invitation for each person (id: language)."""
    path = tmp_path / "set.toml"
    path.write_text(text)
    with session_scope(harness.ctx.sessions) as session:
        consultation, _ = import_consultation(session, load_consultation(path))
        round_ = factories.open_round(session, consultation)
        for user_id, language in people.items():
            person = factories.participant(session, user_id, profile={"area": "north"})
            person.language = language
            factories.invitation(session, round_, person)
        return round_.id


def buttons(message) -> list[str]:  # type: ignore[no-untyped-def]
    return [b["text"] for b in message.buttons]


async def test_a_welsh_speaker_chooses_welsh_before_the_notice(harness: BotHarness) -> None:
    with session_scope(harness.ctx.sessions) as session:
        code = create_invite(session, now=harness.ctx.clock.now(), organisation="Y Ganolfan").code
    harness.standin.set_language(CY, "cy")
    choice = await harness.say(CY, f"/start {code}")
    assert buttons(choice) == ["Cymraeg", "English"], "Telegram's language first"
    assert "Pa iaith" in choice.text and "Which language" in choice.text
    with session_scope(harness.ctx.sessions) as session:
        assert session.scalar(select(Participant)) is None, "nothing is stored before consent"
    notice = await harness.press(CY, choice, "Cymraeg")
    assert "Cyn i ni ddechrau: eich preifatrwydd" in notice.text and "Y Ganolfan" in notice.text
    assert buttons(notice) == ["Cytuno", "Dim diolch"]
    harness.standin.press(CY, notice, "Cytuno")
    await harness.standin.wait_for_message(CY, predicate=lambda m: "Diolch, rydych chi" in m.text)
    with session_scope(harness.ctx.sessions) as session:
        person = session.scalar(select(Participant))
        assert person is not None and person.language == "cy"

    # An English speaker sees English first, and gets the notice in English.
    with session_scope(harness.ctx.sessions) as session:
        code = create_invite(session, now=harness.ctx.clock.now(), organisation="Y Ganolfan").code
    harness.standin.set_language(EN, "en-GB")
    choice = await harness.say(EN, f"/start {code}")
    assert buttons(choice) == ["English", "Cymraeg"]
    notice = await harness.press(EN, choice, "English")
    assert "Before we start: your privacy" in notice.text


async def test_one_round_in_two_languages_counted_together(
    harness: BotHarness, tmp_path: Path
) -> None:
    open_round(harness, tmp_path, BILINGUAL, {CY: "cy", EN: "en"})
    intro = await harness.say(CY, "/resume")
    assert "Cael help" in intro.text and "Dau gwestiwn am gael help." in intro.text
    assert "Hoffai Riverside Partnership glywed gennych chi." in intro.text
    assert "Mae'n cymryd tua 1 munud (2 cwestiwn)." in intro.text
    assert buttons(intro) == ["Dechrau nawr", "Wedyn", "Dim y tro hwn"]
    harness.standin.press(CY, intro, "Dechrau nawr")
    card = await harness.standin.wait_for_message(CY, predicate=lambda m: "1 o 2" in m.text)
    assert "Pryd wnaethoch chi ofyn am help ddiwethaf?" in card.text
    assert buttons(card) == ["Yr wythnos hon", "Y mis hwn"]
    card = await harness.press(CY, card, "Yr wythnos hon")
    assert "Oedd hi'n hawdd?" in card.text and buttons(card) == ["Ie", "Na"]
    harness.standin.press(CY, card, "Ie")
    thanks = await harness.standin.wait_for_message(CY, predicate=lambda m: "Diolch!" in m.text)
    assert "Mae eich atebion i “Cael help” wedi'u cadw:" in thanks.text
    assert "Yr wythnos hon" in thanks.text

    intro = await harness.say(EN, "/resume")
    assert "Getting help" in intro.text and "Two questions about getting help." in intro.text
    harness.standin.press(EN, intro, "Start now")
    card = await harness.standin.wait_for_message(EN, predicate=lambda m: "1 of 2" in m.text)
    assert "When did you last ask for help?" in card.text
    card = await harness.press(EN, card, "This week")
    harness.standin.press(EN, card, "Yes")
    thanks = await harness.standin.wait_for_message(EN, predicate=lambda m: "Thank you!" in m.text)
    assert "Your answers to “Getting help” are saved:" in thanks.text

    with session_scope(harness.ctx.sessions) as session:
        keys = session.scalars(select(AnswerChoice.option_key)).all()
        # Counted by option id, whatever language each person answered in.
        assert sorted(keys) == ["week", "week", "yes", "yes"]


async def test_language_switches_mid_round(harness: BotHarness, tmp_path: Path) -> None:
    open_round(harness, tmp_path, BILINGUAL, {EN: "en"})
    intro = await harness.say(EN, "/resume")
    harness.standin.press(EN, intro, "Start now")
    card = await harness.standin.wait_for_message(EN, predicate=lambda m: "1 of 2" in m.text)
    card = await harness.press(EN, card, "This month")
    assert "Was it easy?" in card.text
    choice = await harness.say(EN, "/language")
    set_ = await harness.press(EN, choice, "Cymraeg")
    assert "Iawn: Cymraeg. O hyn ymlaen bydda i'n ysgrifennu atoch chi" in set_.text
    card = await harness.say(EN, "/resume")
    assert "Oedd hi'n hawdd?" in card.text and buttons(card) == ["Ie", "Na"]
    with session_scope(harness.ctx.sessions) as session:
        person = session.scalar(select(Participant).where(Participant.telegram_user_id == EN))
        assert person is not None and person.language == "cy"
    # The command menu of their chat follows.
    menu = harness.standin.commands({"type": "chat", "chat_id": EN})
    assert {
        "command": "language",
        "description": "Dewis yr iaith rwy'n ysgrifennu atoch ynddi",
    } in (menu)
    help_ = await harness.say(EN, "/help")
    assert "/mydata – Gweld popeth rwy'n ei gadw amdanoch chi" in help_.text


async def test_a_set_without_welsh_is_said_in_its_own_language_with_a_note(
    harness: BotHarness, tmp_path: Path
) -> None:
    open_round(harness, tmp_path, ENGLISH_ONLY, {CY: "cy"})
    intro = await harness.say(CY, "/resume")
    assert "Only in English" in intro.text and "One question." in intro.text
    assert "Dydy'r ymgynghoriad hwn ddim ar gael yn eich iaith chi eto" in intro.text
    assert buttons(intro) == ["Dechrau nawr", "Wedyn", "Dim y tro hwn"]
    harness.standin.press(CY, intro, "Dechrau nawr")
    card = await harness.standin.wait_for_message(CY, predicate=lambda m: "1 o 1" in m.text)
    assert "Was it easy?" in card.text


async def test_menus_for_each_language_and_forged_language_presses(
    harness: BotHarness, tmp_path: Path
) -> None:
    default = {c["command"]: c["description"] for c in harness.standin.commands(PRIVATE)}
    welsh = {c["command"]: c["description"] for c in harness.standin.commands(PRIVATE, "cy")}
    assert default["language"] == "Choose the language I write to you in"
    assert welsh["language"] == "Dewis yr iaith rwy'n ysgrifennu atoch ynddi"

    open_round(harness, tmp_path, BILINGUAL, {EN: "en"})
    choice = await harness.say(EN, "/language")
    assert buttons(choice) == ["English", "Cymraeg"]
    for forged in ("l:fr", "l:fr:j:", "l:cy:x", "c:ok::fr"):
        refused = await harness.press_data(EN, choice, forged)
        assert "that button doesn't work" in refused.text
    # Pressed twice (a stale copy): the same choice again, nothing else said.
    done = await harness.press(EN, choice, "Cymraeg")
    assert "Iawn: Cymraeg" in done.text
    sent = len(harness.standin.messages(EN))
    harness.standin.press_button(EN, choice.message_id, "l:cy")
    await harness.settle()
    assert len(harness.standin.messages(EN)) == sent
    with session_scope(harness.ctx.sessions) as session:
        person = session.scalar(select(Participant).where(Participant.telegram_user_id == EN))
        assert person is not None and person.language == "cy"
        assert session.scalar(select(Invitation)) is not None

    # Someone who has not joined cannot store a language (nothing is kept before consent).
    stranger = await harness.say(4999, "/language")
    assert "You haven't joined yet" in stranger.text
    # A made-up code in the choice before the notice meets the same brake as at /start.
    refused = await harness.press_data(4999, stranger, "l:cy:j:nosuchcode")
    assert "dydw i ddim yn adnabod y ddolen wahodd" in refused.text
