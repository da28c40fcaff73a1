"""The outbox sender: paced, resumable sending with Telegram's error mapping.

Everything that is not a direct reply to an update (invitations, reminders, digests, feedback,
notices to coordinators) is a ``Delivery`` row written with :func:`bot.outbox.queue.enqueue`, in the
same transaction as the change that caused it. One sender per deployment drains the rows.

Payloads (``Delivery.payload``, JSON)
-------------------------------------

* Text: ``OutgoingMessage.to_payload()``, i.e.
  ``{"text": "<b>Telegram HTML</b>", "buttons": [[{"text": "Start", "callback_data": "p:go:1"}]],
  "disable_notification": false}``. Texts over 4,096 characters are refused by Telegram (400)
  and end FAILED: split them before you enqueue.
* Document: ``{"document": {"filename": "digest.html", "content_b64": "<base64>"}, "caption":
  "<b>HTML</b>, at most 1,024 characters", "buttons": [...]}``; instead of ``content_b64`` a
  ``"path"`` to a file readable by the sending process may be given (keep payloads small: a
  path for anything over a few hundred kB). Use :func:`document_payload` to build one.
* Photo: ``{"photo": {"content_b64": "<base64 PNG or JPEG>"}, "caption": "<b>HTML</b>, at most
  1,024 characters", "buttons": [...]}`` (or a ``"path"``, as for a document), sent with
  sendPhoto so it shows inline in the chat. Use :func:`photo_payload` to build one.

``Delivery.kind`` is free text for reporting and for what a round close cancels: the round code
uses ``invitation`` and ``reminder`` (cancelled when the round closes), ``notice`` for the
coordinator; use ``digest``, ``feedback``... for yours. Give a ``dedupe_key`` whenever the same
delivery could be written twice (e.g. ``digest:<round>:<participant>``).

Pace
----

At most ``settings.sending.rate_per_second`` requests overall (a steady pacer, no bursts) and
at most one message per chat per ``per_chat_interval`` seconds (a chat sent to within the
interval is not claimed). Rows are claimed in batches of ``batch_size``, at most one per chat.

Error mapping
-------------

* 429 (RetryAfter): the whole sender pauses for ``retry_after`` seconds, the row goes back to
  PENDING without counting an attempt, and is sent after the pause.
* 403 (Forbidden: blocked, deactivated, never started): the row is UNREACHABLE, the participant
  is UNREACHABLE, their unfinished invitations are UNREACHABLE, and every other pending delivery
  to that chat is CANCELLED. Nothing to that chat is tried again.
* 400 (BadRequest): FAILED with Telegram's reason; not retried.
* Network errors and 5xx: retried with exponential backoff (2, 4, 8 ... s, at most 5 min), FAILED
  after ``max_attempts`` attempts.
* Timeout after the request may have left (TimedOut): ambiguous. Policy: **at least once**. It is
  retried like a network error, accepting that Telegram may already have delivered it.

Delivery guarantee (README text)
--------------------------------

**No message is lost; a message may be duplicated, at most the in-flight batch per crash.**
Every row written to the outbox ends SENT, FAILED (400, or retries exhausted), UNREACHABLE (403)
or CANCELLED (its round closed or its recipient became unreachable); none is silently dropped.
Before a batch is sent its rows are marked SENDING in a committed transaction, and results are
written when the batch is done. If the process dies in between, on the next start the rows
still SENDING are put back to PENDING and sent again: the ones whose request had already left
are duplicated. So a crash duplicates at most ``batch_size`` messages (default 50), each to a
different person (a batch holds at most one row per chat), so nobody gets more than one extra
copy per crash. A request that times out is retried, so it too may arrive twice. On
PostgreSQL only one process sends at a time (a session advisory lock); the others stand by.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import os
import signal
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from babel.numbers import format_decimal
from sqlalchemy import Connection, func, select, text, update
from sqlalchemy.orm import Session
from telegram.error import (
    BadRequest,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)

from bot.kernel.clock import Clock, SystemClock
from storage.db import SessionFactory, engine_of
from storage.models import (
    Delivery,
    DeliveryStatus,
    Invitation,
    InvitationStatus,
    Participant,
    ParticipantStatus,
    Round,
)

log = logging.getLogger(__name__)

ADVISORY_LOCK_KEY = 7_301_004  # "only one sender" on PostgreSQL
MAX_BACKOFF = 300.0


def document_payload(
    filename: str,
    *,
    content: bytes | None = None,
    path: Path | None = None,
    caption: str = "",
    buttons: list[list[dict[str, str]]] | None = None,
) -> dict[str, Any]:
    """A payload that sends a file (see the module docstring)."""
    if (content is None) == (path is None):
        raise ValueError("give either content or path")
    document: dict[str, Any] = {"filename": filename}
    if content is not None:
        document["content_b64"] = base64.b64encode(content).decode("ascii")
    else:
        document["path"] = str(path)
    return {"document": document, "caption": caption, "buttons": buttons or []}


CAPTION_LIMIT = 1024


def photo_payload(
    content: bytes,
    *,
    caption: str = "",
    buttons: list[list[dict[str, str]]] | None = None,
) -> dict[str, Any]:
    """A payload that sends an image inline (see the module docstring). A caption over
    Telegram's limit is refused here, where the caller can fix it, not as a 400 at send time."""
    if len(caption) > CAPTION_LIMIT:
        raise ValueError(f"caption over {CAPTION_LIMIT} characters")
    return {
        "photo": {"content_b64": base64.b64encode(content).decode("ascii")},
        "caption": caption,
        "buttons": buttons or [],
    }


