"""The outbox sender: paced, resumable sending with Telegram's error mapping.

Everything that is not a direct reply to an update (invitations, reminders, digests, feedback,
notices to coordinators) is a ``Delivery`` row written with :func:`bot.outbox.queue.enqueue`
(payloads: bot.outbox.payloads), in the same transaction as the change that caused it. One
sender per deployment drains the rows: this loop, over bot.outbox.claims for the database and
bot.telegram.client for the Bot API.

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
or CANCELLED (its round closed, or its recipient became unreachable or said /stop); none is
silently dropped.
Before a batch is sent its rows are marked SENDING in a committed transaction, and results are
written when the batch is done. If the process dies in between, on the next start the rows
still SENDING are put back to PENDING and sent again: the ones whose request had already left
are duplicated. So a crash duplicates at most ``batch_size`` messages (default 50), each to a
different person (a batch holds at most one row per chat), so nobody gets more than one extra
copy per crash. A request that times out is retried, so it too may arrive twice. On
PostgreSQL only one process sends at a time (a session advisory lock); the others stand by.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import warnings
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from babel.numbers import format_decimal
from sqlalchemy import update
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError, TimedOut

from bot.kernel import i18n
from bot.kernel.clock import Clock, SystemClock
from bot.kernel.config import Settings
from bot.kernel.i18n import _
from bot.kernel.people import chat_language, chat_may_be_messaged
from bot.kernel.reply import OutgoingMessage
from bot.outbox.claims import Attempt, Row, SenderLock, claim, record, recover
from bot.rounds.watching import progress_counts
from bot.telegram.client import ConsultBot
from storage.db import SessionFactory
from storage.models import Round

log = logging.getLogger(__name__)


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
class SenderStats:
    sent: int = 0
    unreachable: int = 0
    failed: int = 0
    retried: int = 0
    rate_limited: int = 0


class Sender:
    """Drains the outbox. Run :meth:`run` as one asyncio task; :meth:`wake` after writing."""

    def __init__(
        self,
        sessions: SessionFactory,
        bot: ConsultBot,
        *,
        clock: Clock | None = None,
        rate: float = 25.0,
        per_chat_interval: float = 1.0,
        batch_size: int = 50,
        max_attempts: int = 8,
        concurrency: int | None = None,
        poll_interval: float = 1.0,
        progress_every: float = 2.0,
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
        self.stats = SenderStats()
        self.lock = SenderLock(sessions)
        self._wake = asyncio.Event()
        self._stopping = False
        self._last_sent: dict[int, float] = {}
        self._progress_at: dict[int, float] = {}

    # -------------------------------------------------------------- control

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def run(self, *, until_idle: bool = False) -> None:
        """Send until stopped (or, with `until_idle`, until nothing is due)."""
        try:
            while not self._stopping and not await asyncio.to_thread(self.lock.take):
                await self._sleep(self.poll_interval * 5)
            if self._stopping:
                return
            recovered = await asyncio.to_thread(recover, self.sessions)
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
                    continue
                if until_idle:
                    return
                await self._sleep(self._idle_wait())
        finally:
            await asyncio.to_thread(self.lock.release)

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

    # -------------------------------------------------------------- Telegram side

    async def run_batch(self) -> int:
        now_mono = time.monotonic()
        self._last_sent = {
            chat: at
            for chat, at in self._last_sent.items()
            if now_mono - at < self.per_chat_interval
        }
        rows = await asyncio.to_thread(
            claim, self.sessions, self.clock.now(), self.batch_size, set(self._last_sent)
        )
        if not rows:
            return 0
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
        rounds = await asyncio.to_thread(
            record, self.sessions, attempts_made, self.clock.now(), self.max_attempts
        )
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
        try:
            message_id = await self.bot.send_delivery(row.chat_id, row.payload)
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
    ) -> list[tuple[int, int, int | None, int, int, int, int, str | None]]:
        out = []
        with self.sessions() as session:
            for rid in round_ids:
                round_ = session.get(Round, rid)
                if round_ is None or round_.progress_chat_id is None:
                    continue
                if not chat_may_be_messaged(session, round_.progress_chat_id):
                    continue  # the coordinator said /stop: no progress either
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
                        chat_language(session, round_.progress_chat_id),
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
        """The progress line in the language being spoken (the coordinator's)."""

        def n(x: int) -> str:
            return format_decimal(x, locale=i18n.locale())

        figures = {"round_id": round_id, "sent": n(sent), "total": n(total)}
        figures["unreachable"] = n(unreachable)
        if waiting == 0:
            done = _(
                "Round {round_id}: all sent. Sent {sent} of {total}, {unreachable} unreachable"
            )
            return done.format(**figures)
        going = _("Round {round_id}: Sent {sent} of {total}, {unreachable} unreachable")
        return going.format(**figures)

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
        for rid, chat_id, message_id, total, sent, unreachable, waiting, language in rows:
            if rid not in due and waiting > 0:
                continue
            if waiting == 0 and self._progress_at.get(rid) == -1.0:
                continue  # the final figure is already shown
            with i18n.speaking(language):
                text_ = self.progress_text(rid, total, sent, unreachable, waiting)
            try:
                if message_id is None:
                    new_id = await self.bot.send_text(
                        chat_id, OutgoingMessage(text_), wait_out_429=False
                    )
                    await asyncio.to_thread(self._store_progress_message, rid, new_id)
                else:
                    await self.bot.edit_text(
                        chat_id, message_id, OutgoingMessage(text_), wait_out_429=False
                    )
            except RetryAfter as exc:
                self.pacer.pause(_retry_seconds(exc))
                continue
            except TelegramError as exc:  # e.g. "message is not modified": progress is a nicety
                log.debug("outbox: progress for round %s not shown: %s", rid, exc)
            self._progress_at[rid] = -1.0 if waiting == 0 else now


def make_sender(
    sessions: SessionFactory,
    bot: ConsultBot,
    settings: Settings,
    *,
    clock: Clock | None = None,
    poll_interval: float = 1.0,
    rate: float | None = None,
    per_chat_interval: float | None = None,
    batch_size: int | None = None,
) -> Sender:
    """A sender as `settings` say; a benchmark or test may set its own pace."""
    sending = settings.sending
    return Sender(
        sessions,
        bot,
        clock=clock,
        rate=rate or sending.rate_per_second,
        per_chat_interval=sending.per_chat_interval
        if per_chat_interval is None
        else per_chat_interval,
        batch_size=batch_size or sending.batch_size,
        max_attempts=sending.max_attempts,
        poll_interval=poll_interval,
    )
