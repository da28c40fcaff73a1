"""The one transaction runner every handler uses, and the duplicate-update check that runs in it.

One session (or Core connection) per update, never shared across tasks; each person's updates
are decided one at a time, in one process and across processes and hosts."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TypeVar

from sqlalchemy import BigInteger, Connection, bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from telegram import Update
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.kernel import i18n
from bot.kernel.context import AppContext
from bot.telegram.context import app_context
from storage.db import session_in, transaction
from storage.models import Participant, ParticipantStatus, ProcessedUpdate
from storage.prepared import Prepared

log = logging.getLogger(__name__)


PARTICIPANTS = Participant.__table__


# Built once: every update runs these, and building a statement costs as much as running it.
_MARK_PROCESSED = Prepared(
    insert(ProcessedUpdate.__table__).values(
        update_id=bindparam("update_id"), processed_at=bindparam("now")
    )
)


_STATUS = Prepared(
    select(PARTICIPANTS.c.status, PARTICIPANTS.c.language).where(
        PARTICIPANTS.c.telegram_user_id == bindparam("user")
    )
)


R = TypeVar("R")
AgainHandler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]


_PEOPLE_BUSY: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()


def _one_at_a_time(user_id: int) -> asyncio.Lock:
    """A lock per person in this process, so that two presses of theirs (a double tap, two
    buttons in quick succession) are decided one after the other even when in_transaction
    runs them in threads: the second then sees what the first stored. Other people are not
    held up."""
    lock = _PEOPLE_BUSY.get(user_id)
    if lock is None:
        lock = _PEOPLE_BUSY[user_id] = asyncio.Lock()
    return lock


# The same per person across processes and hosts on PostgreSQL: a transaction-level advisory
# lock, taken first in the transaction and let go by its commit or rollback. Its key is the
# Telegram id (52 bits at most) under a tag in the top byte, clear of the outbox sender's
# small key (bot.outbox.claims).
_PERSON_TAG = 0x50 << 56
_PERSON_ID_BITS = (1 << 56) - 1
_PERSON_LOCK = Prepared(select(func.pg_advisory_xact_lock(bindparam("key", type_=BigInteger))))


def person_lock_key(user_id: int) -> int:
    """The advisory-lock key of one person's transactions."""
    return _PERSON_TAG | (user_id & _PERSON_ID_BITS)


async def in_transaction(
    ctx: AppContext,
    work: Callable[[Connection], R],
    *,
    heavy: bool = False,
    person: int | None = None,
    executor: Executor | None = None,
) -> R:
    """Run `work` in one Core transaction: commit when it returns, roll back if it raises.

    Light work (a press, a command; statements that take microseconds): on SQLite it runs
    right here on the event loop: one writer at a time is all SQLite allows, so a thread would
    only queue behind the write lock. On a server database every statement waits for a round
    trip, which on the event loop held up every other update: there it runs in a worker
    thread (bench/participant_bench.py --db).

    `heavy=True` for work that takes long on any database (compiling a digest, drawing
    charts, coding many texts): it runs in a worker thread, on SQLite too, so the event loop
    keeps answering. On SQLite the write lock is held from the work's first write to its
    commit and the loop's writes wait for it: read and compute first, write last.

    `person`: the Telegram id whose update this decides. Their work runs one at a time: in
    this process by an asyncio lock, and on PostgreSQL across every process and host by an
    advisory lock, so a double tap that a load balancer splits over two hosts is decided as
    on one (the second press reads what the first stored: "Already saved"). Where no lock
    spans processes (SQLite's separate processes read outside a transaction), the loser of
    such a race meets a unique constraint (IntegrityError); its work is then decided once
    more, sees what the other stored and answers as the second press does.

    `executor`: the threads to use instead of asyncio's default ones, for work that must not
    queue behind updates being processed (the inbox's, which Telegram's 200 waits for)."""
    postgres = ctx.engine.dialect.name == "postgresql"
    key = {"key": person_lock_key(person)} if person is not None and postgres else None

    def run() -> tuple[R, str | None]:
        with work_transaction(ctx) as connection:
            if key is not None:
                _PERSON_LOCK.all(connection, key)  # waits for their other transactions
            # The language the work read or chose, for what the update says after it: a
            # worker thread's context variables do not come back on their own.
            return work(connection), i18n.chosen()

    if person is None:
        result, language = await _run(ctx, run, heavy, executor)
    else:
        async with _one_at_a_time(person):
            try:
                result, language = await _run(ctx, run, heavy, executor)
            except IntegrityError:
                log.info("person %s: another process stored it first; deciding again", person)
                result, language = await _run(ctx, run, heavy, executor)
    i18n.use(language)
    return result


async def _run(ctx: AppContext, run: Callable[[], R], heavy: bool, executor: Executor | None) -> R:
    """`run` on the event loop (light work on SQLite) or in a worker thread."""
    if _on_sqlite(ctx) and not heavy:
        return run()
    if executor is not None:
        # run_in_executor, unlike to_thread, does not carry the update's language across.
        in_context = contextvars.copy_context().run
        return await asyncio.get_running_loop().run_in_executor(executor, in_context, run)
    return await asyncio.to_thread(run)


