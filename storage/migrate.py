"""Apply Alembic migrations from code: the CLI, the bot's start-up and the tests use this."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class MigrationError(Exception):
    """A migration left the database inconsistent; nothing of it was committed."""


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _migrate(engine: Engine, step: Callable[[Config, str], None], revision: str) -> None:
    """Run `step` on one connection, in one transaction.

    SQLite alters a table by copying it, dropping the original and renaming the copy (Alembic's
    batch mode). With foreign keys enforced, the drop first deletes every row, cascading to the
    rows that refer to them (dropping `invitations` would take every answer with it), so the
    migrations run with enforcement off, and the references are checked before the commit.
    The pragma is a no-op inside a transaction: it is set before the transaction begins."""
    config = alembic_config()
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()  # ends SQLAlchemy's autobegun transaction (SQLite began none)
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                step(config, revision)
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                    if broken:
                        raise MigrationError(
                            f"migrating to {revision} would break {len(broken)} references, "
                            f"first in table {broken[0][0]}: nothing was changed"
                        )
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def upgrade(engine: Engine, revision: str = "head") -> None:
    _migrate(engine, command.upgrade, revision)


def downgrade(engine: Engine, revision: str) -> None:
    _migrate(engine, command.downgrade, revision)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def revisions_base_to_head() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]
