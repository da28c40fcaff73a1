"""What the guided dialogs (/schedule, /action, /review) share: each keeps its state in one
DialogState row per chat and kind, so a restart loses nothing; a press or a typed line the
dialog cannot use raises DialogError with a kind message, and the transaction is rolled back."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.kernel.config import Settings
from bot.kernel.render import Renderer
from bot.kernel.reply import Button
from storage.models import DialogState


class DialogError(Exception):
    """A press or a text a dialog cannot use; the message (from a template) says why, kindly."""


@dataclass
class Dialog:
    """What a dialog's step needs besides the session: where it is, and how to speak (the
    templates under messages/<folder>/)."""

    folder: ClassVar[str]
    chat_id: int
    now: datetime
    settings: Settings
    renderer: Renderer

    def say(self, name: str, **context: Any) -> str:
        return self.renderer.render(f"messages/{self.folder}/{name}.html", **context)

    def refuse(self, reason: str, **context: Any) -> DialogError:
        return DialogError(self.say("refused", reason=reason, **context))


def dialog_state(session: Session, chat_id: int, kind: str) -> DialogState | None:
    return session.scalar(
        select(DialogState).where(DialogState.chat_id == chat_id, DialogState.kind == kind)
    )


def begin(
    session: Session, chat_id: int, kind: str, step: str, now: datetime, **data: Any
) -> DialogState:
    """A new dialog of `kind` in this chat at `step`. One dialog at a time in a chat: this ends
    any other dialog waiting there, so a typed line can only be meant for this one."""
    session.execute(delete(DialogState).where(DialogState.chat_id == chat_id))
    state = DialogState(chat_id=chat_id, kind=kind, step=step, data=data, updated_at=now)
    session.add(state)
    return state


def advance(state: DialogState, step: str, now: datetime, **data: Any) -> None:
    """Move the dialog to `step`, keeping what it gathered and adding `data`."""
    state.step = step
    state.data = {**state.data, **data}
    state.updated_at = now


def waiting_for_text(session: Session, chat_id: int, kind: str, steps: Collection[str]) -> bool:
    """Whether this chat's dialog of `kind` is at a step that expects typed text."""
    state = dialog_state(session, chat_id, kind)
    return state is not None and state.step in steps


def number(text: str) -> int | None:
    """A number typed or carried in callback data: ASCII digits only (str.isdigit also takes
    '²' and other scripts' digits), at most nine of them; None for anything else."""
    return int(text) if 0 < len(text) < 10 and text.isascii() and text.isdigit() else None


def button(renderer: Renderer, key: str, data: str, **context: Any) -> Button:
    """A button that sends `data`, its text from templates/messages/buttons.txt by `key` (plain
    text, not HTML)."""
    return Button(renderer.render("messages/buttons.txt", key=key, **context), data)