def _content(media: dict[str, Any]) -> bytes:
    if "content_b64" in media:
        return base64.b64decode(media["content_b64"])
    return Path(media["path"]).read_bytes()


def backoff(attempts: int) -> float:
    return min(MAX_BACKOFF, 2.0 ** max(1, attempts))


def _retry_seconds(exc: RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns that it becomes a timedelta: both handled
        warnings.simplefilter("ignore")
        value: Any = exc.retry_after
    if isinstance(value, timedelta):
        return value.total_seconds()
    return float(value)


class Pacer:
    """A steady pace of `rate` requests per second, which a 429 pauses as a whole."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next_at = 0.0
        self.pause_until = 0.0

    def pause(self, seconds: float) -> None:
        self.pause_until = max(self.pause_until, time.monotonic() + seconds)

    async def slot(self) -> None:
        while True:
            now = time.monotonic()
            start = max(self.next_at, self.pause_until)
            if start > now:
                await asyncio.sleep(start - now)
                continue
            # A little debt (one interval) is allowed so sleep overshoot does not slow the pace.
            self.next_at = max(self.next_at, now - self.interval) + self.interval
            return


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


@dataclass
class SenderStats:
    sent: int = 0
    unreachable: int = 0
    failed: int = 0
    retried: int = 0
    rate_limited: int = 0
    batches: int = 0
    started: float = field(default_factory=time.monotonic)


class Sender:
    """Drains the outbox. Run :meth:`run` as one asyncio task; :meth:`wake` after writing."""

    def __init__(
        self,
        sessions: SessionFactory,
        bot: TelegramClient,
        *,
        clock: Clock | None = None,
        rate: float = 25.0,
        per_chat_interval: float = 1.0,
        batch_size: int = 50,
        max_attempts: int = 8,
        concurrency: int | None = None,
        poll_interval: float = 1.0,
        progress_every: float = 2.0,
        locale: str = "en_GB",
    ) -> None:
        self.sessions = sessions
        self.bot = bot
        self.clock = clock or SystemClock()
        self.pacer = Pacer(rate)
        self.per_chat_interval = per_chat_interval
        self.batch_size = batch_size
        self.max_attempts = max_attempts
        # Enough requests in flight to keep the pace with a slow Telegram (200 ms at 25/s).
        self.concurrency = concurrency or int(min(32, max(8, rate / 25)))
        self.poll_interval = poll_interval
        self.progress_every = progress_every
        self.locale = locale
        self.stats = SenderStats()
        self._wake = asyncio.Event()
        self._stopping = False
        self._last_sent: dict[int, float] = {}
        self._progress_at: dict[int, float] = {}
        self._lock_connection: Connection | None = None
        self.idle = asyncio.Event()

    # -------------------------------------------------------------- control

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self, *, until_idle: bool = False) -> None:
        """Send until stopped (or, with `until_idle`, until nothing is due)."""
        try:
            while not self._stopping and not await asyncio.to_thread(self._lead):
                await self._sleep(self.poll_interval * 5)
            if self._stopping:
                return
            recovered = await asyncio.to_thread(self.recover)
            if recovered:
                log.warning(
                    "outbox: %d deliveries were in flight at the last stop; resending", recovered
                )
            while not self._stopping:
                try:
                    count = await self.run_batch()
                except Exception:
                    log.exception("outbox: batch failed; retrying shortly")
                    count = 0
                    await self._sleep(self.poll_interval)
                if count:
                    self.idle.clear()
                    continue
                self.idle.set()
                if until_idle:
                    return
                await self._sleep(self._idle_wait())
        finally:
            await asyncio.to_thread(self._release)

    def _idle_wait(self) -> float:
        # A chat held back by the per-chat interval becomes free soon; do not wait a full poll.
        if self._last_sent:
            soonest = min(self._last_sent.values()) + self.per_chat_interval - time.monotonic()
            if soonest > 0:
                return min(self.poll_interval, soonest + 0.01)
        return self.poll_interval

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    # -------------------------------------------------------------- single sender on PostgreSQL

    def _lead(self) -> bool:
        engine = engine_of(self.sessions)
        if engine.dialect.name != "postgresql":
            return True
        if self._lock_connection is None:
            self._lock_connection = engine.connect()
        got = bool(
            self._lock_connection.execute(
                text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY}
            ).scalar()
        )
        self._lock_connection.commit()
        return got

    def _release(self) -> None:
        if self._lock_connection is not None:
            with contextlib.suppress(Exception):
                # A pooled connection outlives close(): unlock explicitly, or the next sender
                # in this process would wait for a lock nobody uses.
                self._lock_connection.execute(text("SELECT pg_advisory_unlock_all()"))
                self._lock_connection.commit()
            with contextlib.suppress(Exception):
                self._lock_connection.close()
            self._lock_connection = None

    # -------------------------------------------------------------- database side

    def recover(self) -> int:
        """Rows left SENDING by a crash go back to PENDING (at least once: see the docstring)."""
        with self.sessions() as session:
            result = session.execute(
                update(Delivery)
                .where(Delivery.status == DeliveryStatus.SENDING)
                .values(status=DeliveryStatus.PENDING)
                .execution_options(synchronize_session=False)
            )
            session.commit()
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def claim(self) -> list[Row]:
        """Mark up to `batch_size` due rows SENDING, at most one per chat, none for a chat
        sent to within the per-chat interval."""
        now_mono = time.monotonic()
        recent = {
            chat for chat, at in self._last_sent.items() if now_mono - at < self.per_chat_interval
        }
        self._last_sent = {c: t for c, t in self._last_sent.items() if c in recent}
        now = self.clock.now()
        with self.sessions() as session:
            postgres = session.get_bind().dialect.name == "postgresql"
            if not postgres:
                # Take the write lock first: a read snapshot would make a later write fail.
                session.connection().exec_driver_sql("BEGIN IMMEDIATE")
            query = (
                select(Delivery.id, Delivery.chat_id)
                .where(Delivery.status == DeliveryStatus.PENDING, Delivery.next_attempt_at <= now)
                .order_by(Delivery.id)
                .limit(self.batch_size * 4 + len(recent))
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
                if len(chosen) >= self.batch_size:
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

    def record(self, attempts_made: Sequence[Attempt]) -> set[int]:
        """Write a batch's results in one transaction; returns the rounds touched."""
        now = self.clock.now()
        rounds: set[int] = set()
        with self.sessions() as session:
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
                    values = {"status": DeliveryStatus.UNREACHABLE, "error": o.error}
                    self._unreachable(session, o.row, now)
                elif o.status == "bad_request":
                    values = {"status": DeliveryStatus.FAILED, "error": o.error}
                elif o.row.attempts >= self.max_attempts:
                    values = {
                        "status": DeliveryStatus.FAILED,
                        "error": f"gave up after {o.row.attempts} attempts: {o.error}"[:300],
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

    def _unreachable(self, session: Session, row: Row, now: datetime) -> None:
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
            .values(status=DeliveryStatus.CANCELLED, error="recipient unreachable (403)")
            .execution_options(synchronize_session=False)
        )

    # -------------------------------------------------------------- Telegram side

    async def run_batch(self) -> int:
        rows = await asyncio.to_thread(self.claim)
        if not rows:
            return 0
        self.stats.batches += 1
        semaphore = asyncio.Semaphore(self.concurrency)
        tasks: list[asyncio.Task[Attempt]] = []

        async def guarded(row: Row) -> Attempt:
            try:
                return await self.send(row)
            finally:
                semaphore.release()

        for row in rows:
            await self.pacer.slot()
            await semaphore.acquire()
            self._last_sent[row.chat_id] = time.monotonic()
            tasks.append(asyncio.create_task(guarded(row)))
        attempts_made = await asyncio.gather(*tasks)
        rounds = await asyncio.to_thread(self.record, attempts_made)
        for o in attempts_made:
            if o.status == "sent":
                self.stats.sent += 1
            elif o.status == "forbidden":
                self.stats.unreachable += 1
            elif o.status == "bad_request":
                self.stats.failed += 1
            elif o.status == "retry_after":
                self.stats.rate_limited += 1
            else:
                self.stats.retried += 1
        if rounds:
            await self.update_progress(rounds)
        return len(rows)

    async def send(self, row: Row) -> Attempt:
        payload = row.payload
        try:
            if "document" in payload:
                document = payload["document"]
                message_id = await self.bot.send_document(
                    row.chat_id,
                    _content(document),
                    document.get("filename", "file"),
                    caption=payload.get("caption") or None,
                    buttons=payload.get("buttons"),
                    disable_notification=bool(payload.get("disable_notification", False)),
                )
            elif "photo" in payload:
                message_id = await self.bot.send_photo(
                    row.chat_id,
                    _content(payload["photo"]),
                    caption=payload.get("caption") or None,
                    buttons=payload.get("buttons"),
                    disable_notification=bool(payload.get("disable_notification", False)),
                )
            else:
                message_id = await self.bot.send_message(
                    row.chat_id,
                    payload["text"],
                    buttons=payload.get("buttons"),
                    disable_notification=bool(payload.get("disable_notification", False)),
                )
        except RetryAfter as exc:
            seconds = _retry_seconds(exc)
            self.pacer.pause(seconds)
            log.warning("outbox: 429, pausing all sending for %.0f s", seconds)
            return Attempt(row, "retry_after", error=f"429 retry after {seconds:.0f}s")
        except Forbidden as exc:
            return Attempt(row, "forbidden", error=f"403 {exc.message}")
        except BadRequest as exc:
            return Attempt(row, "bad_request", error=f"400 {exc.message}")
        except TimedOut as exc:
            return Attempt(row, "retry", error=f"timeout (may have been delivered): {exc.message}")
        except TelegramError as exc:  # NetworkError, 5xx and anything else from Telegram
            return Attempt(row, "retry", error=f"{type(exc).__name__}: {exc.message}")
        except (OSError, ValueError, KeyError) as exc:  # e.g. a document path that went away
            return Attempt(row, "bad_request", error=f"{type(exc).__name__}: {exc}")
        return Attempt(row, "sent", message_id=message_id)

    # -------------------------------------------------------------- the coordinator's progress

    def _progress_rows(
        self, round_ids: set[int]
    ) -> list[tuple[int, int, int | None, int, int, int, int]]:
        from bot.rounds.lifecycle import progress_counts

        out = []
        with self.sessions() as session:
            for rid in round_ids:
                round_ = session.get(Round, rid)
                if round_ is None or round_.progress_chat_id is None:
                    continue
                total, sent, unreachable, waiting = progress_counts(session, rid)
                if total == 0:
                    continue
                out.append(
                    (
                        rid,
                        round_.progress_chat_id,
                        round_.progress_message_id,
                        total,
                        sent,
                        unreachable,
                        waiting,
                    )
                )
        return out

    def _store_progress_message(self, round_id: int, message_id: int) -> None:
        with self.sessions() as session:
            session.execute(
                update(Round)
                .where(Round.id == round_id)
                .values(progress_message_id=message_id)
                .execution_options(synchronize_session=False)
            )
            session.commit()

    def progress_text(
        self, round_id: int, total: int, sent: int, unreachable: int, waiting: int
    ) -> str:
        def n(x: int) -> str:
            return format_decimal(x, locale=self.locale)

        head = f"Round {round_id}: " + ("all sent. " if waiting == 0 else "")
        return f"{head}Sent {n(sent)} of {n(total)}, {n(unreachable)} unreachable"

    async def update_progress(self, round_ids: set[int], *, force: bool = False) -> None:
        """Edit the coordinator's progress message, at most every `progress_every` seconds
        per round, and always once when the round's sending is done."""
        now = time.monotonic()
        due = {
            r
            for r in round_ids
            if force or now - self._progress_at.get(r, -1e9) >= self.progress_every
        }
        rows = await asyncio.to_thread(self._progress_rows, round_ids)
        for rid, chat_id, message_id, total, sent, unreachable, waiting in rows:
            if rid not in due and waiting > 0:
                continue
            if waiting == 0 and self._progress_at.get(rid) == -1.0:
                continue  # the final figure is already shown
            text_ = self.progress_text(rid, total, sent, unreachable, waiting)
            try:
                if message_id is None:
                    new_id = await self.bot.send_message(chat_id, text_)
                    await asyncio.to_thread(self._store_progress_message, rid, new_id)
                else:
                    await self.bot.edit_message_text(chat_id, message_id, text_)
            except RetryAfter as exc:
                self.pacer.pause(_retry_seconds(exc))
                continue
            except TelegramError as exc:  # e.g. "message is not modified": progress is a nicety
                log.debug("outbox: progress for round %s not shown: %s", rid, exc)
            self._progress_at[rid] = -1.0 if waiting == 0 else now


def count_by_status(session: Session, round_id: int | None = None) -> dict[str, int]:
    query = select(Delivery.status, func.count()).group_by(Delivery.status)
    if round_id is not None:
        query = query.where(Delivery.round_id == round_id)
    return {status.value: n for status, n in session.execute(query)}


class TelegramClient:
    """The sender's own thin Bot API client (aiohttp): sendMessage, sendDocument, sendPhoto
    and editMessageText, raising python-telegram-bot's error classes so the mapping reads the same
    as everywhere else. No retries or rate limiting here: the sender decides both.

    Why not PTB's ``Bot``: with httpx it tops out near 400 requests/s on two cores. On
    :class:`bot.telegram.request.AiohttpRequest` it was measured again (2 cores, stand-in
    in its own process, limits off, 10,000 messages, batch 500): ``telegram.Bot`` with the
    keyboard passed raw through ``api_kwargs`` and sendMessage through ``do_api_request`` (no
    ``Message`` parsing) did 1,234 and 782 msg/s in bench/outbox_bench.py against 641 and
    828 for this client (a busy machine); run back to back on 5,000 messages this client did
    1,440, 1,620, 1,851 and 710 msg/s against PTB's 857, 1,039, 904 and 410, i.e. PTB about
    half as fast. Profile of what remains per message: PTB's RequestParameter/urlencode of
    the form body and its per-call object machinery; with plain ``send_message`` (Message and
    InlineKeyboardMarkup objects both ways) it was 297 msg/s. Neither the ~1,000 msg/s target
    nor "within 15%" held reliably, so the outbox keeps this client; limits on both paced
    25.0/s with no 429. Revisit if PTB's request encoding gets cheaper."""

    def __init__(self, token: str, base_url: str, *, timeout: float = 10.0, pool: int = 64) -> None:
        self.url = f"{base_url}{token}/"
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.pool = pool
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> TelegramClient:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.pool), timeout=self.timeout
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        form: aiohttp.FormData | None = None,
    ) -> Any:
        assert self._session is not None, "use the client as an async context manager"
        try:
            async with self._session.post(
                self.url + method, json=params if form is None else None, data=form
            ) as response:
                status = response.status
                try:
                    body = await response.json(content_type=None)
                except ValueError:
                    body = None
        except TimeoutError as exc:
            raise TimedOut(f"no answer to {method} in time") from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"{type(exc).__name__}: {exc}") from exc
        if isinstance(body, dict) and body.get("ok"):
            return body.get("result")
        description = str((body or {}).get("description") or f"HTTP {status}")
        code = int((body or {}).get("error_code") or status)
        retry_after = ((body or {}).get("parameters") or {}).get("retry_after")
        if retry_after is not None:
            raise RetryAfter(timedelta(seconds=int(retry_after)))
        if code == 403:
            raise Forbidden(description)
        if code == 400:
            raise BadRequest(description)
        raise NetworkError(f"{description} ({code})")

    async def send_message(
        self,
        chat_id: int,
        text: str,
        *,
        buttons: list[list[dict[str, str]]] | None = None,
        disable_notification: bool = False,
    ) -> int:
        params: dict[str, Any] = {
            "chat_id": chat_id,
            "text": text,
            "parse_mode": "HTML",
            "disable_notification": disable_notification,
        }
        if buttons:
            params["reply_markup"] = {"inline_keyboard": [row for row in buttons if row]}
        result = await self.call("sendMessage", params)
        return int(result["message_id"])

    async def send_document(
        self,
        chat_id: int,
        content: bytes,
        filename: str,
        *,
        caption: str | None = None,
        buttons: list[list[dict[str, str]]] | None = None,
        disable_notification: bool = False,
    ) -> int:
        form = _media_form(chat_id, caption, buttons, disable_notification)
        form.add_field("document", content, filename=filename)
        result = await self.call("sendDocument", form=form)
        return int(result["message_id"])

    async def send_photo(
        self,
        chat_id: int,
        content: bytes,
        *,
        caption: str | None = None,
        buttons: list[list[dict[str, str]]] | None = None,
        disable_notification: bool = False,
    ) -> int:
        form = _media_form(chat_id, caption, buttons, disable_notification)
        form.add_field("photo", content, filename="chart.png", content_type="image/png")
        result = await self.call("sendPhoto", form=form)
        return int(result["message_id"])

    async def edit_message_text(self, chat_id: int, message_id: int, text: str) -> None:
        await self.call(
            "editMessageText",
            {"chat_id": chat_id, "message_id": message_id, "text": text, "parse_mode": "HTML"},
        )


