"""What every `consultbot` command shares: the settings and database it works on, and the
error a person at the keyboard can fix (one line on stderr, never a traceback)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from bot.kernel.config import Settings, load_settings
from bot.kernel.logs import setup_logging
from storage import migrate
from storage.db import SessionFactory, make_engine, make_session_factory, safe_url

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_DATABASE = 3


class UserError(Exception):
    """Something the person at the keyboard can fix; printed as one line."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class CliState:
    config_path: Path | None
    log_level: str | None = None
    _settings: Settings | None = None
    _engine: Engine | None = None
    _sessions: SessionFactory | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = connect(self.settings.database_url)
        return self._engine

    @property
    def sessions(self) -> SessionFactory:
        if self._sessions is None:
            self._sessions = make_session_factory(self.engine)
        return self._sessions

    def ready_sessions(self) -> SessionFactory:
        """Sessions on a database that is migrated to the newest schema."""
        migrate.upgrade(self.engine)
        return self.sessions

    def setup_logging(self, token: str | None = None) -> None:
        """Logging at --log-level (or the settings' level), never showing `token`."""
        setup_logging(self.log_level or self.settings.log_level, token)


def connect(url: str) -> Engine:
    """An engine whose database answered, or one clear line that says which one did not."""
    try:
        engine = make_engine(url)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except (OperationalError, DBAPIError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise UserError(
            f"cannot reach the database {safe_url(url)}: {reason}", EXIT_DATABASE
        ) from None
    except Exception as exc:  # e.g. an unknown driver name in the URL
        raise UserError(f"bad database URL {safe_url(url)}: {exc}", EXIT_USAGE) from None
    return engine


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliState)
    return obj
