"""Branching end to end: people who answer differently are asked different questions, a
question whose condition is false is never asked (and a press on it is refused like a forged
one), and changing an earlier answer drops the answers that no longer apply and asks what now
does."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from bot.consultations.catalogue import import_consultation
from bot.consultations.sets import load_consultation
from bot.participation.cards import reminder_message
from standin.models import BotMessage
from storage.db import session_scope
from storage.models import Answer, AnswerChoice, AnswerCode, Invitation, InvitationStatus
from tests.support import factories
from tests.support.harness import BotHarness

ANNA, BEN, CARA = 3101, 3102, 3103

BRANCHING = """
id = "were-you-heard"
version = 1
title = "Were you heard?"
intro = "A short set that asks what fits your answers."
estimated_minutes = 2
audience_hint = "everyone"
closing = "We read every answer before the next partnership meeting."

[[questions]]
id = "feedback"
type = "yesno"
text = "Were you told what happened to your views?"

[[questions]]
id = "why"
type = "single"
text = "What happened instead?"
relevant = "${feedback} = 'no'"
options = [
  { id = "nobody", label = "Nobody got back" },
  { id = "lost", label = "It got lost", codes = ["ext.engagement"] },
]

[[questions]]
id = "who"
type = "text"
text = "Who should have told you?"
required = false
max_length = 20
constraint_message = "Just a name or a role, please."
relevant = "selected(${why}, 'nobody')"

[[questions]]
id = "useful"
type = "scale"
text = "How useful was what you heard?"
scale = { min = 1, max = 5, min_label = "Not at all", max_label = "Very" }
relevant = "${feedback} = 'yes'"

[[questions]]
id = "more"
type = "text"
text = "Anything else?"
required = false
"""


def setup(harness: BotHarness, path: Path) -> tuple[dict[int, int], dict[str, int]]:
    """The set imported and a round open for three people: their invitations by person, and
    the question ids by key."""
    with session_scope(harness.ctx.sessions) as session:
        consultation, _ = import_consultation(session, load_consultation(path))
        round_ = factories.open_round(session, consultation)
        invitations = {
            user: factories.invitation(session, round_, factories.participant(session, user)).id
            for user in (ANNA, BEN, CARA)
        }
        return invitations, {q.key: q.id for q in consultation.questions}


async def shown(harness: BotHarness, user: int, needle: str) -> BotMessage:
    return await harness.standin.wait_for_message(user, predicate=lambda m: needle in m.text)


async def start(harness: BotHarness, user: int) -> BotMessage:
    intro = await harness.say(user, "/resume")
    assert "up to 5 questions" in intro.text, "the count is a most: not everyone is asked all"
    harness.standin.press(user, intro, "Start now")
    card = await shown(harness, user, "1 of up to 5")
    assert "Were you told" in card.text
    return card


def stored(harness: BotHarness, invitation_id: int) -> dict[str, str]:
    """An invitation's stored answers in words, by question key."""
    with session_scope(harness.ctx.sessions) as session:
        answers = session.scalars(select(Answer).where(Answer.invitation_id == invitation_id))
        out = {}
        for a in answers:
            keys = sorted(c.option_key for c in a.choices)
            said = "skipped" if a.skipped else a.text or (f"{a.number:g}" if a.number else "")
            out[a.question.key] = ",".join(keys) or said
        return out


async def test_people_who_answer_differently_take_different_paths(
    harness: BotHarness, tmp_path: Path
) -> None:
    path = tmp_path / "were-you-heard.toml"
    path.write_text(BRANCHING)
    invitations, qid = setup(harness, path)

    # Anna was told nothing, by nobody: asked why, then who.
    card = await start(harness, ANNA)
    why = await harness.press(ANNA, card, "No")
    assert "What happened instead?" in why.text and "2 of up to 5" in why.text
    who = await harness.press(ANNA, why, "Nobody got back")
    assert "Who should have told you?" in who.text and "3 of up to 5" in who.text
    too_long = await harness.say(ANNA, "The chair of the partnership board")
    assert "Just a name or a role, please." in too_long.text, "the question's own words"
    await harness.say(ANNA, "The council")
    more = await shown(harness, ANNA, "Anything else?")
    assert "4 of 4" in more.text, "nothing after it is conditional: the count is exact"
    harness.standin.press(ANNA, more, "Skip")
    summary = await shown(harness, ANNA, "Thank you")
    closing = await harness.standin.wait_for_message(
        ANNA, after_message_id=summary.message_id, predicate=lambda m: "We read" in m.text
    )
    assert closing.text.strip() == "We read every answer before the next partnership meeting."
    assert "What happened instead?" in summary.text and "How useful" not in summary.text
    assert [b["text"] for b in summary.buttons] == [f"Change {n}" for n in (1, 2, 3, 4)]

    # Ben was told: asked how useful it was, never why or who.
    card = await start(harness, BEN)
    useful = await harness.press(BEN, card, "Yes")
    assert "How useful was what you heard?" in useful.text and "2 of 3" in useful.text
    with session_scope(harness.ctx.sessions) as session:
        ben_invitation = session.get(Invitation, invitations[BEN])
        assert ben_invitation is not None
        reminder = reminder_message(session, harness.ctx.renderer, ben_invitation, partnership="P")
        assert "answered 1 of up to 5 questions" in reminder.text
    more = await harness.press(BEN, useful, "4")
    assert "Anything else?" in more.text and "3 of 3" in more.text
    await harness.say(BEN, "Fine")
    summary = await shown(harness, BEN, "Thank you")
    assert "How useful" in summary.text and "What happened instead?" not in summary.text
    assert "Who should" not in summary.text and len(summary.buttons) == 3

    # Cara was told nothing, but it got lost: asked why, not who.
    card = await start(harness, CARA)
    why = await harness.press(CARA, card, "No")
    more = await harness.press(CARA, why, "It got lost")
    assert "Anything else?" in more.text and "3 of 3" in more.text
    harness.standin.press(CARA, more, "Skip")
    await shown(harness, CARA, "Thank you")

    assert stored(harness, invitations[ANNA]) == {
        "feedback": "no",
        "why": "nobody",
        "who": "The council",
        "more": "skipped",
    }
    assert stored(harness, invitations[BEN]) == {"feedback": "yes", "useful": "4", "more": "Fine"}
    assert stored(harness, invitations[CARA]) == {
        "feedback": "no",
        "why": "lost",
        "more": "skipped",
    }

    # Presses on a question whose condition is false for the presser: refused like forged
    # ones, twice, and nothing is stored.
    ben = invitations[BEN]
    for data in (f"a:{ben}:{qid['why']}:0", f"e:{ben}:{qid['who']}", f"s:{ben}:{qid['who']}"):
        for _ in range(2):
            reply = await harness.press_data(BEN, summary, data)
            assert "doesn't work" in reply.text, data
    assert stored(harness, ben) == {"feedback": "yes", "useful": "4", "more": "Fine"}