def _media_form(
    chat_id: int,
    caption: str | None,
    buttons: list[list[dict[str, str]]] | None,
    disable_notification: bool,
) -> aiohttp.FormData:
    """The multipart fields a sendDocument or sendPhoto shares; the file is added after."""
    form = aiohttp.FormData()
    form.add_field("chat_id", str(chat_id))
    if caption:
        form.add_field("caption", caption)
        form.add_field("parse_mode", "HTML")
    if buttons:
        form.add_field("reply_markup", json.dumps({"inline_keyboard": buttons}))
    if disable_notification:
        form.add_field("disable_notification", "true")
    return form


def make_bot(
    token: str, base_url: str, base_file_url: str = "", *, timeout: float = 10.0, pool: int = 64
) -> TelegramClient:
    """The sender's client (``base_file_url`` is accepted for symmetry; uploads go to base_url)."""
    return TelegramClient(token, base_url, timeout=timeout, pool=pool)


# ------------------------------------------------------------------ standalone process


async def _main(args: argparse.Namespace) -> None:
    from bot.kernel.config import load_settings
    from storage.db import make_engine, make_session_factory

    settings = load_settings(Path(args.config) if args.config else None)
    sessions = make_session_factory(make_engine(args.database or settings.database_url))
    bot = make_bot(
        args.token or os.environ.get("CONSULTBOT_TOKEN") or settings.require_token(),
        args.base_url or settings.telegram.base_url,
        args.base_file_url or settings.telegram.base_file_url,
        timeout=settings.telegram.request_timeout,
    )
    sending = settings.sending
    sender = Sender(
        sessions,
        bot,
        rate=args.rate or sending.rate_per_second,
        per_chat_interval=sending.per_chat_interval if args.per_chat is None else args.per_chat,
        batch_size=args.batch_size or sending.batch_size,
        max_attempts=sending.max_attempts,
        poll_interval=0.2,
        locale=settings.partnership.locale,
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, sender.stop)
    async with bot:
        print("sender running", flush=True)
        await sender.run(until_idle=args.until_idle)
    print(f"sender stopped: sent {sender.stats.sent}, 429s {sender.stats.rate_limited}", flush=True)


def main(argv: list[str] | None = None) -> None:
    """``python -m bot.telegram.sender``: run only the sender (benchmarks, crash tests, or a
    deployment that wants the sender in its own process)."""
    parser = argparse.ArgumentParser(prog="python -m bot.telegram.sender")
    parser.add_argument("--config")
    parser.add_argument("--database")
    parser.add_argument("--token")
    parser.add_argument("--base-url")
    parser.add_argument("--base-file-url")
    parser.add_argument(
        "--rate", type=float, help="overall messages per second (bench: may exceed 30)"
    )
    parser.add_argument("--per-chat", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--until-idle", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("CONSULTBOT_LOG_LEVEL", "WARNING"))
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
