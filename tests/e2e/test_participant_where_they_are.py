"""Bringing a person to where they are (issue 13): a summary too long for one message, a
press redelivered or repeated after a crash, and a round that opened while they were away."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from bot.consultations.catalogue import import_consultation
from bot.consultations.sets import load_consultation
from storage.db import session_scope
from storage.models import Answer, Invitation, InvitationStatus
from tests.support import factories
from tests.support.harness import BotHarness

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
