"""Messages read as a person would read them: articles and plurals agree with what is filled in."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.kernel.render import Renderer

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer(TEMPLATES, zone=ZoneInfo("Europe/London"))


@pytest.mark.parametrize(
    ("count", "said"),
    [(1, "Reminding 1 person who has not finished"), (3, "Reminding 3 people who have not")],
)
def test_remind_agrees_with_how_many(renderer: Renderer, count: int, said: str) -> None:
    text = renderer.render(
        "messages/coordinator/acted.html", outcome="reminded", count=count, round_id=4
    )
    assert said in text


@pytest.mark.parametrize(
    ("segment", "said"), [("area", "has an area yet"), ("size", "has a size yet")]
)
def test_schedule_says_an_area(renderer: Renderer, segment: str, said: str) -> None:
    text = renderer.render("messages/schedule/refused.html", reason="no_segment", segment=segment)
    assert said in text


@pytest.mark.parametrize(("kind", "said"), [("audio", "an audio"), ("photo", "a photo")])
def test_not_text_says_an_audio(renderer: Renderer, kind: str, said: str) -> None:
    for expecting in ("text", "single", None):
        text = renderer.render("messages/participant/not_text.html", kind=kind, expecting=expecting)
        assert said in text


def test_all_set_does_not_promise_a_consultation_within_minutes(renderer: Renderer) -> None:
    text = renderer.render("messages/participant/profile_done.html", joining=True, profile={})
    assert "When a consultation opens for you, I'll message you here" in text
    assert "there is a consultation for you; it usually takes" not in text
