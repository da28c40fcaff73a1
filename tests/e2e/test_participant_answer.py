"""Answering a round end to end: every question type, skipping, changing after finishing,
resuming after a restart, two rounds one at a time, and the bad inputs around it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.coding.stored import NO_CODE
from bot.consultations.catalogue import import_consultation
from bot.consultations.sets import load_consultation
from storage.db import session_scope
from storage.models import (
    Answer,
    AnswerCode,
    Invitation,
    InvitationStatus,
    Participant,
    ParticipantStatus,
    ProcessedUpdate,
    RoundStatus,
)
from tests.support import factories
from tests.support.harness import BotHarness

ME = 3001

ALL_TYPES = """
id = "all-types"
version = 1
title = "Everything at once"
intro = "A test set with every question type."
estimated_minutes = 2
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
id = "barriers"
type = "multi"
text = "What gets in the way?"
options = [
  { id = "funding", label = "Funding", codes = ["ext.funding"] },
  { id = "forms", label = "Forms", codes = ["ext.red_tape"] },
  { id = "none", label = "None of these", exclusive = true },
]

[[questions]]
id = "equal"
type = "scale"
text = "How equal do you feel?"
scale = { min = 1, max = 5, min_label = "Not at all", max_label = "Fully" }
codes = ["ext.engagement"]
codes_at_most = 2

[[questions]]
id = "heard"
type = "yesno"
text = "Did you hear back?"
codes = ["ext.engagement"]
codes_when = "no"

