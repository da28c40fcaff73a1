"""The audit trail: who did what to which round, invite or role, and when."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from storage.models import AuditEvent


def record(
    session: Session,
    action: str,
    *,
    actor: int | None = None,
    subject: tuple[str, int | None] | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    event = AuditEvent(
        action=action,
        actor_telegram_id=actor,
        subject_type=subject[0] if subject else None,
        subject_id=subject[1] if subject else None,
        details=details or {},
    )
    session.add(event)
    return event
