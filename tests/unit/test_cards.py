"""What a participant is shown, rendered from plain data: the summary always fits one Telegram
message (issue 13 #8), whatever a valid consultation set and its answers hold."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.kernel.render import TELEGRAM_LIMIT, Renderer, shown_length
from bot.participation.cards import render
from bot.participation.decide import Decision, Summary
from bot.participation.state import AnswerData, InvitationData, QuestionData
from storage.models import InvitationStatus

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES, zone=ZoneInfo("Europe/London"))


def question(n: int, type_: str, text: str) -> QuestionData:
    options = [{"id": f"o{i}", "label": f"{i} " + "&" * 38} for i in range(8)]
    return QuestionData(n, f"q{n}", type_, text, None, True, options, None, 2000, {})


def summary(renderer: Renderer, questions: list[QuestionData], answers: dict[int, AnswerData]):  # type: ignore[no-untyped-def]
    invitation = InvitationData(
        id=1,
        status=InvitationStatus.COMPLETED,
        editing_question_id=None,
        prompt_message_id=None,
        round_open=True,
        closes_at=datetime(2026, 3, 9, 17, 0, tzinfo=UTC),
        title="T" * 80,
        consultation_id=1,
        questions=tuple(questions),
        answers=answers,
    )
    [message] = render(Decision(messages=[Summary(invitation)]), renderer, lambda _: None).messages  # type: ignore[arg-type, return-value]
    return message


def test_the_longest_valid_summary_fits_with_every_change_button(renderer: Renderer) -> None:
    # 12 questions of 300 characters (the most a set may have), escaped characters throughout:
    # text answers of 2000, and multi answers ticking all 8 options of 40 characters.
    questions = [
        question(n, "text" if n % 2 else "multi", f"{n} " + "<&> " * 74) for n in range(1, 13)
    ]
    answers = {
        q.id: AnswerData(q.id, text=f"{q.id} " + "é&<" * 666)
        if q.type == "text"
        else AnswerData(q.id, keys=frozenset(o["id"] for o in q.options))
        for q in questions
    }
    message = summary(renderer, questions, answers)
    assert TELEGRAM_LIMIT - 300 < shown_length(message.text) <= TELEGRAM_LIMIT
    assert [b.text for row in message.buttons for b in row] == [f"Change {n}" for n in range(1, 13)]
    assert message.text.count("…") == 12  # every answer cut alike, none left out


def test_a_summary_that_fits_is_shown_whole(renderer: Renderer) -> None:
    questions = [question(n, "text", f"Question {n}?") for n in range(1, 7)]
    answers = {q.id: AnswerData(q.id, text="x" * 500) for q in questions}
    message = summary(renderer, questions, answers)
    assert "…" not in message.text and message.text.count("x" * 500) == 6
