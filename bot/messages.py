"""A message to send, as plain data: services build these, the Telegram layer sends them, and
the outbox stores them as JSON so a restart can send exactly what was decided."""

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

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> OutgoingMessage:
        return cls(
            text=payload["text"],
            buttons=tuple(tuple(Button(**b) for b in row) for row in payload.get("buttons", [])),
            disable_notification=bool(payload.get("disable_notification", False)),
        )


def rows(*rows: list[Button] | tuple[Button, ...]) -> tuple[tuple[Button, ...], ...]:
    return tuple(tuple(row) for row in rows if row)
