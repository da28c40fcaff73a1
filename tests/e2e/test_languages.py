"""Everyone takes part in their own language, end to end through the stand-in: the choice
before the privacy notice, a round answered in Welsh and in English with the answers counted
together, /language mid-round, a set without Welsh, forged language presses, and a round's
digest read by a lead in Welsh and by another in English."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.consultations.catalogue import import_consultation
from bot.consultations.sets import load_consultation
from bot.kernel.config import Settings, load_settings
from bot.participation.invites import create_invite
from storage.db import session_scope
from storage.models import (
    AnswerChoice,
    Delivery,
    DeliveryStatus,
    Invitation,
    Participant,
    Role,
    Round,
)
from tests.conftest import Database
from tests.support import factories
from tests.support.digest_fixtures import respondent
from tests.support.harness import BotHarness

CY, EN = 4001, 4002
WELSH_LEAD, ENGLISH_LEAD, COORDINATOR = 4101, 4102, 4103
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
        # A lead's digest is several messages: Telegram's pace per chat is tested elsewhere.
        sending={"per_chat_interval": 0.02},
    )


def open_round(harness: BotHarness, tmp_path: Path, text: str, people: dict[int, str]) -> int:
    """A round of the set `text`, with an invitation for each person (id: language)."""
    path = tmp_path / "set.toml"
    path.write_text(text)
    with session_scope(harness.ctx.sessions) as session:
        consultation, _ = import_consultation(session, load_consultation(path))
        round_ = factories.open_round(session, consultation)
        for user_id, language in people.items():
            profile = {"area": "north", "answers_as": "organisation"}
            person = factories.participant(session, user_id, profile=profile)
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
    # The profile questions follow in Welsh too (templates/profile.toml's translations).
    area = await harness.standin.wait_for_message(
        CY, predicate=lambda m: "Ym mha ran o'r dref ydych chi?" in m.text
    )
    assert buttons(area) == ["Gogledd", "De", "Dwyrain", "Gorllewin", "Canol y dref"]
    answered = await harness.press(CY, area, "Gogledd")
    assert "✓ Gogledd" in answered.text
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


async def answer_bilingual(
    harness: BotHarness, user_id: int, start: str, first: str, second: str, counter: str
) -> None:
    """`user_id` answers the bilingual set through the chat, pressing the buttons in their
    language (`counter`: the first card's "1 of 2")."""
    intro = await harness.say(user_id, "/resume")
    harness.standin.press(user_id, intro, start)
    card = await harness.standin.wait_for_message(user_id, predicate=lambda m: counter in m.text)
    card = await harness.press(user_id, card, first)
    harness.standin.press(user_id, card, second)
    await harness.standin.wait_for_message(
        user_id, predicate=lambda m: "Diolch!" in m.text or "Thank you!" in m.text
    )


async def test_a_lead_reads_the_round_digest_in_welsh(harness: BotHarness, tmp_path: Path) -> None:
    round_id = open_round(harness, tmp_path, BILINGUAL, {CY: "cy", EN: "en"})
    await answer_bilingual(harness, CY, "Dechrau nawr", "Yr wythnos hon", "Ie", "1 o 2")
    await answer_bilingual(harness, EN, "Start now", "This month", "Yes", "1 of 2")
    with session_scope(harness.ctx.sessions) as session:
        round_ = session.get(Round, round_id)
        assert round_ is not None
        # Eight more answered on paper or before: five and five in each language with the two
        # above, so k = 5 lets the breakdown by language show; "this month" (two) is merged.
        for i, language in enumerate(["cy"] * 4 + ["en"] * 4):
            first = "month" if i == 0 else "week"
            respondent(
                session,
                round_,
                4200 + i,
                {"when": first, "easy": "yes"},
                profile={"area": "north"},
                language=language,
            )
        for user_id, language in ((WELSH_LEAD, "cy"), (ENGLISH_LEAD, "en")):
            lead = factories.participant(
                session,
                user_id,
                role=Role.LEAD,
                language=language,
                profile={"area": "north", "answers_as": "organisation"},
            )
            factories.invitation(session, round_, lead)  # leads invited, not answering
        factories.participant(session, COORDINATOR, role=Role.COORDINATOR)
    for chat in (WELSH_LEAD, ENGLISH_LEAD, COORDINATOR):
        harness.standin.register_chat(chat)

    ask = await harness.say(COORDINATOR, f"/close {round_id}")
    await harness.press(COORDINATOR, ask, "Yes, close it now")
    await until_sent(harness)

    welsh = "\n".join(m.text for m in harness.standin.messages(WELSH_LEAD) if m.kind == "text")
    english = "\n".join(m.text for m in harness.standin.messages(ENGLISH_LEAD) if m.kind == "text")
    # Headings, the scope with the set's own Welsh title, and the figures, in Welsh...
    assert "Riverside Partnership: beth glywson ni" in welsh
    assert f"Rownd {round_id}: Cael help" in welsh
    assert "Ffigurau allweddol" in welsh and "Pwy glywson ni ganddyn nhw" in welsh
    assert "Atebodd 10 o'r 12 o bobl a wahoddwyd (83%); 10 wedi gorffen." in welsh
    # ...segments by the profile's Welsh labels and by language (names as their speakers say them)
    assert "Ardal: Gogledd 10 o 12 (83%)" in welsh
    assert "Yn ateb fel: Sefydliad 10 o 12 (83%)" in welsh
    assert "Iaith: Cymraeg 5 o 6 (83%); English 5 o 6 (83%)" in welsh
    # ...the set's questions and options as the Welsh speaker was asked them, and a privacy note.
    assert "Pryd wnaethoch chi ofyn am help ddiwethaf?" in welsh
    assert "Arall (wedi'u cyfuno) 10. 10 o'r 10 a gafodd y cwestiwn" in welsh
    assert "Oedd hi'n hawdd?\nIe 10 (100%)" in welsh
    assert (
        "Preifatrwydd: Dydy cwestiynau a atebwyd gan lai na 5 o bobl ddim yn cael eu dangos"
        in welsh
    )
    assert "Key figures" not in welsh and "Privacy" not in welsh

    # The English lead's copy: the same figures, in English.
    assert f"Round {round_id}: Getting help" in english
    assert "Key figures" in english and "Who we heard from" in english
    assert "10 of 12 people invited answered (83%); 10 finished." in english
    assert "Area: North 10 of 12 (83%)" in english
    assert "Answering as: An organisation 10 of 12 (83%)" in english
    assert "Language: Cymraeg 5 of 6 (83%); English 5 of 6 (83%)" in english
    assert "When did you last ask for help?" in english
    assert "Other (merged) 10. 10 of the 10 asked" in english
    assert "Privacy: Questions answered by fewer than 5 people are not shown" in english
    assert "Ffigurau" not in english

    # The chart's caption and the printable file follow each reader too.
    (welsh_chart,) = [m for m in harness.standin.messages(WELSH_LEAD) if m.kind == "photo"]
    (english_chart,) = [m for m in harness.standin.messages(ENGLISH_LEAD) if m.kind == "photo"]
    assert "Pwy glywson ni ganddyn nhw: cyfradd ymateb fesul grŵp" in welsh_chart.text
    assert "Dim ond ffigurau gan 5 neu fwy o bobl sy'n cael eu dangos." in welsh_chart.text
    assert "Who we heard from: response rate by segment" in english_chart.text
    assert welsh_chart.file and english_chart.file
    assert welsh_chart.file.content != english_chart.file.content, "the chart's words differ"
    (welsh_file,) = [m for m in harness.standin.messages(WELSH_LEAD) if m.kind == "document"]
    (english_file,) = [m for m in harness.standin.messages(ENGLISH_LEAD) if m.kind == "document"]
    assert "Y crynodeb llawn, gyda siartiau" in welsh_file.text
    assert welsh_file.file and english_file.file
    page = welsh_file.file.content.decode("utf-8")
    assert '<html lang="cy">' in page and "<h2>Ffigurau allweddol</h2>" in page
    assert "<strong>10 o 12</strong>o bobl a wahoddwyd wedi ateb" in page
    assert "<td>Gogledd</td>" in page and "<th>Iaith</th>" in page
    english_page = english_file.file.content.decode("utf-8")
    assert '<html lang="en">' in english_page and "<h2>Key figures</h2>" in english_page
    assert "<strong>10 of 12</strong>people invited answered" in english_page

    # Asked for later with /digest, it comes in the asker's language as well.
    again = await harness.say(WELSH_LEAD, f"/digest {round_id}")
    assert "Riverside Partnership: beth glywson ni" in again.text
    assert "Ffigurau allweddol" in again.text


async def until_sent(harness: BotHarness, timeout: float = 20.0) -> None:
    """Until every digest delivery queued at close has been sent."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        with session_scope(harness.ctx.sessions) as session:
            rows = session.scalars(select(Delivery).where(Delivery.kind == "digest")).all()
            if rows and all(r.status == DeliveryStatus.SENT for r in rows):
                return
        assert asyncio.get_running_loop().time() < deadline, "digest not sent in time"
        await asyncio.sleep(0.05)
