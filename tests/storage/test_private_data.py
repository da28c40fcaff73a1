"""What the database leaves behind for others to read: a failing statement's error (and so its
log line) never carries the statement's parameters, and a new SQLite file is the owner's only."""

from __future__ import annotations

import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import bindparam, insert
from sqlalchemy.exc import DBAPIError

from storage.db import make_engine, transaction
from storage.models import Answer
from storage.prepared import Prepared
from tests.conftest import Database

# A person's words; the NUL byte is what PostgreSQL refuses (a DataError), and the missing
# invitation is what both databases refuse (an IntegrityError).
WORDS = "my landlord at 12 Mill Lane\x00 ignores me"
ANSWER = {
    "invitation_id": 999_999,
    "question_id": 999_999,
    "text": WORDS,
    "skipped": False,
    "answered_at": datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
}


@pytest.mark.parametrize("path", ["core", "prepared"])
def test_a_failing_statements_error_carries_no_parameters(db: Database, path: str) -> None:
    statement = insert(Answer.__table__).values({k: bindparam(k) for k in ANSWER})
    with pytest.raises(DBAPIError) as failure, transaction(db.sessions) as connection:
        if path == "core":
            connection.execute(statement, ANSWER)
        else:
            Prepared(statement).run(connection, ANSWER)
    shown = str(failure.value)
    assert "Mill Lane" not in shown and "landlord" not in shown, shown
    assert "hidden" in shown  # SQLAlchemy says the parameters were left out


def test_a_new_sqlite_database_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE said (words TEXT)")
        connection.exec_driver_sql("INSERT INTO said VALUES ('private')")
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        modes = {file.name: stat.S_IMODE(file.stat().st_mode) for file in files}
    engine.dispose()
    assert modes == {file.name: 0o600 for file in files}
