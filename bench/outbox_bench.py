"""Outbox throughput: a round of N recipients drained by the real Sender against the Bot API
stand-in running in its own process (so the server's CPU is not the sender's).

    .venv/bin/python bench/outbox_bench.py                 # 5,000 recipients (about 4 minutes)
    .venv/bin/python bench/outbox_bench.py --recipients 1000

Run 1, Telegram's limits on (stand-in flood control: 30/s overall, 1/s per chat): the pace
achieved against settings.sending.rate_per_second (25/s), and the 429s the stand-in answered.
Run 2, limits off and the pace set very high: the most messages per second the pipeline
(claim, send over HTTP through bot.telegram.client, record results in SQLite) can push on
this machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.kernel.clock import SystemClock
from bot.kernel.config import TelegramSettings, load_settings
from bot.kernel.render import Renderer
from bot.rounds.events import run_due_events
from bot.rounds.planning import schedule_once
from bot.rounds.services import Services
from bot.telegram.client import make_bot
from bot.telegram.sender import Sender
from storage import migrate
from storage.db import make_engine, make_session_factory, session_scope
from tests.support import factories

TOKEN = "7000000001:BENCH-token"


def start_standin() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "standin", "--token", TOKEN, "--lifetime", "900"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip().rsplit(" ", 1)[-1]
    return proc, url


def side(client: httpx.Client, action: str, **body: object) -> object:
    response = client.post(f"/_standin/{action}", json=body)
    response.raise_for_status()
    return response.json()["result"]


def prepare(folder: Path, recipients: int, client: httpx.Client, first_id: int) -> str:
    url = f"sqlite:///{folder / f'bench-{first_id}.sqlite3'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    sessions = make_session_factory(engine)
    settings = load_settings(None)
    now = datetime.now(UTC)
    with session_scope(sessions) as s:
        consultation = factories.consultation(s)
        org = factories.organisation(s, f"Org {first_id}", area="north")
        for n in range(recipients):
            factories.participant(s, first_id + n, organisation=org)
        schedule_once(
            s,
            consultation,
            audience={"who": "everyone"},
            opens_at=now,
            open_for=timedelta(days=3),
            remind_before=[],
        )
    for n in range(recipients):
        side(client, "register_chat", chat_id=first_id + n)
    renderer = Renderer(settings.paths.templates, zone=settings.zone)
    services = Services(renderer, "Bench", max_rounds_per_period=10**6)
    run_due_events(sessions, now=now, services=services)
    engine.dispose()
    return url


async def drain(url: str, base: str, *, rate: float, batch: int) -> tuple[int, float]:
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    telegram = TelegramSettings(
        base_url=f"{base}/bot", base_file_url=f"{base}/file/bot", request_timeout=30
    )
    bot = make_bot(TOKEN, telegram)
    sender = Sender(
        sessions,
        bot,
        clock=SystemClock(),
        rate=rate,
        per_chat_interval=1.0,
        batch_size=batch,
        concurrency=None if rate < 1000 else 16,
        poll_interval=0.05,
    )
    async with bot:
        started = time.perf_counter()
        await sender.run(until_idle=True)
        elapsed = time.perf_counter() - started
    engine.dispose()
    return sender.stats.sent, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=load_settings(None).sending.rate_per_second)
    parser.add_argument("--fast-recipients", type=int, default=None)
    args = parser.parse_args()
    fast_n = args.fast_recipients or args.recipients
    proc, base = start_standin()
    try:
        with (
            httpx.Client(base_url=base, timeout=30) as client,
            tempfile.TemporaryDirectory() as tmp,
        ):
            folder = Path(tmp)
            limited_db = prepare(folder, args.recipients, client, 100_000)
            side(client, "flood_limits", enabled=True)
            side(client, "reset_stats")
            sent, elapsed = asyncio.run(drain(limited_db, base, rate=args.rate, batch=50))
            stats = side(client, "stats")
            assert isinstance(stats, dict)
            achieved = sent / elapsed
            print(
                f"limits on : {sent:,} sent in {elapsed:.1f} s = {achieved:.2f} msg/s "
                f"against a pace of {args.rate:g}/s ({achieved / args.rate:.1%}); "
                f"429s: {stats['responses_429']}"
            )

            fast_db = prepare(folder, fast_n, client, 200_000)
            side(client, "flood_limits", enabled=False)
            side(client, "reset_stats")
            sent, elapsed = asyncio.run(drain(fast_db, base, rate=100_000, batch=500))
            stats = side(client, "stats")
            assert isinstance(stats, dict)
            print(
                f"limits off: {sent:,} sent in {elapsed:.1f} s = {sent / elapsed:,.0f} msg/s "
                f"(pace 100,000/s, batch 500, {os.cpu_count()} CPUs); "
                f"stand-in counted {stats['messages_sent']:,}"
            )
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
