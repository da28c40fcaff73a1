"""Writing to the outbox. Anything not sent as a direct reply goes through here: invitations,
reminders, digests, feedback. The paced sender in bot.delivery drains it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.messages import OutgoingMessage
from storage.models import Delivery, DeliveryStatus, utcnow


def enqueue(
    session: Session,
    *,
    chat_id: int,
    message: OutgoingMessage,
    kind: str,
    participant_id: int | None = None,
    round_id: int | None = None,
    invitation_id: int | None = None,
    dedupe_key: str | None = None,
    not_before: datetime | None = None,
) -> Delivery | None:
    """Add one delivery; with a `dedupe_key` already used, adds nothing and returns None."""
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
        payload=message.to_payload(),
        status=DeliveryStatus.PENDING,
        next_attempt_at=not_before or utcnow(),
    )
    session.add(delivery)
    return delivery