async def test_a_changed_answer_drops_what_no_longer_applies_and_asks_what_now_does(
    harness: BotHarness, tmp_path: Path
) -> None:
    path = tmp_path / "were-you-heard.toml"
    path.write_text(BRANCHING)
    invitations, qid = setup(harness, path)
    anna = invitations[ANNA]
    card = await start(harness, ANNA)
    why = await harness.press(ANNA, card, "No")
    await harness.press(ANNA, why, "Nobody got back")
    await harness.say(ANNA, "The council")
    harness.standin.press(ANNA, await shown(harness, ANNA, "Anything else?"), "Skip")
    summary = await shown(harness, ANNA, "Thank you")
    await shown(harness, ANNA, "We read every answer")

    # Anna was told after all: why, and who (which hangs on why), no longer apply.
    change = await harness.press(ANNA, summary, "Change 1")
    assert "Your answer now: No" in change.text
    harness.standin.press(ANNA, change, "Yes")
    removed = await shown(harness, ANNA, "no longer apply")
    assert "What happened instead?" in removed.text and "Who should have told you?" in removed.text
    useful = await shown(harness, ANNA, "How useful was what you heard?")
    assert useful.message_id > removed.message_id and useful.buttons
    with session_scope(harness.ctx.sessions) as session:
        inv = session.get(Invitation, anna)
        assert inv is not None and inv.status == InvitationStatus.COMPLETED, "still finished"
        assert inv.editing_question_id == qid["useful"]
    assert stored(harness, anna) == {"feedback": "yes", "more": "skipped"}

    # A restart loses nothing: /resume asks the question that now applies.
    await harness.restart()
    resumed = await harness.say(ANNA, "/resume")
    assert "How useful was what you heard?" in resumed.text
    harness.standin.press(ANNA, resumed, "5")
    summary = await shown(harness, ANNA, "Thank you")
    assert "How useful" in summary.text and "→ 5" in summary.text
    assert "What happened instead?" not in summary.text and len(summary.buttons) == 3
    await harness.settle()
    assert not [m for m in harness.standin.messages(ANNA) if "We read" in m.text][1:], (
        "the closing words are said once, when they finish"
    )
    assert stored(harness, anna) == {"feedback": "yes", "useful": "5", "more": "skipped"}
    with session_scope(harness.ctx.sessions) as session:
        # The dropped answers went with their choices and codes.
        nobody = select(AnswerChoice).where(AnswerChoice.option_key == "nobody")
        assert session.scalar(nobody) is None
        codes = select(func.count()).select_from(AnswerCode)
        coded = codes.where(AnswerCode.answer_id.in_(select(Answer.id)))
        assert session.scalar(codes) == session.scalar(coded), "no code of a dropped answer"
        asked = select(Answer).where(Answer.question_id.in_([qid["why"], qid["who"]]))
        assert session.scalar(asked) is None

    # A stale press on the dropped question's card: refused, nothing comes back.
    reply = await harness.press_data(ANNA, why, f"a:{anna}:{qid['why']}:0")
    assert "doesn't work" in reply.text
    # And back again: no -> why is asked anew, useful dropped.
    change = await harness.press(ANNA, summary, "Change 1")
    harness.standin.press(ANNA, change, "No")
    removed = await shown(harness, ANNA, "no longer applies")
    assert "How useful was what you heard?" in removed.text
    why = await shown(harness, ANNA, "What happened instead?")
    answered = await harness.press(ANNA, why, "It got lost")
    summary = await shown(harness, ANNA, "Thank you")
    assert "It got lost" in summary.text and "Who should" not in summary.text
    assert answered.message_id == why.message_id and "✓ It got lost" in answered.text
    assert stored(harness, anna) == {"feedback": "no", "why": "lost", "more": "skipped"}
