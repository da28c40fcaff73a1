"""bot.telegram.inbox: updates the webhook acknowledged stay in the database until processed,
and the rows a dead process leaves are taken over (and only a dead one's)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

from sqlalchemy import select
from telegram import Update
from telegram.ext import Application

from bot.kernel.clock import FakeClock
from bot.kernel.context import AppContext
from bot.telegram import jobs as runtime
from bot.telegram.inbox import Inbox
from storage.db import session_scope
from storage.models import InboxUpdate
from tests.conftest import Database
from tests.support.harness import TOKEN


def body(update_id: int) -> str:
    chat = {"id": 4000 + update_id, "type": "private"}
    message = {"message_id": 1, "date": 0, "chat": chat, "text": "/start"}
    return json.dumps({"update_id": update_id, "message": message})


def held(ctx: AppContext) -> dict[int, int]:
    """Each row's update id and owner."""
    with session_scope(ctx.sessions) as s:
        rows = s.execute(select(InboxUpdate.update_id, InboxUpdate.owner))
        return {update_id: owner for update_id, owner in rows}


def queued(application: Application) -> list[int]:  # type: ignore[type-arg]
    ids = []
    while not application.update_queue.empty():
        update = application.update_queue.get_nowait()
        assert isinstance(update, Update)
        ids.append(update.update_id)
    return ids


async def test_kept_until_processed_and_kept_once(ctx: AppContext) -> None:
    inbox = Inbox(ctx)
    await inbox.open()
    try:
        assert await inbox.keep(11, body(11))
        assert not await inbox.keep(11, body(11)), "Telegram sent it again while it waits"
        assert await inbox.keep(12, body(12))
        assert held(ctx) == {11: inbox.owner, 12: inbox.owner}
        inbox.processed(11)
        await inbox.forget_processed()
        assert held(ctx) == {12: inbox.owner}
        # Arriving together, they are stored together; one sent twice is told apart.
        together = await asyncio.gather(*(inbox.keep(i, body(i)) for i in (41, 42, 41, 12, 43)))
        assert together == [True, True, False, False, True]
        assert sorted(held(ctx)) == [12, 41, 42, 43]
    finally:
        await inbox.close()


async def test_a_dead_processs_updates_are_taken_over_a_live_ones_are_not(
    ctx: AppContext, db: Database
) -> None:
    application = Application.builder().token(TOKEN).build()
    dead, alive, starting = Inbox(ctx), Inbox(ctx), Inbox(ctx)
    for inbox in (dead, alive, starting):
        await inbox.open()
    try:
        for update_id in (23, 21):
            await dead.keep(update_id, body(update_id))
        await alive.keep(22, body(22))
        await dead.close()  # as the server does when a process dies: its owner lock goes

        taken = await starting.take_over(application, at_start=True)
        if db.backend == "postgresql":
            # The live process's lock tells it apart; its update stays with it.
            assert (taken, queued(application)) == (2, [21, 23])
            assert held(ctx) == {21: starting.owner, 22: alive.owner, 23: starting.owner}
            assert await alive.take_over(application) == 0, "nothing of a dead one is left"
        else:
            # One machine, one `consultbot run`: at start every other owner counts as dead.
            assert (taken, queued(application)) == (3, [21, 22, 23])
            assert set(held(ctx).values()) == {starting.owner}
            assert await starting.take_over(application) == 0, "only at start"
    finally:
        for inbox in (alive, starting):
            await inbox.close()


async def test_rows_older_than_the_duplicate_window_are_forgotten(
    ctx: AppContext, clock: FakeClock
) -> None:
    inbox = Inbox(ctx)
    await inbox.keep(31, body(31))
    clock.advance(runtime.DUPLICATE_WINDOW + timedelta(minutes=1))
    await inbox.keep(32, body(32))
    await runtime.prune_updates(ctx)
    assert list(held(ctx)) == [32]