def work_transaction(ctx: AppContext) -> AbstractContextManager[Connection]:
    """The transaction in_transaction runs its work in (a pooled connection's)."""
    return transaction(ctx.sessions)


def _on_sqlite(ctx: AppContext) -> bool:
    return ctx.engine.dialect.name == "sqlite"


async def in_session(
    ctx: AppContext,
    work: Callable[[Session], R],
    *,
    heavy: bool = False,
    person: int | None = None,
) -> R:
    """in_transaction for services that need an ORM session: one over its connection.
    `heavy` and `person` as for in_transaction."""

    def run(connection: Connection) -> R:
        with session_in(ctx.sessions, connection) as session:
            return work(session)

    return await in_transaction(ctx, run, heavy=heavy, person=person)


class DuplicateUpdate(Exception):
    """This update was processed before: Telegram delivered it again."""


_SEEN_KEY = "consultbot.seen_here"  # in application.bot_data: one per process and Application
SEEN_HERE = 20_000  # update ids remembered: minutes of a busy bot; a copy comes within seconds


def first_seen_here(context: ContextTypes.DEFAULT_TYPE, update: Update) -> bool:
    """Note that this process has begun to decide `update`; False if it had already. A copy of
    an update that was decided here is dropped: its reply is on its way, or went. A copy of one
    decided by a process that has died (Telegram delivers again what that process never
    confirmed) may have lost its reply: the person is shown where they are instead."""
    seen: dict[int, None] = context.application.bot_data.setdefault(_SEEN_KEY, {})
    if update.update_id in seen:
        return False
    seen[update.update_id] = None
    if len(seen) > SEEN_HERE:
        del seen[next(iter(seen))]  # the oldest: dicts keep insertion order
    return True


# Updates (by predicate) whose handler answers a copy decided by a process now gone.
_AGAIN: list[tuple[Callable[[Update], bool], AgainHandler]] = []


def when_delivered_again(predicate: Callable[[Update], bool], handler: AgainHandler) -> None:
    """Register `handler` for copies of updates matching `predicate` that were decided by a
    process now gone (see first_seen_here); other copies are dropped."""
    if (predicate, handler) not in _AGAIN:  # every application registers its handlers
        _AGAIN.append((predicate, handler))


# Updates that one handler claims in its own transaction (see claim_update), so that the
# busiest update there is, an answer button, costs one transaction instead of two.
_CLAIMED_BY_HANDLER: list[Callable[[Update], bool]] = []


CLAIMED_BY_HANDLER = object()  # context.participant_status while the handler has yet to read it


def claimed_by_handler(predicate: Callable[[Update], bool]) -> None:
    """Register updates whose handler calls claim_update itself; the guard leaves them be."""
    if predicate not in _CLAIMED_BY_HANDLER:  # every application registers its handlers
        _CLAIMED_BY_HANDLER.append(predicate)


def claim_update(connection: Connection, update: Update, now: datetime) -> None:
    """Mark `update` processed in the caller's transaction, as drop_duplicate_updates does for
    other updates; DuplicateUpdate if it was seen before (the caller's transaction must then
    roll back, which leaving session_scope or transaction by it does)."""
    try:
        _MARK_PROCESSED.run(connection, {"update_id": update.update_id, "now": now})
    except IntegrityError:
        raise DuplicateUpdate(update.update_id) from None


def sender_status(connection: Connection, update: Update) -> ParticipantStatus | None:
    """The sender's ParticipantStatus (None for someone who never joined); what follows in
    this update is said in their language, read with it."""
    user = update.effective_user
    if user is None:
        return None
    rows = _STATUS.all(connection, {"user": user.id})
    row = rows[0] if rows else None
    if row is not None and row[1] is not None:
        i18n.use(row[1])
    return None if row is None else row[0]  # type: ignore[no-any-return]


def speak_their_language(ctx: AppContext, update: Update) -> None:
    """Until their stored language is read: the deployment language matching Telegram's
    language_code, else the default. Set at every update, as updates may share a task."""
    user = update.effective_user
    code = user.language_code if user is not None else None
    i18n.use(i18n.best_match(code, ctx.settings.partnership.languages))


async def drop_duplicate_updates(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Telegram may deliver an update twice; the second copy must change nothing."""
    ctx = app_context(context)
    speak_their_language(ctx, update)
    if any(claims(update) for claims in _CLAIMED_BY_HANDLER):
        context.participant_status = CLAIMED_BY_HANDLER  # type: ignore[attr-defined]
        return

    def claim(connection: Connection) -> ParticipantStatus | None:
        # A plain INSERT, not an ORM add and flush: this runs for every update, and the unit
        # of work costs several times the statement itself.
        claim_update(connection, update, ctx.clock.now())
        # The stopped guard's question, asked in this transaction rather than its own (and
        # their language, read with it).
        return sender_status(connection, update)

    first_here = first_seen_here(context, update)
    try:
        context.participant_status = await in_transaction(ctx, claim)  # type: ignore[attr-defined]
    except DuplicateUpdate:
        again = next((h for p, h in _AGAIN if p(update)), None) if first_here else None
        if again is None:
            log.info("dropped duplicate update %s", update.update_id)
        else:
            log.info("update %s delivered again after a restart", update.update_id)
            await again(update, context)
        raise ApplicationHandlerStop from None
