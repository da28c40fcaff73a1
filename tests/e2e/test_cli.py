"""The consultbot command as an admin meets it: help, exit codes, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Database
from tests.support.cli_run import consultbot


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = consultbot("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("run", "db", "roles"):
        assert command in result.stdout
    for sub in (["db", "--help"], ["roles", "--help"], ["run", "--help"]):
        assert consultbot(*sub, cwd=tmp_path).returncode == 0


def test_run_without_token_exits_with_one_line(tmp_path: Path) -> None:
    result = consultbot("run", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "CONSULTBOT_TOKEN" in lines[0]
    assert "Traceback" not in result.stderr


def test_unreachable_database_never_shows_the_password(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        '[database]\nurl = "postgresql://postgres:hunter2@127.0.0.1:1/nothing"\n'
    )
    result = consultbot("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 3
    assert "cannot reach the database" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1


def test_malformed_config_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("[privacy\n")
    result = consultbot("db", "upgrade", cwd=tmp_path)
    assert result.returncode == 2
    assert "not valid TOML" in result.stderr


def test_upgrade_and_roles_on_a_real_database(db: Database, tmp_path: Path) -> None:
    env = {"CONSULTBOT_DATABASE__URL": db.url}
    first = consultbot("db", "upgrade", cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert "nothing to do" in first.stdout  # the fixture already migrated it
    assert consultbot("db", "current", cwd=tmp_path, env=env).returncode == 0

    granted = consultbot("roles", "grant", "4242", "coordinator", cwd=tmp_path, env=env)
    assert granted.returncode == 0, granted.stderr
    listed = consultbot("roles", "list", cwd=tmp_path, env=env)
    assert "4242" in listed.stdout and "coordinator" in listed.stdout
    assert consultbot("roles", "revoke", "4242", cwd=tmp_path, env=env).returncode == 0
    again = consultbot("roles", "revoke", "4242", cwd=tmp_path, env=env)
    assert again.returncode == 1
    assert "no role" in again.stderr
    bad = consultbot("roles", "grant", "4242", "emperor", cwd=tmp_path, env=env)
    assert bad.returncode == 2


@pytest.mark.parametrize("command", [["db", "upgrade"], ["roles", "list"]])
def test_fresh_sqlite_default_is_created_next_to_config(tmp_path: Path, command: list[str]) -> None:
    (tmp_path / "config.toml").write_text('[partnership]\nname = "Test"\n')
    result = consultbot(*command, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "consultbot.sqlite3").exists()
