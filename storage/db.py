"""Engines and sessions. One session per update or job; never shared across tasks."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SessionFactory = sessionmaker[Session]


def normalise_url(url: str) -> str:
    """Pick our own driver for plain URLs, so deployments can write `postgresql://...`."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def safe_url(url: str) -> str:
    """The URL as it may appear in logs and error messages: never with its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a malformed URL must still not leak what was typed
        return "<malformed database URL>"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the sender and the handlers read while one writes; the busy timeout makes a
    # second writer wait instead of failing; SQLite leaves foreign keys off unless asked.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # A deleted row (a /forget, a purged payload) is overwritten with zeros, in its page and in
    # pages freed by it, instead of lingering in free space where a copy of the file shows it.
    cursor.execute("PRAGMA secure_delete=ON")
    # A commit that crosses the auto-checkpoint size copies the WAL into the database file
    # and syncs it, inside that commit, on the bot's event loop: replies stalled for 100 ms
    # and more under load. The bot checkpoints in the background instead (checkpoint()); this
    # is the backstop for processes that don't.
    cursor.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
    cursor.close()


AUTOCHECKPOINT_PAGES = 20_000  # about 80 MB of WAL with 4 KiB pages
BUSY_TIMEOUT_MS = 30_000


def checkpoint(engine: Engine) -> None:
    """Copy SQLite's write-ahead log into the database file without blocking writers (a
    PASSIVE checkpoint). Blocking I/O: run it in a thread. Nothing to do on PostgreSQL."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")


ERASURE_CHECKPOINT_TRIES = 10
ERASURE_CHECKPOINT_PAUSE = 0.05  # seconds between tries
ERASURE_BUSY_TIMEOUT_MS = 100


def after_erasure(engine: Engine) -> bool:
    """Once an erasure has committed, leave no copy of what it deleted in SQLite's write-ahead
    log: copy the log into the database file (where secure_delete has zeroed the deleted rows)
    and truncate it to nothing. Must run outside any transaction. A reader that still holds an
    older snapshot keeps the log in use: retry briefly; True when the log was truncated.

    The wait per try is short: a TRUNCATE checkpoint holds the write lock while it waits for
    readers, and the bot's own writes wait behind it. Blocking I/O: run it in a thread.
    Nothing to do on PostgreSQL (the README says what it keeps until VACUUM)."""
    if engine.dialect.name != "sqlite":
        return True
    with engine.connect() as connection:
        connection.exec_driver_sql(f"PRAGMA busy_timeout={ERASURE_BUSY_TIMEOUT_MS}")
        try:
            for attempt in range(ERASURE_CHECKPOINT_TRIES):
                if attempt:
                    time.sleep(ERASURE_CHECKPOINT_PAUSE)
                row = connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
                if row[0] == 0:  # (busy, log frames, frames checkpointed)
                    return True
        finally:
            connection.exec_driver_sql(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return False


def _create_private(path: str | None) -> None:
    """Create a new SQLite file readable by its owner only: it holds people's words. SQLite
    gives the -wal and -shm files it makes beside it the database file's mode."""
    if path and path != ":memory:" and not path.startswith("file:"):
        with suppress(OSError):  # it exists, or SQLite will say what is wrong with the path
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))


def make_engine(url: str, *, echo: bool = False) -> Engine:
    url = normalise_url(url)
    # An error's text, and so every log line about it, must never carry a statement's
    # parameters: they are people's answers.
    if url.startswith("sqlite"):
        _create_private(make_url(url).database)
        engine = create_engine(
            url, echo=echo, hide_parameters=True, connect_args={"check_same_thread": False}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        url, echo=echo, hide_parameters=True, pool_pre_ping=True, pool_size=5, max_overflow=5
    )


def engine_of(sessions: SessionFactory) -> Engine:
    """The engine make_session_factory bound `sessions` to."""
    engine = sessions.kw["bind"]
    assert isinstance(engine, Engine)
    return engine


def make_session_factory(engine: Engine) -> SessionFactory:
    # expire_on_commit=False: services return ORM objects that handlers read after commit.
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: SessionFactory) -> Iterator[Connection]:
    """A Core transaction on the sessions' engine: commit on success, roll back on any error.
    For the busiest paths, which need no ORM: a Session costs ~50 us more per transaction
    than the statements of a button press themselves (bench/press_cost.py)."""
    with engine_of(factory).begin() as connection:
        yield connection


@contextmanager
def session_in(factory: SessionFactory, connection: Connection) -> Iterator[Session]:
    """An ORM session inside `connection`'s transaction (see transaction()): its work is
    flushed on success and committed by the transaction's owner; an error rolls the whole
    transaction back."""
    session = factory(bind=connection, join_transaction_mode="rollback_only")
    try:
        yield session
        session.commit()  # flushes; the owner of the transaction commits it
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def session_scope(factory: SessionFactory) -> Iterator[Session]:
    """A unit of work: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
