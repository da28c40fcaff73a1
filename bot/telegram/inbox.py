"""Updates the webhook acknowledged, kept in the database until they are processed.

Telegram forgets an update once the webhook has answered 200, so the receiver answers only
after the update is stored here and committed (Inbox.keep). Once python-telegram-bot has
processed an update (its handlers ran, whatever they decided), its row is deleted, in batches
twice a second. A process that dies, SIGKILL included, leaves the rows of the updates it held;
another process, or the next start, takes them over and processes them. One whose work had
committed just before the crash (its row's deletion still waiting for the batch) is then
dropped by the processed-update check (bot.telegram.transactions.claim_update): nothing is
done twice.

Whose rows are whose: each process is an owner, a random number. On PostgreSQL it holds a
session advisory lock on that number, on a connection of its own, for as long as it lives; the
server lets the lock go when the process dies, so whoever can take an owner's lock knows the
owner is gone, and takes its rows. Each process looks when it starts and every few seconds.
On SQLite (one machine, one `consultbot run`) a starting process takes every row it finds: a
row a sibling worker still holds is then processed by both, and the later claim is dropped as
a duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import BigInteger, Connection, bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from telegram import Update
from telegram.ext import Application, SimpleUpdateProcessor

from bot.kernel.context import AppContext
from bot.telegram.transactions import in_transaction
from storage.models import InboxUpdate
from storage.prepared import Prepared

log = logging.getLogger(__name__)
R = TypeVar("R")

INBOX = InboxUpdate.__table__
FORGET_EVERY = 0.5  # seconds between deletions of processed updates' rows
TAKE_OVER_EVERY = 5.0  # seconds between looks for the rows of processes that died
# An owner's advisory-lock key: the owner under a tag in the top byte, clear of the outbox
# sender's key and the people's (bot.telegram.transactions.person_lock_key).
_OWNER_TAG = 0x49 << 56
_OWNER_BITS = 47

# Every update the webhook receives runs it: built once (storage.prepared).
_KEEP = Prepared(
    insert(INBOX).values(
        update_id=bindparam("update_id"),
        body=bindparam("body"),
        owner=bindparam("owner"),
        received_at=bindparam("now"),
    )
)
_FORGET = delete(INBOX).where(INBOX.c.update_id.in_(bindparam("ids", expanding=True)))
_OWNERS = select(INBOX.c.owner).where(INBOX.c.owner != bindparam("me")).distinct()
_GONE = select(func.pg_try_advisory_xact_lock(bindparam("key", type_=BigInteger)))
_TAKE = (
    update(INBOX)
    .where(INBOX.c.owner.in_(bindparam("owners", expanding=True)))
    .values(owner=bindparam("me"))
    .returning(INBOX.c.update_id, INBOX.c.body)
)


def owner_lock_key(owner: int) -> int:
    return _OWNER_TAG | owner


class Inbox:
    """One process's side of the inbox: what it keeps, what it has processed, and the rows of
    dead processes it takes over."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.owner = secrets.randbits(_OWNER_BITS) | 1
        self._to_keep: list[tuple[int, str, asyncio.Future[bool]]] = []
        self._keeping: asyncio.Task[None] | None = None
        self._processed: list[int] = []
        self._holder: Connection | None = None  # PostgreSQL: holds the owner's lock
        self._postgres = ctx.engine.dialect.name == "postgresql"
        # A thread of its own for the inbox's statements (where they leave the event loop):
        # Telegram's 200 waits for them, and must not queue behind the updates being
        # processed, which may all be waiting for a lock.
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="inbox")

    async def keep(self, update_id: int, body: str) -> bool:
        """Store an update (committed) before Telegram is told it arrived; False if it is
        already here (sent again while it waits: it is in hand, or will be taken over).

        Updates that arrive while one batch commits are stored together in the next, one
        transaction for all. Measured here, kept one at a time an update cost 110-200 us of
        CPU on SQLite and 0.6-1 ms of CPU (5-8 ms waiting for the disk) on PostgreSQL; ten
        together, 45 and 134 us each."""
        kept = asyncio.get_running_loop().create_future()
        self._to_keep.append((update_id, body, kept))
        if self._keeping is None:
            self._keeping = asyncio.create_task(self._keep_waiting())
        return await kept

    async def _keep_waiting(self) -> None:
        try:
            while self._to_keep:
                batch, self._to_keep = self._to_keep, []
                try:
                    fresh = await self._store([(u, body) for u, body, _ in batch])
                except Exception as error:  # the database is away: no 200 for any of them
                    for *_, kept in batch:
                        if not kept.done():  # (done: its request went away)
                            kept.set_exception(error)
                    continue
                for (*_, kept), new in zip(batch, fresh, strict=True):
                    if not kept.done():
                        kept.set_result(new)
        finally:
            self._keeping = None

    async def _store(self, updates: list[tuple[int, str]]) -> list[bool]:
        now = self.ctx.clock.now()
        rows = [{"update_id": u, "body": b, "owner": self.owner, "now": now} for u, b in updates]
        try:
            await self._in_transaction(lambda connection: _KEEP.run(connection, rows))
            return [True] * len(rows)
        except IntegrityError:
            if len(rows) == 1:
                return [False]
        # One of them is here already (rare: Telegram sends again only an update whose 200
        # it missed): each on its own.
        return [(await self._store([update]))[0] for update in updates]

    def processed(self, update_id: int) -> None:
        """python-telegram-bot is done with the update: its row goes with the next batch."""
        self._processed.append(update_id)

    async def forget_processed(self) -> None:
        """Delete the rows of the updates processed since the last call."""
        ids, self._processed = self._processed, []
        if not ids:
            return
        try:
            await self._in_transaction(lambda c: c.execute(_FORGET, {"ids": ids}))
        except Exception:
            self._processed[:0] = ids  # next time
            raise

    async def _in_transaction(self, work: Callable[[Connection], R]) -> R:
        return await in_transaction(self.ctx, work, executor=self._thread)

    async def open(self) -> None:
        """Take this process's owner lock (PostgreSQL), before the first update is kept."""
        if self._postgres:
            await asyncio.get_running_loop().run_in_executor(self._thread, self._hold)

    def _hold(self) -> None:
        """Make sure the owner lock is held: its connection may have dropped (a database
        restart), and the other processes would then take this one's rows."""
        if self._holder is not None:
            try:
                self._holder.exec_driver_sql("SELECT 1")
                self._holder.commit()
                return
            except Exception:
                log.warning("the inbox's owner lock was lost; taking it again")
                with contextlib.suppress(Exception):
                    self._holder.invalidate()
                self._holder = None
        holder = self.ctx.engine.connect()
        holder.execute(select(func.pg_advisory_lock(owner_lock_key(self.owner))))
        holder.commit()
        self._holder = holder

    async def close(self) -> None:
        """Delete what was processed and let the owner lock go (by closing its connection:
        a pooled connection would keep holding it)."""
        await self.forget_processed()
        holder, self._holder = self._holder, None
        if holder is not None:
            with contextlib.suppress(Exception):
                await asyncio.get_running_loop().run_in_executor(
                    self._thread, self._release, holder
                )
        self._thread.shutdown(wait=False)

    def _release(self, holder: Connection) -> None:
        # Unlocked before the connection goes: the server frees a dropped connection's locks
        # only once it notices, and another process looking at once would still see them held.
        try:
            holder.execute(select(func.pg_advisory_unlock(owner_lock_key(self.owner))))
            holder.commit()
        finally:
            holder.invalidate()

    async def take_over(self, application: Application, *, at_start: bool = False) -> int:  # type: ignore[type-arg]
        """Put the updates of dead processes on `application`'s queue, now held by this one;
        how many. On SQLite only at start, where every other owner counts as dead."""
        if not (self._postgres or at_start):
            return 0
        rows = await self._in_transaction(self._take_rows)
        for update_id, body in sorted(rows):
            update = _parse(body, application)
            if update is None:
                log.warning("update %s in the inbox is not an update; dropped", update_id)
                self.processed(update_id)
                continue
            await application.update_queue.put(update)
        if rows:
            log.info("took over %d update(s) a stopped process had received", len(rows))
        return len(rows)

    def _take_rows(self, connection: Connection) -> list[tuple[int, str]]:
        owners = list(connection.scalars(_OWNERS, {"me": self.owner}))
        if self._postgres:
            # Free means nobody holds it: that owner is gone. Held until this commits, so two
            # processes never take the same owner's rows.
            owners = [o for o in owners if connection.scalar(_GONE, {"key": owner_lock_key(o)})]
        if not owners:
            return []
        taken = connection.execute(_TAKE, {"owners": owners, "me": self.owner})
        return [(int(update_id), str(body)) for update_id, body in taken]

    async def keep_up(self, application: Application) -> None:  # type: ignore[type-arg]
        """Run beside the receiver until cancelled: take over what dead processes left, at
        once and every TAKE_OVER_EVERY seconds (PostgreSQL); delete processed rows every
        FORGET_EVERY seconds."""
        await self.take_over(application, at_start=True)
        since = 0.0
        while True:
            await asyncio.sleep(FORGET_EVERY)
            since += FORGET_EVERY
            try:
                await self.forget_processed()
                if self._postgres and since >= TAKE_OVER_EVERY:
                    since = 0.0
                    await asyncio.get_running_loop().run_in_executor(self._thread, self._hold)
                    await self.take_over(application)
            except Exception:  # the database is away: try again next time round
                log.warning("inbox upkeep failed", exc_info=True)


def _parse(body: str, application: Application) -> Update | None:  # type: ignore[type-arg]
    try:
        data: Any = json.loads(body)
        return Update.de_json(data, application.bot)
    except Exception:  # keep() stores only what parsed: not expected
        return None


class ForgetWhenProcessed(SimpleUpdateProcessor):
    """python-telegram-bot's concurrent processing (as concurrent_updates(True)), telling the
    inbox when each update is done with. An update cut off by a stop keeps its row, for the
    next start or another process to take over."""

    def __init__(self, inbox: Inbox, max_concurrent_updates: int = 256) -> None:
        super().__init__(max_concurrent_updates)
        self.inbox = inbox

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        cut_off = False
        try:
            await coroutine
        except asyncio.CancelledError:
            cut_off = True
            raise
        finally:
            if not cut_off and isinstance(update, Update):
                self.inbox.processed(update.update_id)