[[questions]]
id = "more"
type = "text"
text = "Anything else?"
required = false
max_length = 300
"""


@pytest.fixture
def consultation_file(tmp_path: Path) -> Path:
    path = tmp_path / "all-types.toml"
    path.write_text(ALL_TYPES)
    return path


def setup_round(harness: BotHarness, path: Path, *, rounds: int = 1) -> list[int]:
    with session_scope(harness.ctx.sessions) as session:
        consultation, _ = import_consultation(session, load_consultation(path))
        person = factories.participant(session, ME, profile={"area": "north"})
        ids = []
        for _ in range(rounds):
            round_ = factories.open_round(session, consultation)
            ids.append(factories.invitation(session, round_, person).id)
        return ids


async def toast_for(harness: BotHarness, pressed: dict[str, Any]) -> str | None:
    """What the bot answered to this press (`pressed`: what press_button returned), found by
    its query id: the press before it may be answered later than its next message came,
    since the next message goes before the press is answered."""
    query = pressed["callback_query"]["id"]
    answers = harness.standin.callback_answers

    def found() -> list[str | None]:
        return [a.text for a in answers if a.callback_query_id == query]

    await harness.eventually(found)
    [text] = found()
    return text


async def next_prompt(harness: BotHarness, needle: str):  # type: ignore[no-untyped-def]
    return await harness.standin.wait_for_message(ME, predicate=lambda m: needle in m.text)


async def first_card(harness: BotHarness, path: Path):  # type: ignore[no-untyped-def]
    """One round open for ME, its intro asked for and Start now pressed: the question card."""
    setup_round(harness, path)
    intro = await harness.say(ME, "/resume")
    harness.standin.press(ME, intro, "Start now")
    return await next_prompt(harness, "1 of 5")


async def test_every_question_type_then_change_an_answer(
    harness: BotHarness, consultation_file: Path
) -> None:
    [inv_id] = setup_round(harness, consultation_file)
    intro = await harness.say(ME, "/resume")
    assert "Everything at once" in intro.text
    harness.standin.press(ME, intro, "Start now")
    q1 = await next_prompt(harness, "1 of 5")
    q2 = await harness.press(ME, q1, "Late")
    # One card per round: it shows the answer just given and moves on to the next question.
    assert q2.message_id == q1.message_id and q2.edited
    assert "✓ Late" in q2.text and "2 of 5" in q2.text and q2.buttons
    with session_scope(harness.ctx.sessions) as session:
        # Stored the moment it was given: a half-finished consultation counts.
        inv = session.get(Invitation, inv_id)
        assert inv is not None and inv.status == InvitationStatus.STARTED and len(inv.answers) == 1
    toggled = await harness.press(ME, q2, "Funding")
    assert toggled.message_id == q2.message_id and "✓ Funding" in [
        b["text"] for b in toggled.buttons
    ]
    toggled = await harness.press(ME, toggled, "Forms")
    toggled = await harness.press(ME, toggled, "None of these")  # exclusive: clears the others
    assert [b["text"] for b in toggled.buttons if b["text"].startswith("✓")] == ["✓ None of these"]
    toggled = await harness.press(ME, toggled, "Funding")  # and a real one clears "none"
    toggled = await harness.press(ME, toggled, "Forms")
    harness.standin.press(ME, toggled, "Done")
    q3 = await next_prompt(harness, "3 of 5")
    assert "Not at all" in q3.text and [b["text"] for b in q3.buttons] == ["1", "2", "3", "4", "5"]
    harness.standin.press(ME, q3, "2")
    q4 = await next_prompt(harness, "4 of 5")
    harness.standin.press(ME, q4, "No")
    q5 = await next_prompt(harness, "5 of 5")
    assert "Skip" in [b["text"] for b in q5.buttons]
    assert q5.message_id == q1.message_id, "Start now sent one card; every answer edited it"
    await harness.say(ME, "<b>x</b> & y")
    summary = await next_prompt(harness, "Thank you")
    card = next(m for m in harness.standin.messages(ME) if m.message_id == q1.message_id)
    assert not card.buttons, "a typed answer takes the Skip button off the card"
    assert "✓ <b>x</b> & y" in card.text
    assert "<b>x</b> & y" in summary.text, "typed text comes back exactly as typed"
    assert "&lt;b&gt;" in summary.html
    assert "Funding, Forms" in summary.text
    with session_scope(harness.ctx.sessions) as session:
        inv = session.get(Invitation, inv_id)
        assert inv is not None and inv.status == InvitationStatus.COMPLETED
        assert inv.completed_at is not None and inv.started_at is not None
        by_key = {a.question.key: a for a in inv.answers}
        assert [c.option_key for c in by_key["when"].choices] == ["late"]
        assert sorted(c.option_key for c in by_key["barriers"].choices) == ["forms", "funding"]
        assert by_key["equal"].number == 2
        assert [c.option_key for c in by_key["heard"].choices] == ["no"]
        assert by_key["more"].text == "<b>x</b> & y"
        codes = {k: sorted(c.code for c in a.codes) for k, a in by_key.items()}
        assert codes == {
            "when": ["ext.engagement"],
            "barriers": ["ext.funding", "ext.red_tape"],
            "equal": ["ext.engagement"],
            "heard": ["ext.engagement"],
            "more": [NO_CODE],  # coded when stored: the coder found nothing
        }

    # Change answer 3 after finishing: the scale goes up and its code goes away.
    change = await harness.press(ME, summary, "Change 3")
    assert "Your answer now: 2" in change.text
    harness.standin.press(ME, change, "4")
    again = await next_prompt(harness, "Thank you")
    assert "→ 4" in again.text
    with session_scope(harness.ctx.sessions) as session:
        answer = session.scalar(select(Answer).where(Answer.number.is_not(None)))
        assert answer is not None and answer.number == 4 and answer.changed_at is not None
        assert not answer.codes
        inv = session.get(Invitation, inv_id)
        assert inv is not None and inv.editing_question_id is None

    # A double tap on an old prompt changes nothing.
    with session_scope(harness.ctx.sessions) as session:
        inv = session.get(Invitation, inv_id)
        assert inv is not None
        first_question = inv.round.consultation.questions[0].id
    pressed = harness.standin.press_button(ME, q1.message_id, f"a:{inv_id}:{first_question}:0")
    assert await toast_for(harness, pressed) == "Already saved ✓"
    with session_scope(harness.ctx.sessions) as session:
        ans = session.scalar(select(Answer).where(Answer.question.has(key="when")))
        assert ans is not None and [c.option_key for c in ans.choices] == ["late"]


async def test_skip_resume_after_restart_and_bad_input(
    harness: BotHarness, consultation_file: Path
) -> None:
    [inv_id] = setup_round(harness, consultation_file)
    intro = await harness.say(ME, "/resume")
    harness.standin.press(ME, intro, "Start now")
    q1 = await next_prompt(harness, "1 of 5")
    # Free text where a button is expected: asked to use the buttons, prompt repeated.
    nudge = await harness.say(ME, "early I guess")
    assert "buttons" in nudge.text
    await next_prompt(harness, "1 of 5")  # the prompt again, after the nudge
    harness.standin.send_sticker(ME)
    sticker = await next_prompt(harness, "sticker")
    assert "buttons" in sticker.text
    harness.standin.press(ME, q1, "Early")
    await next_prompt(harness, "2 of 5")

    await harness.restart()
    resumed = await harness.say(ME, "/resume")
    assert "2 of 5" in resumed.text, "where someone is comes from the database"
    toggled = await harness.press(ME, resumed, "Forms")
    nothing = await harness.press(ME, toggled, "✓ Forms")  # untick
    harness.standin.press(ME, nothing, "Done")
    await harness.settle(0.3)
    assert harness.standin.callback_answers[-1].text.startswith("Please tick")
    await harness.press(ME, nothing, "Forms")
    harness.standin.press(ME, nothing, "Done")
    q3 = await next_prompt(harness, "3 of 5")
    harness.standin.press(ME, q3, "5")
    q4 = await next_prompt(harness, "4 of 5")
    harness.standin.press(ME, q4, "Yes")
    q5 = await next_prompt(harness, "5 of 5")

    standin = harness.standin
    for send in (
        lambda: standin.send_photo(ME),
        lambda: standin.send_voice(ME),
        lambda: standin.send_location(ME, 51.5, -0.1),
    ):
        send()
        reply = await next_prompt(harness, "only save typed words")
        await harness.standin.wait_for_message(ME, after_message_id=reply.message_id)
    too_long = await harness.say(ME, "x" * 301)
    assert "300" in too_long.text and "shorten" in too_long.text
    with session_scope(harness.ctx.sessions) as session:
        assert session.scalar(select(Answer).where(Answer.text.is_not(None))) is None

    harness.standin.press(ME, q5, "Skip")
    summary = await next_prompt(harness, "Thank you")
    assert "(skipped)" in summary.text
    with session_scope(harness.ctx.sessions) as session:
        inv = session.get(Invitation, inv_id)
        assert inv is not None and inv.status == InvitationStatus.COMPLETED
        assert len(inv.answers) == 5 and sum(a.skipped for a in inv.answers) == 1


async def test_closed_forged_and_foreign_presses_change_nothing(
    harness: BotHarness, consultation_file: Path
) -> None:
    [inv_id] = setup_round(harness, consultation_file)
    with session_scope(harness.ctx.sessions) as session:
        stranger = factories.participant(session, ME + 1)
        consultation = session.get(Invitation, inv_id).round.consultation  # type: ignore[union-attr]
        # Their round is for service users: ME, answering for an organisation, is not asked.
        theirs_round = factories.open_round(
            session, consultation, audience={"who": "service_users"}
        )
        theirs = factories.invitation(session, theirs_round, stranger)
        their_id, qid = theirs.id, consultation.questions[0].id
    intro = await harness.say(ME, "/resume")
    harness.standin.press(ME, intro, "Start now")
    q1 = await next_prompt(harness, "1 of 5")
    for data in (
        f"a:{their_id}:{qid}:0",  # someone else's invitation
        f"a:{inv_id}:{qid}:9",  # no such option
        f"a:{inv_id}:999999:0",  # question from another consultation
        "a:not:a:number",
        "garbage",
        "p:go:" + "9" * 30,
    ):
        reply = await harness.press_data(ME, q1, data)
        assert "doesn't work" in reply.text, data
    with session_scope(harness.ctx.sessions) as session:
        assert session.scalar(select(Answer)) is None

    with session_scope(harness.ctx.sessions) as session:
        session.get(Invitation, inv_id).round.status = RoundStatus.CLOSED  # type: ignore[union-attr]
    for _ in range(2):
        closed = await harness.press(ME, q1, "Early")
        assert "closed" in closed.text
    with session_scope(harness.ctx.sessions) as session:
        assert session.scalar(select(Answer)) is None
        assert session.scalar(select(AnswerCode)) is None


async def test_two_rounds_run_one_at_a_time(harness: BotHarness, tmp_path: Path) -> None:
    path = tmp_path / "pulse.toml"
    path.write_text((factories.SETS / "pulse.toml").read_text())
    first, second = setup_round(harness, path, rounds=2)
    with session_scope(harness.ctx.sessions) as session:
        session.get(Invitation, second).status = InvitationStatus.QUEUED  # type: ignore[union-attr]
    intro = await harness.say(ME, "/resume")
    harness.standin.press(ME, intro, "Start now")
    q1 = await next_prompt(harness, "1 of 2")
    harness.standin.press(ME, q1, "4")
    q2 = await next_prompt(harness, "2 of 2")
    harness.standin.press(ME, q2, "Skip")
    offered = await next_prompt(harness, "Open until")
    with session_scope(harness.ctx.sessions) as session:
        assert session.get(Invitation, first).status == InvitationStatus.COMPLETED  # type: ignore[union-attr]
        assert session.get(Invitation, second).status == InvitationStatus.DELIVERED  # type: ignore[union-attr]
    # The offered button belongs to the second invitation.
    assert offered.buttons[0]["callback_data"] == f"p:go:{second}"
    harness.standin.press(ME, offered, "Start now")
    await next_prompt(harness, "1 of 2")
    with session_scope(harness.ctx.sessions) as session:
        person = session.scalar(select(Participant))
        assert person is not None
        assert session.get(Invitation, second).segment == {"area": "north"}  # type: ignore[union-attr]


TEXT_FIRST = """
id = "text-first"
version = 1
title = "Words first"
intro = "A typed answer, then a button."
estimated_minutes = 1
audience_hint = "everyone"

