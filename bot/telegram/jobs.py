"""The bot's running machinery beside the handlers: the one repeating job that runs what is
due (opening, reminding and closing rounds) and the outbox sender task. PTB wiring, like
bot.app, which schedules the job; handlers call tick_now/wake_sender after a coordinator acts."""

from __future__ import annotations

import asyncio
import gc
import logging
from datetime import datetime, timedelta

from sqlalchemy import delete
from telegram.ext import Application, ContextTypes

from bot.kernel.context import AppContext
from bot.rounds.events import run_due_events
from bot.rounds.services import round_services
from bot.telegram.client import ConsultBot
from bot.telegram.context import app_context
from bot.telegram.sender import Sender, make_sender
from storage.db import SessionFactory, checkpoint, transaction
from storage.models import InboxUpdate, ProcessedUpdate

log = logging.getLogger(__name__)


_heap_settled = False


def settle_heap() -> None:
    """Once per process, after start-up: collect, then move every object alive now (modules,
    templates, settings, SQLAlchemy's and PTB's own tables) out of the garbage collector's
    sight with gc.freeze(), and run young collections every 5,000 net new objects, not 700
    (a press makes thousands of short-lived objects that reference counting frees anyway).

    Earns its place: bench/participant_bench.py --participants 200 --rates 360, run back to
    back with and without it, bot CPU per press 0.71 -> 0.95 ms and 0.89 -> 1.06 ms (+19 to
    +34%) and closed-loop answers/s 1,099 -> 643 without it."""
    global _heap_settled
    if _heap_settled:
        return
    _heap_settled = True
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, *gc.get_threshold()[1:])


YOUNG_COLLECTION_EVERY = 5_000


# Telegram keeps an undelivered update for at most 24 hours, so a duplicate can only come
# within that; the duplicate guard's markers are kept for twice as long, then deleted.
DUPLICATE_WINDOW = timedelta(days=2)
PRUNE_EVERY = timedelta(hours=1)


def forget_old_updates(sessions: SessionFactory, now: datetime) -> int:
    """Delete the duplicate guard's markers of updates older than DUPLICATE_WINDOW; how many.
    Inbox rows as old go too: processed or not, Telegram itself would have given up on them
    (bot.telegram.inbox keeps them only while they are in hand)."""
    processed_at = ProcessedUpdate.__table__.c.processed_at
    received_at = InboxUpdate.__table__.c.received_at
    with transaction(sessions) as connection:
        result = connection.execute(
            delete(ProcessedUpdate.__table__).where(processed_at < now - DUPLICATE_WINDOW)
        )
        connection.execute(
            delete(InboxUpdate.__table__).where(received_at < now - DUPLICATE_WINDOW)
        )
        return int(result.rowcount or 0)


async def prune_updates(ctx: AppContext) -> None:
    """At most once per PRUNE_EVERY, in a thread: a delete is a write, and on SQLite the
    presses' writes wait for it."""
    now = ctx.clock.now()
    last = ctx.updates_pruned_at
    if last is not None and now - last < PRUNE_EVERY:
        return
    ctx.updates_pruned_at = now
    removed = await asyncio.to_thread(forget_old_updates, ctx.sessions, now)
    if removed:
        log.info("forgot %d processed update ids older than %s", removed, DUPLICATE_WINDOW)


async def tick_now(ctx: AppContext) -> list[tuple[int, str, str]]:
    """Run what is due, then wake the sender. Used by the job and after a coordinator acts."""
    done = await asyncio.to_thread(
        run_due_events, ctx.sessions, now=ctx.clock.now(), services=round_services(ctx)
    )
    wake_sender(ctx)
    return done


def wake_sender(ctx: AppContext) -> None:
    if ctx.sender is not None:
        ctx.sender.wake()


async def tick_job(context: ContextTypes.DEFAULT_TYPE) -> None:
    """The one repeating job: make sure the sender runs, then run what is due."""
    ctx = app_context(context)
    application = context.application
    if ctx.sender is None:
        start_sender(application, ctx)
    try:
        done = await tick_now(ctx)
    except Exception:
        log.exception("rounds tick failed")
        return
    for ident, kind, note in done:
        log.info("event %s (%s): %s", ident, kind, note)
    try:
        await prune_updates(ctx)
    except Exception:
        log.exception("could not forget old processed update ids")
    # Off the event loop: see storage.db.AUTOCHECKPOINT_PAGES.
    await asyncio.to_thread(checkpoint, ctx.engine)


def start_sender(application: Application, ctx: AppContext) -> Sender:  # type: ignore[type-arg]
    """The outbox sender on the application's bot (and so its HTTP session)."""
    bot = application.bot
    assert isinstance(bot, ConsultBot)
    sender = make_sender(
        ctx.sessions,
        bot,
        ctx.settings,
        clock=ctx.clock,
        poll_interval=min(1.0, ctx.settings.rounds.tick_seconds),
    )
    ctx.sender = sender
    application.create_task(_supervise(application, ctx, sender), name="outbox-sender")
    return sender


async def _supervise(application: Application, ctx: AppContext, sender: Sender) -> None:  # type: ignore[type-arg]
    """Run the sender while the application runs; stop it when the application stops (which
    waits for this task before it closes the bot's HTTP session)."""
    task = asyncio.create_task(sender.run())
    while application.running and not task.done():
        await asyncio.sleep(0.2)
    sender.stop()
    await task
    ctx.sender = None


def schedule_jobs(application: Application, ctx: AppContext) -> None:  # type: ignore[type-arg]
    if application.job_queue is None:
        log.warning("no job queue: install python-telegram-bot[job-queue]; rounds will not run")
        return
    application.job_queue.run_repeating(
        tick_job, interval=ctx.settings.rounds.tick_seconds, first=0.0, name="rounds-tick"
    )
