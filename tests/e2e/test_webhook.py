"""Receiving updates by webhook: one worker in process, and two worker processes sharing a
port through `consultbot run`, both against the Bot API stand-in."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.app import run_worker
from bot.kernel.config import ConfigError, load_settings
from bot.kernel.context import AppContext
from bot.telegram.webhook import SECRET_HEADER, derived_secret
from standin import BotApiStandIn
from storage.db import make_engine
from storage.models import InboxUpdate
from tests.support.harness import TOKEN


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_one_worker_answers_and_refuses_strangers(
    ctx: AppContext, standin: BotApiStandIn
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/hook"
    telegram = ctx.settings.telegram
    telegram.base_url, telegram.base_file_url = standin.bot_base_url, standin.file_base_url
    telegram.webhook_url, telegram.webhook_port = url, port
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(ctx, TOKEN, secret="s3cret", stop=stop))
    try:
        standin.send_text(4001, "/start")
        hello = await standin.wait_for_message(4001, timeout=20)
        assert "invite link" in hello.text
        async with aiohttp.ClientSession() as client:
            fake = {"update_id": 1, "message": {"message_id": 1, "date": 0, "text": "/start"}}
            for headers, status in (
                ({}, 403),
                ({SECRET_HEADER: "guess"}, 403),
                ({SECRET_HEADER: "s3cret", "Content-Type": "application/json"}, 400),
            ):
                body = "not json" if status == 400 else None
                async with client.post(
                    url, json=None if body else fake, data=body, headers=headers
                ) as response:
                    assert response.status == status
    finally:
        stop.set()
        await asyncio.wait_for(worker, 20)
    assert standin.messages(4001)[-1].message_id == hello.message_id, "nothing more was sent"


async def test_two_worker_processes_share_the_port(standin: BotApiStandIn, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULTBOT_")}
    env.update(
        CONSULTBOT_TOKEN=TOKEN,
        CONSULTBOT_WEBHOOK_SECRET="shared-secret",
        CONSULTBOT_DATABASE__URL=f"sqlite:///{tmp_path / 'bot.sqlite3'}",
        CONSULTBOT_TELEGRAM__BASE_URL=standin.bot_base_url,
        CONSULTBOT_TELEGRAM__BASE_FILE_URL=standin.file_base_url,
        CONSULTBOT_TELEGRAM__WEBHOOK_URL=f"http://127.0.0.1:{port}/tg",
        CONSULTBOT_TELEGRAM__WEBHOOK_PORT=str(port),
        CONSULTBOT_TELEGRAM__WORKERS="2",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from bot.cli import main; main()",
        "run",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    lines: list[str] = []

    async def until_ready() -> None:
        assert process.stdout is not None
        while sum("receiving updates on" in line for line in lines) < 2:
            raw = await process.stdout.readline()
            if not raw:
                raise AssertionError("consultbot run ended early:\n" + "\n".join(lines))
            lines.append(raw.decode())

    try:
        await asyncio.wait_for(until_ready(), 120)  # spawning takes seconds on a busy machine
        users = range(5001, 5021)
        for user in users:
            standin.send_text(user, "/start")
        for user in users:
            await standin.wait_for_message(user, after=0, timeout=30)
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = "".join(lines) + output.decode()
    assert process.returncode == 0, log
    assert "worker 1 of 2" in log and "worker 2 of 2" in log
    assert TOKEN not in log and "shared-secret" not in log
    engine = make_engine(f"sqlite:///{tmp_path / 'bot.sqlite3'}")
    with engine.connect() as connection:
        left = connection.scalar(select(func.count()).select_from(InboxUpdate))
    engine.dispose()
    assert left == 0, "a clean stop processes what it acknowledged and forgets it"


def test_the_webhook_secret_is_refused_in_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('webhook_secret = "abc"\n')
    with pytest.raises(ConfigError, match="CONSULTBOT_WEBHOOK_SECRET"):
        load_settings(path)
    path.write_text('[telegram]\nwebhook_url = "ftp://example.org"\n')
    with pytest.raises(ConfigError, match="webhook_url"):
        load_settings(path)


def test_the_secret_comes_from_the_token_unless_one_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every host with the token arrives at one secret Telegram accepts; the token is not in
    it; a given secret must be one Telegram accepts too (checked at start, never echoed)."""
    secret = derived_secret(TOKEN)
    assert secret == derived_secret(TOKEN) != derived_secret(TOKEN + "x")
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret)
    assert TOKEN.split(":")[1] not in secret
    monkeypatch.setenv("CONSULTBOT_WEBHOOK_SECRET", "no spaces allowed")
    with pytest.raises(ConfigError, match="webhook_secret") as refused:
        load_settings(None)
    assert "no spaces" not in str(refused.value)
    monkeypatch.setenv("CONSULTBOT_WEBHOOK_SECRET", "A-z_09")
    secret_given = load_settings(None).webhook_secret
    assert secret_given is not None and secret_given.get_secret_value() == "A-z_09"
