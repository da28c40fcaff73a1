"""Files `consultbot` writes hold people's words: created readable by their owner only (0600)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from storage.db import session_scope
from tests.conftest import Database
from tests.support import factories
from tests.support.cli_run import consultbot
from tests.support.digest_fixtures import closed_round


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_sqlite_database_the_bot_creates_is_the_owners_only(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[partnership]\nname = "Test"\n')
    result = consultbot("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = sorted(tmp_path.glob("consultbot.sqlite3*"))
    assert tmp_path / "consultbot.sqlite3" in written
    assert {file.name: _mode(file) for file in written} == {file.name: 0o600 for file in written}


@pytest.mark.parametrize("fmt", ["html", "md", "csv", "tg"])
def test_digest_files_are_the_owners_only(db: Database, tmp_path: Path, fmt: str) -> None:
    with session_scope(db.sessions) as session:
        round_id = closed_round(session, factories.consultation(session)).id
    env = {"CONSULTBOT_DATABASE__URL": db.url}
    existing = tmp_path / f"digest.{fmt}"
    existing.write_text("an older digest, once world-readable")
    existing.chmod(0o644)
    fresh = tmp_path / "new" / f"digest.{fmt}"
    for out in (existing, fresh):
        args = ("digest", "--round", str(round_id), "--format", fmt, "--out", str(out))
        result = consultbot(*args, cwd=tmp_path, env=env)
        assert result.returncode == 0, result.stderr
        assert _mode(out) == 0o600, out
