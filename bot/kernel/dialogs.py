"""What the guided dialogs (/schedule, /action) share: each keeps its state in one
DialogState row per chat and kind, so a restart loses nothing."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import DialogState


def dialog_state(session: Session, chat_id: int, kind: str) -> DialogState | None:
    return session.scalar(
        select(DialogState).where(DialogState.chat_id == chat_id, DialogState.kind == kind)
    )


def waiting_for_text(session: Session, chat_id: int, kind: str, steps: Collection[str]) -> bool:
    """Whether this chat's dialog of `kind` is at a step that expects typed text."""
    state = dialog_state(session, chat_id, kind)
    return state is not None and state.step in steps
