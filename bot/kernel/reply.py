"""What a service wants said, as plain data: one Reply per update (toast, an edit, messages and
documents), built of OutgoingMessages. Services build these, the Telegram layer sends them, and
the outbox stores messages as JSON so a restart can send exactly what was decided."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Button:
    text: str
    callback_data: str | None = None  # at most 64 bytes (Telegram's limit)
    url: str | None = None

    def __post_init__(self) -> None:
        if self.callback_data is not None and len(self.callback_data.encode()) > 64:
            raise ValueError(f"callback data over 64 bytes: {self.callback_data!r}")


@dataclass(frozen=True)
class OutgoingMessage:
    """Telegram HTML text with optional rows of inline buttons."""

    text: str
    buttons: tuple[tuple[Button, ...], ...] = field(default_factory=tuple)
    disable_notification: bool = False

    def keyboard(self) -> list[list[dict[str, str]]]:
        """The buttons as the Bot API's inline keyboard rows (JSON-ready)."""
        return [
            [{k: v for k, v in vars(b).items() if v is not None} for b in row]
            for row in self.buttons
        ]

    def to_payload(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "buttons": self.keyboard(),
            "disable_notification": self.disable_notification,
        }


# An edit that keeps the pressed message's text and takes its buttons off (a round's intro once
# Start now is pressed): nothing to render, one editMessageReplyMarkup.
BUTTONS_OFF = OutgoingMessage("")


def rows(*rows: list[Button] | tuple[Button, ...]) -> tuple[tuple[Button, ...], ...]:
    return tuple(tuple(row) for row in rows if row)


@dataclass
class Document:
    filename: str
    content: bytes
    caption: str | None = None
    photo: bool = False  # shown inline as a picture (a chart) rather than as a file


@dataclass
class Reply:
    """The answer to one update: an optional callback toast, an optional edit of the message
    whose button was pressed (or, for a typed message, of message `edit_message_id`), then
    messages (and documents) to send in order."""

    messages: list[OutgoingMessage] = field(default_factory=list)
    edit: OutgoingMessage | None = None
    edit_message_id: int | None = None
    toast: str | None = None
    alert: bool = False  # the toast is a refusal to read: shown as a box to dismiss
    # A dialog's next step: if the pressed message can no longer be edited (too old, deleted),
    # send the edit as a new message instead, so the dialog can go on.
    edit_or_send: bool = False
    # The invitation whose prompt card is the last message sent: its message id is recorded
    # so that a typed answer can later take the card's buttons off.
    card_for: int | None = None
    documents: list[Document] = field(default_factory=list)
    # Role after the update, so the Telegram layer can refresh the command menu.
    menu_role: str | None = None

    def say(self, message: OutgoingMessage | str) -> Reply:
        self.messages.append(OutgoingMessage(message) if isinstance(message, str) else message)
        return self

    def card(self, invitation_id: int, prompt: OutgoingMessage) -> Reply:
        """Send a question as the round's new prompt card (see card_for)."""
        self.card_for = invitation_id
        return self.say(prompt)
