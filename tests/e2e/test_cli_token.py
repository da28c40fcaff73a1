"""`consultbot run` with a wrong telegram.base_url or a rejected token: one line on stderr, exit
2, promptly, and the token nowhere in anything it prints or writes (issue 13, item 10)."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.kernel.logs import setup_logging
from tests.support.cli_run import consultbot

TOKEN = "987654321:LEAK-me-not-QWERTYuiop"
SECRET_PART = TOKEN.split(":")[1]


@pytest.fixture(scope="module")
def standin_url() -> Iterator[str]:
    """A Bot API stand-in in a process of its own (the bot under test blocks this one); it
    knows another token than TOKEN."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "standin", "--token", "1:the-real-one", "--lifetime", "300"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().rsplit(" ", 1)[-1].strip()
    finally:
        proc.terminate()
        proc.wait(10)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize("case", ["closed port", "404 path", "rejected token", "bad IPv6 URL"])
def test_a_wrong_bot_api_is_one_line_without_the_token(
    tmp_path: Path, standin_url: str, case: str
) -> None:
    base_url = {
        "closed port": f"http://127.0.0.1:{_closed_port()}/bot",
        "404 path": f"{standin_url}/no/such/path/bot",
        "rejected token": f"{standin_url}/bot",
        "bad IPv6 URL": "http://[::1/bot",
    }[case]
    (tmp_path / "config.toml").write_text(f'[telegram]\nbase_url = "{base_url}"\n')
    started = time.monotonic()
    result = consultbot("run", cwd=tmp_path, env={"CONSULTBOT_TOKEN": TOKEN})
    assert time.monotonic() - started < 30, "gave up promptly, no retrying"
    printed = result.stdout + result.stderr
    assert SECRET_PART not in printed, printed
    assert "Traceback" not in printed, printed
    assert result.returncode == 2, printed
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "base_url" in result.stderr or "Bot API" in result.stderr
    for written in tmp_path.rglob("*"):  # nothing it writes (a log, the database) has it either
        assert SECRET_PART.encode() not in written.read_bytes(), written


def test_a_logged_errors_text_never_shows_the_token(capsys: pytest.CaptureFixture[str]) -> None:
    """Once running, Bot API errors are logged with their tracebacks, whose texts (aiohttp's
    InvalidUrl, PTB's "token was rejected") carry the URL and so the token."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    setup_logging("INFO", TOKEN)
    try:
        raise ValueError(f"http://[::1/bot{TOKEN}/getUpdates")
    except ValueError:
        logging.getLogger("telegram.ext.Updater").exception("polling failed")
    finally:
        root.handlers[:], root.level = handlers, level
    logged = capsys.readouterr().err
    assert "polling failed" in logged and "Traceback" in logged and "<token>" in logged
    assert SECRET_PART not in logged, logged
