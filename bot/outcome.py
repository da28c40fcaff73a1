"""What a service decided to say, as plain data the Telegram layer carries out."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.messages import OutgoingMessage


@dataclass
class Document:
    filename: str
    content: bytes
    caption: str | None = None


@dataclass
class Outcome:
    """The answer to one update: an optional callback toast, an optional edit of the message
    whose button was pressed (or, for a typed message, of message `edit_message_id`), then
    messages (and documents) to send in order."""

    messages: list[OutgoingMessage] = field(default_factory=list)
    edit: OutgoingMessage | None = None
    edit_message_id: int | None = None
    toast: str | None = None
    # The invitation whose prompt card is the last message sent: its message id is recorded
    # so that a typed answer can later take the card's buttons off.
    card_for: int | None = None
    documents: list[Document] = field(default_factory=list)
    # Role after the update, so the Telegram layer can refresh the command menu.
    menu_role: str | None = None

    def say(self, message: OutgoingMessage | str) -> Outcome:
        self.messages.append(OutgoingMessage(message) if isinstance(message, str) else message)
        return self

    def card(self, invitation_id: int, prompt: OutgoingMessage) -> Outcome:
        """Send a question as the round's new prompt card (see card_for)."""
        self.card_for = invitation_id
        return self.say(prompt)
