"""bot.telegram.transactions.in_transaction, which every update runs in: one transaction that
commits or rolls back whole; light work on SQLite on the event loop, anything else in a thread."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.kernel.config import load_settings
from bot.kernel.context import AppContext
from bot.telegram import transactions
from storage import migrate
from storage.db import make_engine, make_session_factory
from storage.models import ProcessedUpdate
from tests.conftest import Database
from tests.support.harness import BotHarness

MEMBER = 1201

MARKERS = ProcessedUpdate.__table__
WHEN = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def mark(update_id: int) -> object:
    def work(connection: Connection) -> int:
        connection.execute(insert(MARKERS).values(update_id=update_id, processed_at=WHEN))
        return update_id

    return work


def stored(connection: Connection) -> list[int]:
    return sorted(connection.scalars(select(MARKERS.c.update_id)))


async def test_commits_whole_or_not_at_all(ctx: AppContext) -> None:
    assert await transactions.in_transaction(ctx, mark(1)) == 1  # type: ignore[arg-type]

    def half_then_fail(connection: Connection) -> None:
        mark(2)(connection)  # type: ignore[operator]
        raise RuntimeError("the press failed after a write")

    with pytest.raises(RuntimeError):
        await transactions.in_transaction(ctx, half_then_fail)
    assert await transactions.in_transaction(ctx, mark(3)) == 3  # type: ignore[arg-type]
    assert await transactions.in_transaction(ctx, stored) == [1, 3]


async def test_no_connection_stays_checked_out(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pooled.sqlite3'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    settings = load_settings(None, database={"url": url}, partnership={"name": "Pooled"})
    ctx = AppContext(settings=settings, sessions=make_session_factory(engine))
    await transactions.in_transaction(ctx, mark(1))  # type: ignore[arg-type]
    await transactions.in_transaction(ctx, stored, heavy=True)
    assert engine.pool.checkedout() == 0
    engine.dispose()


async def test_a_stopped_bot_leaves_no_connection_checked_out(harness: BotHarness) -> None:
    await harness.say(MEMBER, "/start")
    await transactions.in_transaction(harness.ctx, stored)
    await harness.stop()
    assert harness.ctx.engine.pool.checkedout() == 0
    await harness.start()


async def test_heavy_work_runs_in_a_worker_thread_and_commits(ctx: AppContext) -> None:
    loop_thread = threading.get_ident()

    def heavy(session: Session) -> int:
        session.add(ProcessedUpdate(update_id=7, processed_at=WHEN))
        return threading.get_ident()

    assert await transactions.in_session(ctx, heavy, heavy=True) != loop_thread
    assert await transactions.in_transaction(ctx, stored) == [7]
    # Light work on SQLite stays on the event loop's thread.
    if ctx.engine.dialect.name == "sqlite":
        on = await transactions.in_transaction(ctx, lambda c: threading.get_ident())
        assert on == loop_thread


async def test_a_persons_work_that_another_process_beat_is_decided_again(
    ctx: AppContext, db: Database
) -> None:
    """Another process stores the same thing between this work's read and its write (as two
    SQLite processes can: nothing locks across them there): the unique constraint refuses the
    write, and a person's work is decided once more, seeing what the other stored; work for
    no one in particular gets the error."""
    elsewhere = make_engine(db.url)  # another process's connections
    seen: list[list[int]] = []

    def save_once(connection: Connection) -> str:
        seen.append(stored(connection))
        if seen[-1]:
            return "already saved"
        if len(seen) == 1:
            with elsewhere.begin() as other:
                other.execute(insert(MARKERS).values(update_id=5, processed_at=WHEN))
        connection.execute(insert(MARKERS).values(update_id=5, processed_at=WHEN))
        return "saved"

    try:
        assert await transactions.in_transaction(ctx, save_once, person=MEMBER) == "already saved"
        assert seen == [[], [5]]
        seen.clear()
        with elsewhere.begin() as other:
            other.execute(MARKERS.delete())
        with pytest.raises(IntegrityError):
            await transactions.in_transaction(ctx, save_once)
        assert seen == [[]]
    finally:
        elsewhere.dispose()