[[questions]]
id = "story"
type = "text"
text = "What happened?"
required = false

[[questions]]
id = "heard"
type = "yesno"
text = "Did you hear back?"
"""


async def test_a_typed_answer_retires_the_card_and_asks_on_a_new_one(
    harness: BotHarness, tmp_path: Path
) -> None:
    path = tmp_path / "text-first.toml"
    path.write_text(TEXT_FIRST)
    [inv_id] = setup_round(harness, path)
    intro = await harness.say(ME, "/resume")
    harness.standin.press(ME, intro, "Start now")
    card = await next_prompt(harness, "1 of 2")
    assert [b["text"] for b in card.buttons] == ["Skip"]
    await harness.say(ME, "The form came back twice")
    second = await next_prompt(harness, "2 of 2")
    assert second.message_id > card.message_id and not second.edited, "asked below the text"
    old = next(m for m in harness.standin.messages(ME) if m.message_id == card.message_id)
    assert not old.buttons and "✓ The form came back twice" in old.text

    # The new card's id is stored once Telegram has answered the send, in a transaction of its
    # own that may commit just after the message shows: wait for it rather than race it.
    def remembered() -> bool:
        with session_scope(harness.ctx.sessions) as session:
            return session.get(Invitation, inv_id).prompt_message_id == second.message_id  # type: ignore[union-attr]

    await harness.eventually(remembered)
    # A Skip press from the old card (a slow phone, a forged update) keeps the typed answer.
    with session_scope(harness.ctx.sessions) as session:
        question = session.get(Invitation, inv_id).round.consultation.questions[0]  # type: ignore[union-attr]
    pressed = harness.standin.press_button(ME, card.message_id, f"s:{inv_id}:{question.id}")
    assert await toast_for(harness, pressed) == "Already saved ✓"
    done = await harness.press(ME, second, "Yes")
    assert done.message_id == second.message_id and "✓ Yes" in done.text
    summary = await next_prompt(harness, "Thank you")
    assert "The form came back twice" in summary.text
    with session_scope(harness.ctx.sessions) as session:
        answers = session.scalars(select(Answer).order_by(Answer.id)).all()
        assert [(a.text, a.skipped) for a in answers] == [
            ("The form came back twice", False),
            (None, False),
        ]


async def test_a_reply_that_fails_in_transit_is_tried_again(
    harness: BotHarness, consultation_file: Path
) -> None:
    [inv_id] = setup_round(harness, consultation_file)
    intro = await harness.say(ME, "/resume")
    harness.standin.fail_next(2, status=502, method="sendMessage")
    harness.standin.press(ME, intro, "Start now")
    q1 = await harness.standin.wait_for_message(
        ME, predicate=lambda m: "1 of 5" in m.text, timeout=10
    )
    harness.standin.fail_next(1, status=500, method="editMessageText")
    harness.standin.press(ME, q1, "Late")
    q2 = await harness.standin.wait_for_message(
        ME, predicate=lambda m: "2 of 5" in m.text, timeout=10
    )
    assert q2.message_id == q1.message_id
    cards = [m for m in harness.standin.messages(ME) if "of 5" in m.text]
    assert len(cards) == 1, "each failed try was retried once, not duplicated"
    with session_scope(harness.ctx.sessions) as session:
        answers = session.scalars(select(Answer).where(Answer.invitation_id == inv_id)).all()
        assert [a.question.key for a in answers] == ["when"]


async def test_a_press_delivered_twice_is_answered_and_stored_once(
    harness: BotHarness, consultation_file: Path
) -> None:
    # Button presses check for duplicates inside their own transaction (not the guard's).
    setup_round(harness, consultation_file)
    intro = await harness.say(ME, "/resume")
    harness.standin.duplicate_updates = True
    harness.standin.press(ME, intro, "Start now")
    q1 = await next_prompt(harness, "1 of 5")
    harness.standin.press(ME, q1, "Late")
    await next_prompt(harness, "2 of 5")
    await harness.settle()
    assert len(harness.standin.messages(ME)) == 2, "the intro and one card, nothing more"
    assert len(harness.standin.callback_answers) == 2, "each press answered once"
    with session_scope(harness.ctx.sessions) as session:
        assert len(session.scalars(select(Answer)).all()) == 1
        # Both copies of both presses were seen; each press is recorded once.
        assert session.query(ProcessedUpdate).count() == 3  # /resume and the two presses


async def test_a_press_after_stop_gets_the_hint_and_changes_nothing(
    harness: BotHarness, consultation_file: Path
) -> None:
    q1 = await first_card(harness, consultation_file)
    assert "Stopped" in (await harness.say(ME, "/stop")).text
    for _ in range(2):
        hint = await harness.press(ME, q1, "Late")
        assert "/start" in hint.text
    with session_scope(harness.ctx.sessions) as session:
        assert session.scalar(select(Answer)) is None
        assert session.scalar(select(Participant)).status == ParticipantStatus.STOPPED  # type: ignore[union-attr]


async def test_two_quick_taps_on_one_card_store_one_answer(
    harness: BotHarness, consultation_file: Path
) -> None:
    # Both presses are in flight at once; on PostgreSQL they are decided in worker threads,
    # one person at a time, so the second sees the first's answer instead of racing it.
    q1 = await first_card(harness, consultation_file)
    harness.standin.press(ME, q1, "Early")
    harness.standin.press(ME, q1, "Late")
    await next_prompt(harness, "2 of 5")
    await harness.settle()
    with session_scope(harness.ctx.sessions) as session:
        [answer] = session.scalars(select(Answer)).all()
        assert [c.option_key for c in answer.choices] == ["early"]
    assert len(harness.standin.callback_answers) == 3, "every press answered, none failed"
    texts = [m.text for m in harness.standin.messages(ME)]
    assert not any("went wrong" in t.lower() for t in texts), texts


async def test_the_next_question_comes_before_the_press_is_answered(
    harness: BotHarness, consultation_file: Path
) -> None:
    # What the person waits for goes first; the button's spinner is stopped after it.
    def replies(since: int) -> list[str]:
        return [m for m in list(harness.standin.served)[since:] if m != "getUpdates"]

    calls = harness.standin.served
    setup_round(harness, consultation_file)
    intro = await harness.say(ME, "/resume")
    since = len(calls)
    harness.standin.press(ME, intro, "Start now")
    card = await next_prompt(harness, "1 of 5")
    await harness.eventually(lambda: "answerCallbackQuery" in replies(since))
    # The intro loses its buttons (its text is left as it is), the first card comes, then the
    # spinner stops.
    assert replies(since) == ["editMessageReplyMarkup", "sendMessage", "answerCallbackQuery"]
    since = len(calls)
    await harness.press(ME, card, "Late")
    await harness.eventually(lambda: "answerCallbackQuery" in replies(since))
    assert replies(since) == ["editMessageText", "answerCallbackQuery"]
    assert [a.text for a in harness.standin.callback_answers] == [None, None]


async def test_people_answering_alike_get_the_same_cards_with_their_own_buttons(
    harness: BotHarness, consultation_file: Path
) -> None:
    # The fast path renders a card's text once per process; the buttons are each person's.
    with session_scope(harness.ctx.sessions) as session:
        consultation, _ = import_consultation(session, load_consultation(consultation_file))
        round_ = factories.open_round(session, consultation)
        people = [ME, ME + 1]
        invitations = [
            factories.invitation(session, round_, factories.participant(session, user_id)).id
            for user_id in people
        ]

    def seen(message: object) -> tuple[str, list[str]]:
        # A snapshot: the card is one message, edited as people answer.
        return message.text, [b["callback_data"] for b in message.buttons]  # type: ignore[attr-defined]

    shown = []
    for user_id in people:
        intro = await harness.say(user_id, "/resume")
        harness.standin.press(user_id, intro, "Start now")
        card = await harness.standin.wait_for_message(
            user_id, predicate=lambda m: "1 of 5" in m.text
        )
        first = seen(card)
        shown.append((first, seen(await harness.press(user_id, card, "Late"))))
    [(card_a, next_a), (card_b, next_b)] = shown
    assert card_a[0] == card_b[0] and next_a[0] == next_b[0]
    assert "✓ Late" in next_b[0] and "2 of 5" in next_b[0] and "1 of 5" in card_b[0]
    for pair, invitation_id in zip(shown, invitations, strict=True):
        for _, data in pair:
            assert data and all(f":{invitation_id}:" in d for d in data), data


async def answer_all(harness: BotHarness, q1):  # type: ignore[no-untyped-def]
    """Answer every question of ALL_TYPES from its first card; returns the summary."""
    q2 = await harness.press(ME, q1, "Late")
    harness.standin.press(ME, await harness.press(ME, q2, "Forms"), "Done")
    harness.standin.press(ME, await next_prompt(harness, "3 of 5"), "2")
    harness.standin.press(ME, await next_prompt(harness, "4 of 5"), "No")
    harness.standin.press(ME, await next_prompt(harness, "5 of 5"), "Skip")
    return await next_prompt(harness, "Thank you")


async def test_start_now_retires_the_intro_and_not_this_time_after_finishing_says_so(
    harness: BotHarness, consultation_file: Path
) -> None:
    [inv_id] = setup_round(harness, consultation_file)
    intro = await harness.say(ME, "/resume")
    assert intro.buttons
    harness.standin.press(ME, intro, "Start now")
    q1 = await next_prompt(harness, "1 of 5")
    shown = next(m for m in harness.standin.messages(ME) if m.message_id == intro.message_id)
    assert not shown.buttons, "Start now takes Start now / Later / Not this time off the intro"
    assert shown.text == intro.text, "and keeps its words"
    await answer_all(harness, q1)

    # An old reminder's "Not this time", pressed after finishing.
    reply = await harness.press_data(ME, intro, f"p:no:{inv_id}")
    assert "already finished" in reply.text and "No problem" not in reply.text
    with session_scope(harness.ctx.sessions) as session:
        inv = session.get(Invitation, inv_id)
        assert inv is not None and inv.status == InvitationStatus.COMPLETED
        assert len(inv.answers) == 5


async def test_a_refusal_is_said_once_and_resume_only_offered_when_something_waits(
    harness: BotHarness, consultation_file: Path
) -> None:
    [inv_id] = setup_round(harness, consultation_file)
    harness.standin.press(ME, await harness.say(ME, "/resume"), "Start now")
    q1 = await next_prompt(harness, "1 of 5")
    with session_scope(harness.ctx.sessions) as session:
        first_question = session.get(Invitation, inv_id).round.consultation.questions[0].id  # type: ignore[union-attr]
    forged = f"a:{inv_id}:{first_question}:9"

    # Part-way: a forged option is refused in one message that offers /resume, no toast.
    since = len(harness.standin.callback_answers)
    reply = await harness.press_data(ME, q1, forged)
    assert "doesn't work" in reply.text and "/resume" in reply.text
    await harness.eventually(lambda: len(harness.standin.callback_answers) > since)
    assert not harness.standin.callback_answers[-1].text, "the refusal is not toasted as well"

    # Finished: the same forged option on the answered question is no "Already saved", and
    # with nothing waiting there is no /resume to send.
    await answer_all(harness, q1)
    since = len(harness.standin.callback_answers)
    reply = await harness.press_data(ME, q1, forged)
    assert "doesn't work" in reply.text and "/resume" not in reply.text
    await harness.eventually(lambda: len(harness.standin.callback_answers) > since)
    assert harness.standin.callback_answers[-1].text != "Already saved ✓"
    assert not harness.standin.callback_answers[-1].text


async def changed_in_mydata(harness: BotHarness) -> dict[str, bool]:
    """/mydata's export: which answers it shows as changed, by question key."""
    before = len(harness.standin.documents(ME))
    await harness.say(ME, "/mydata")
    await harness.eventually(lambda: len(harness.standin.documents(ME)) > before)
    [consultation] = json.loads(harness.standin.documents(ME)[-1].content)["consultations"]
    return {a["question_key"]: a["changed_at"] is not None for a in consultation["answers"]}


