"""The database side of sending: claim due deliveries, record how sending them went, put
back what a crash left in flight, and make sure one process sends at a time. The sender loop
and the Bot API calls are bot.telegram.sender's; the delivery guarantee is described there."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select, text, update
from sqlalchemy.orm import Session

from bot.outbox.payloads import PURGED
from storage.db import SessionFactory, engine_of
from storage.models import (
    Delivery,
    DeliveryStatus,
    Invitation,
    InvitationStatus,
    Participant,
    ParticipantStatus,
)

ADVISORY_LOCK_KEY = 7_301_004  # "only one sender" on PostgreSQL
MAX_BACKOFF = 300.0


@dataclass
class Row:
    id: int
    chat_id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    round_id: int | None
    invitation_id: int | None
    participant_id: int | None


@dataclass
class Attempt:
    row: Row
    status: str  # sent | retry_after | forbidden | bad_request | retry
    message_id: int | None = None
    error: str | None = None


def backoff(attempts: int) -> float:
    return min(MAX_BACKOFF, 2.0 ** max(1, attempts))


def recover(sessions: SessionFactory) -> int:
    """Rows left SENDING by a crash go back to PENDING (at least once: see bot.telegram.sender)."""
    with sessions() as session:
        result = session.execute(
            update(Delivery)
            .where(Delivery.status == DeliveryStatus.SENDING)
            .values(status=DeliveryStatus.PENDING)
            .execution_options(synchronize_session=False)
        )
        session.commit()
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def claim(sessions: SessionFactory, now: datetime, batch_size: int, recent: set[int]) -> list[Row]:
    """Mark up to `batch_size` rows due at `now` SENDING, at most one per chat, none for the
    chats in `recent` (sent to within the per-chat interval)."""
    with sessions() as session:
        postgres = session.get_bind().dialect.name == "postgresql"
        if not postgres:
            # Take the write lock first: a read snapshot would make a later write fail.
            session.connection().exec_driver_sql("BEGIN IMMEDIATE")
        query = (
            select(Delivery.id, Delivery.chat_id)
            .where(Delivery.status == DeliveryStatus.PENDING, Delivery.next_attempt_at <= now)
            .order_by(Delivery.id)
            .limit(batch_size * 4 + len(recent))
        )
        if postgres:
            query = query.with_for_update(skip_locked=True)
        chosen: list[int] = []
        chats: set[int] = set()
        for ident, chat_id in session.execute(query):
            if chat_id in recent or chat_id in chats:
                continue
            chats.add(chat_id)
            chosen.append(ident)
            if len(chosen) >= batch_size:
                break
        if not chosen:
            session.rollback()
            return []
        rows = session.execute(
            update(Delivery)
            .where(Delivery.id.in_(chosen), Delivery.status == DeliveryStatus.PENDING)
            .values(status=DeliveryStatus.SENDING, attempts=Delivery.attempts + 1)
            .returning(
                Delivery.id,
                Delivery.chat_id,
                Delivery.kind,
                Delivery.payload,
                Delivery.attempts,
                Delivery.round_id,
                Delivery.invitation_id,
                Delivery.participant_id,
            )
            .execution_options(synchronize_session=False)
        ).all()
        session.commit()
    claimed = [Row(*r) for r in rows]
    claimed.sort(key=lambda r: r.id)
    return claimed


def record(
    sessions: SessionFactory, attempts_made: Sequence[Attempt], now: datetime, max_attempts: int
) -> set[int]:
    """Write a batch's results in one transaction (see bot.telegram.sender for the error
    mapping); returns the rounds touched."""
    rounds: set[int] = set()
    with sessions() as session:
        sent = [o for o in attempts_made if o.status == "sent"]
        if sent:
            session.execute(
                update(Delivery),
                [
                    {
                        "id": o.row.id,
                        "status": DeliveryStatus.SENT,
                        "sent_at": now,
                        "telegram_message_id": o.message_id,
                        "error": None,
                        "payload": PURGED,
                    }
                    for o in sent
                ],
            )
            invitation_ids = [
                o.row.invitation_id
                for o in sent
                if o.row.kind == "invitation" and o.row.invitation_id
            ]
            if invitation_ids:
                session.execute(
                    update(Invitation)
                    .where(
                        Invitation.id.in_(invitation_ids),
                        Invitation.status == InvitationStatus.PENDING,
                    )
                    .values(status=InvitationStatus.DELIVERED, delivered_at=now)
                    .execution_options(synchronize_session=False)
                )
        for o in attempts_made:
            if o.row.round_id:
                rounds.add(o.row.round_id)
            if o.status == "sent":
                continue
            if o.status == "retry_after":
                values: dict[str, Any] = {
                    "status": DeliveryStatus.PENDING,
                    "attempts": o.row.attempts - 1,
                    "error": o.error,
                }
            elif o.status == "forbidden":
                values = {"status": DeliveryStatus.UNREACHABLE, "error": o.error, "payload": PURGED}
                _unreachable(session, o.row, now)
            elif o.status == "bad_request":
                values = {"status": DeliveryStatus.FAILED, "error": o.error, "payload": PURGED}
            elif o.row.attempts >= max_attempts:
                values = {
                    "status": DeliveryStatus.FAILED,
                    "error": f"gave up after {o.row.attempts} attempts: {o.error}"[:300],
                    "payload": PURGED,
                }
            else:
                values = {
                    "status": DeliveryStatus.PENDING,
                    "next_attempt_at": now + timedelta(seconds=backoff(o.row.attempts)),
                    "error": o.error,
                }
            if values.get("error"):
                values["error"] = str(values["error"])[:300]
            session.execute(
                update(Delivery)
                .where(Delivery.id == o.row.id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        session.commit()
    return rounds


def _unreachable(session: Session, row: Row, now: datetime) -> None:
    """403: stop everything to this person."""
    participant_ids = set(
        session.scalars(select(Participant.id).where(Participant.chat_id == row.chat_id))
    )
    if row.participant_id:
        participant_ids.add(row.participant_id)
    if participant_ids:
        session.execute(
            update(Participant)
            .where(Participant.id.in_(participant_ids))
            .values(status=ParticipantStatus.UNREACHABLE)
            .execution_options(synchronize_session=False)
        )
        session.execute(
            update(Invitation)
            .where(
                Invitation.participant_id.in_(participant_ids),
                Invitation.status.in_(
                    (
                        InvitationStatus.PENDING,
                        InvitationStatus.QUEUED,
                        InvitationStatus.DELIVERED,
                    )
                ),
            )
            .values(status=InvitationStatus.UNREACHABLE)
            .execution_options(synchronize_session=False)
        )
    session.execute(
        update(Delivery)
        .where(
            Delivery.chat_id == row.chat_id,
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.id != row.id,
        )
        .values(
            status=DeliveryStatus.CANCELLED, error="recipient unreachable (403)", payload=PURGED
        )
        .execution_options(synchronize_session=False)
    )


class SenderLock:
    """On PostgreSQL only one process sends at a time: it holds a session advisory lock on a
    connection of its own. Elsewhere (SQLite: one process) there is nothing to hold."""

    def __init__(self, sessions: SessionFactory) -> None:
        self.engine = engine_of(sessions)
        self._connection: Connection | None = None

    def take(self) -> bool:
        """Whether this process may send now."""
        if self.engine.dialect.name != "postgresql":
            return True
        if self._connection is None:
            self._connection = self.engine.connect()
        got = bool(
            self._connection.execute(
                text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY}
            ).scalar()
        )
        self._connection.commit()
        return got

    def release(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                # A pooled connection outlives close(): unlock explicitly, or the next sender
                # in this process would wait for a lock nobody uses.
                self._connection.execute(text("SELECT pg_advisory_unlock_all()"))
                self._connection.commit()
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None
