"""The coordinator's one-line feedback commands (/action N code | ..., /action done|drop|open ID,
/actions N, /feedback N) as services over a session that return the Reply to send. A
FeedbackError becomes a DialogError with its message, so the transaction rolls back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot.coding.coder import Codebook
from bot.digests.compile import list_actions
from bot.feedback.actions import (
    FeedbackError,
    add_action,
    closed_round,
    parse_action,
    publish_feedback,
    set_action_status,
)
from bot.kernel.dialogs import DialogError, number
from bot.kernel.render import Renderer
from bot.kernel.reply import Reply
from storage.models import ActionStatus

STATUS_WORDS = {"done": ActionStatus.DONE, "drop": ActionStatus.DROPPED, "open": ActionStatus.OPEN}


def _say(renderer: Renderer, name: str, **context: Any) -> Reply:
    return Reply().say(renderer.render(f"messages/action/{name}.html", **context))


@contextmanager
def _said_kindly(renderer: Renderer) -> Iterator[None]:
    try:
        yield
    except FeedbackError as exc:
        text = renderer.render("messages/action/error.html", reason=exc.reason, **exc.details)
        raise DialogError(text) from None


def one_line(
    session: Session, renderer: Renderer, codebook: Codebook, head: str, rest: str, *, actor: int
) -> Reply:
    """``/action N code | finding | action | owner | date`` or ``/action done|drop|open ID``."""
    with _said_kindly(renderer):
        action_id = number(rest.strip())
        if head in STATUS_WORDS and action_id is not None:
            action = set_action_status(session, action_id, STATUS_WORDS[head], actor=actor)
            return _say(
                renderer, "done", outcome="status", action_id=action.id, status=action.status.value
            )
        round_id = number(head)
        if round_id is None or not rest:
            raise FeedbackError("form")
        closed_round(session, round_id)
        action = add_action(session, round_id, parse_action(rest, codebook), actor=actor)
        return _say(renderer, "done", outcome="recorded", action_id=action.id, round_id=round_id)


def listing(
    session: Session, renderer: Renderer, codebook: Codebook, round_id: int, *, now: datetime
) -> Reply:
    """/actions N: the round's actions."""
    items = list_actions(session, [round_id], codebook=codebook, today=now.date())
    return _say(renderer, "list", round_id=round_id, items=items)


def publish(
    session: Session,
    renderer: Renderer,
    round_id: int,
    *,
    partnership: str,
    now: datetime,
    actor: int,
) -> Reply:
    """/feedback N: "you said, we did" to everyone who took part."""
    with _said_kindly(renderer):
        actions, people = publish_feedback(
            session, renderer, round_id, partnership=partnership, now=now, actor=actor
        )
    return _say(
        renderer, "done", outcome="published", actions=actions, people=people, round_id=round_id
    )