async def test_mydata_shows_as_changed_only_answers_that_were(
    harness: BotHarness, consultation_file: Path
) -> None:
    q1 = await first_card(harness, consultation_file)
    q2 = await harness.press(ME, q1, "Early")
    # Ticks before Done are stored as given, but they are not changes of an answer.
    ticked = await harness.press(ME, q2, "Funding")
    ticked = await harness.press(ME, ticked, "Forms")
    ticked = await harness.press(ME, ticked, "✓ Funding")
    harness.standin.press(ME, ticked, "Done")
    q3 = await next_prompt(harness, "3 of 5")
    harness.standin.press(ME, q3, "4")
    q4 = await next_prompt(harness, "4 of 5")
    harness.standin.press(ME, q4, "Yes")
    q5 = await next_prompt(harness, "5 of 5")
    harness.standin.press(ME, q5, "Skip")
    summary = await next_prompt(harness, "Thank you")
    unchanged = {"when": False, "barriers": False, "equal": False, "heard": False, "more": False}
    assert await changed_in_mydata(harness) == unchanged

    # Given again as it was: still not changed.
    change = await harness.press(ME, summary, "Change 3")
    harness.standin.press(ME, change, "4")
    summary = await next_prompt(harness, "Thank you")
    assert await changed_in_mydata(harness) == unchanged
    # Really changed: that one, and only that one.
    change = await harness.press(ME, summary, "Change 2")
    ticked = await harness.press(ME, change, "Funding")
    harness.standin.press(ME, ticked, "Done")
    await next_prompt(harness, "Thank you")
    assert await changed_in_mydata(harness) == {**unchanged, "barriers": True}
