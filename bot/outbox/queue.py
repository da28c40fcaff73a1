"""Writing to the outbox. Anything not sent as a direct reply goes through here: invitations,
reminders, digests, feedback. The paced sender in bot.telegram.sender drains it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from bot.kernel.reply import OutgoingMessage
from storage.models import Delivery, DeliveryStatus


def enqueue(
    session: Session,
    *,
    chat_id: int,
    message: OutgoingMessage | dict[str, Any],
    kind: str,
    not_before: datetime,
    participant_id: int | None = None,
    round_id: int | None = None,
    invitation_id: int | None = None,
    dedupe_key: str | None = None,
) -> Delivery | None:
    """Add one delivery; with a `dedupe_key` already used, adds nothing and returns None.

    `message` is a text message, or a payload (bot.outbox.payloads, e.g. a document).
    `not_before` is the caller's clock reading: the sender compares it with its own clock, so
    it must come from the same clock (a test's FakeClock included), never the wall clock here.
    """
    if dedupe_key is not None:
        existing = session.scalar(select(Delivery.id).where(Delivery.dedupe_key == dedupe_key))
        if existing is not None:
            return None
    delivery = Delivery(
        chat_id=chat_id,
        participant_id=participant_id,
        kind=kind,
        round_id=round_id,
        invitation_id=invitation_id,
        dedupe_key=dedupe_key,
        payload=message.to_payload() if isinstance(message, OutgoingMessage) else message,
        status=DeliveryStatus.PENDING,
        next_attempt_at=not_before,
    )
    session.add(delivery)
    return delivery


def withdraw_pending(session: Session, *, participant_id: int, chat_id: int | None) -> int:
    """Cancel what is still waiting to go to a person who said /stop: nothing more of any
    kind reaches them (a batch already being sent cannot be called back)."""
    to_them = Delivery.participant_id == participant_id
    if chat_id is not None:
        to_them = or_(to_them, Delivery.chat_id == chat_id)
    withdrawn = session.execute(
        update(Delivery)
        .where(to_them, Delivery.status == DeliveryStatus.PENDING)
        .values(status=DeliveryStatus.CANCELLED, error="recipient said /stop")
        .execution_options(synchronize_session=False)
    )
    return int(withdrawn.rowcount or 0)  # type: ignore[attr-defined]
