"""What SQLite keeps of deleted rows: secure_delete zeroes them in the file, and after an
erasure the write-ahead log is checkpointed and truncated (storage.db.after_erasure)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, insert, select

from storage.db import after_erasure
from storage.models import Organisation
from tests.conftest import Database

WORDS = b"Our marmalade stall for the quiet beekeepers"


def _files(db: Database) -> dict[str, bytes]:
    path = Path(db.engine.url.database or "")
    return {p.name: p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists()}


def test_a_deleted_row_leaves_no_copy_in_the_file_or_its_log(db: Database) -> None:
    if db.backend != "sqlite":
        assert after_erasure(db.engine), "nothing to do on PostgreSQL"
        return
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA secure_delete").scalar() == 1
    with db.engine.begin() as connection:
        connection.execute(insert(Organisation).values(name=WORDS.decode()))
    assert any(WORDS in content for content in _files(db).values())
    with db.engine.begin() as connection:
        connection.execute(delete(Organisation))
    # Deleted, but the log still holds the page as it was when the row was written.
    assert any(WORDS in content for content in _files(db).values())
    assert after_erasure(db.engine)
    files = _files(db)
    assert not any(WORDS in content for content in files.values()), list(files)
    assert files.get("consultbot.sqlite3-wal", b"") == b"", "the log is truncated"


def test_a_reader_holding_the_log_is_waited_for_briefly_then_reported(db: Database) -> None:
    if db.backend != "sqlite":
        pytest.skip("SQLite's write-ahead log")
    with db.engine.begin() as connection:
        connection.execute(insert(Organisation).values(name=WORDS.decode()))
    reader = db.engine.raw_connection()
    try:
        cursor = reader.cursor()
        cursor.execute("BEGIN")
        cursor.execute("SELECT count(*) FROM organisations").fetchall()  # holds its snapshot
        with db.engine.begin() as connection:
            connection.execute(delete(Organisation))
        assert not after_erasure(db.engine), "a reader on an older snapshot keeps the log"
        reader.rollback()
    finally:
        reader.close()
    assert after_erasure(db.engine)
    assert not any(WORDS in content for content in _files(db).values())
    with db.engine.connect() as connection:
        assert connection.execute(select(Organisation)).first() is None
