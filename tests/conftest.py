"""Shared fixtures: a real database (SQLite, and PostgreSQL when CONSULTBOT_TEST_POSTGRES_URL is
set), settings, and an application context.

Every test that takes `db` runs once per backend. PostgreSQL tests run against the database in
CONSULTBOT_TEST_POSTGRES_URL: the schema is migrated once per test session and every table is
truncated before each test; SQLite tests copy a freshly migrated template file.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, make_url, text

from bot.kernel.clock import FakeClock
from bot.kernel.config import Settings, load_settings
from bot.kernel.context import AppContext
from standin import BotApiStandIn
from storage import migrate
from storage.db import SessionFactory, make_engine, make_session_factory
from storage.models import Base
from tests.support.harness import BotHarness

POSTGRES_URL_ENV = "CONSULTBOT_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", "postgresql"]


def skip_postgres() -> None:
    """Skip a PostgreSQL variant locally; in CI (CONSULTBOT_REQUIRE_POSTGRES) fail instead."""
    if os.environ.get("CONSULTBOT_REQUIRE_POSTGRES"):
        pytest.fail(f"{POSTGRES_URL_ENV} is not set but CONSULTBOT_REQUIRE_POSTGRES is")
    pytest.skip(f"set {POSTGRES_URL_ENV} to run the PostgreSQL variant")


@dataclass
class Database:
    backend: str
    url: str
    engine: Engine
    sessions: SessionFactory


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    with engine.connect() as connection:
        # Fold the WAL back in so a plain file copy is the whole database.
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def _worker_database(url: str) -> str:
    """Under pytest-xdist (make test runs one worker per core) each worker gets a database of
    its own beside the one named, since every test truncates every table."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    base = make_url(url)
    name = f"{base.database}_{worker}"
    admin = make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return base.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Engine | None]:
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        yield None
        return
    own = _worker_database(url)
    engine = make_engine(own)
    with engine.begin() as connection:
        # Start from nothing, whatever an earlier run left behind.
        connection.execute(text("DROP SCHEMA public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    migrate.upgrade(engine)
    yield engine
    engine.dispose()
    if own != url:
        admin = make_engine(url).execution_options(isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            database = make_url(own).database
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        admin.dispose()


def _truncate_all(engine: Engine) -> None:
    tables = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=BACKENDS)
def db(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    postgres_engine: Engine | None,
) -> Iterator[Database]:
    if request.param == "sqlite":
        path = tmp_path / "consultbot.sqlite3"
        shutil.copy(sqlite_template, path)
        url = f"sqlite:///{path}"
        engine = make_engine(url)
        yield Database("sqlite", url, engine, make_session_factory(engine))
        engine.dispose()
        return
    yield _postgres_database(postgres_engine)


def _postgres_database(engine: Engine | None) -> Database:
    if engine is None:
        skip_postgres()
    assert engine is not None
    _truncate_all(engine)
    url = engine.url.render_as_string(hide_password=False)
    return Database("postgresql", url, engine, make_session_factory(engine))


@pytest.fixture
def postgres_db(postgres_engine: Engine | None) -> Database:
    """`db` for tests of what only PostgreSQL does (several hosts on one database)."""
    return _postgres_database(postgres_engine)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(db: Database, request: pytest.FixtureRequest) -> Settings:
    """The deployment: English only, or the languages a `languages` mark gives."""
    mark = request.node.get_closest_marker("languages")
    return load_settings(
        None,
        database={"url": db.url},
        partnership={
            "name": "Riverside Partnership",
            "admins": [900],
            "languages": list(mark.args) if mark else ["en"],
        },
    )


@pytest.fixture
def ctx(settings: Settings, db: Database, clock: FakeClock) -> AppContext:
    return AppContext(settings=settings, sessions=db.sessions, clock=clock)


@pytest.fixture
async def standin() -> AsyncIterator[BotApiStandIn]:
    from tests.support.harness import TOKEN

    async with BotApiStandIn(token=TOKEN) as server:
        yield server


@pytest.fixture
async def harness(ctx: AppContext, standin: BotApiStandIn) -> AsyncIterator[BotHarness]:
    bot = BotHarness(ctx, standin)
    await bot.start()
    try:
        yield bot
    finally:
        await bot.stop()
