"""Participants answering at once: the real bot (PTB polling over HTTP) against the Bot API
stand-in, on a fresh SQLite file (or --db URL), beside a bare PTB echo handler.

Run: .venv/bin/python bench/participant_bench.py [--participants 200] [--db URL]

Each simulated participant presses Start, then answers every prompt by button, waiting for
the bot's next prompt before pressing again (as a person would). Printed: answers stored per
second, p50/p95 from a press to the bot's next prompt, and the same latency for an echo
handler (answer the callback, send one message) measured in the same run.

Two processes, as in production where Telegram is not inside the bot: this one runs the bot
(or the echo baseline) and the database; a child process (this file with --telegram) runs
the stand-in and plays the participants through its in-process side door, timing each press
to the bot's next prompt on the stand-in's side. The parent tells the child what to play over
stdin and reads the timings back on stdout, one JSON line per phase. The echo baseline uses
the bot's own request class and polling settings, so the ratio compares handlers, not stacks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update  # noqa: E402
from telegram.ext import (  # noqa: E402
    Application,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.aiohttp_request import AiohttpRequest  # noqa: E402
from bot.catalogue import import_consultation  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.consultations import load_consultation  # noqa: E402
from bot.context import AppContext  # noqa: E402
from bot.standin import BotApiStandIn  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import make_engine, make_session_factory, session_scope  # noqa: E402
from storage.models import Answer  # noqa: E402
from tests import factories  # noqa: E402
from tests.harness import TOKEN, BotHarness  # noqa: E402

BUTTONS_ONLY = """
id = "bench"
version = 1
title = "Bench"
intro = "Five taps."
estimated_minutes = 1
audience_hint = "everyone"
[[questions]]
id = "q1"
type = "single"
text = "One?"
options = [{ id = "a", label = "A" }, { id = "b", label = "B", codes = ["ext.funding"] }]
[[questions]]
id = "q2"
type = "scale"
text = "Two?"
scale = { min = 1, max = 5, min_label = "Low", max_label = "High" }
[[questions]]
id = "q3"
type = "yesno"
text = "Three?"
[[questions]]
id = "q4"
type = "single"
text = "Four?"
options = [{ id = "a", label = "A" }, { id = "b", label = "B" }]
[[questions]]
id = "q5"
type = "scale"
text = "Five?"
scale = { min = 1, max = 5, min_label = "Low", max_label = "High" }
"""
PRESS = {"One?": "B", "Two?": "4", "Three?": "Yes", "Four?": "A", "Five?": "2"}


USER_BASE = 10_000  # bot participants are USER_BASE + i; echo users ECHO_BASE + i
ECHO_BASE = 20_000
ECHO_PRESSES = 5


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def _key(text: str) -> str:
    lines = text.split("\n")
    return lines[1] if len(lines) > 1 else ""


# --- the Telegram side: a child process with the stand-in and the participants -------------


async def participant(standin: BotApiStandIn, user_id: int, latencies: list[float]) -> None:
    standin.send_text(user_id, "/resume")  # opens the round (the outbox's job in production)
    intro = await standin.wait_for_message(
        user_id, after=0, predicate=lambda m: "Bench" in m.text, timeout=60
    )
    message = intro
    label = "Start now"
    while True:
        cursor = standin.cursor(user_id)
        start = time.perf_counter()
        standin.press(user_id, message, label)
        message = await standin.wait_for_message(
            user_id,
            after=cursor,
            predicate=lambda m: (
                bool(m.buttons) and (_key(m.text) in PRESS or "Thank you" in m.text)
            ),
            timeout=60,
        )
        if label != "Start now":
            latencies.append(time.perf_counter() - start)
        if "Thank you" in message.text:
            return
        label = PRESS[_key(message.text)]


async def echo_user(standin: BotApiStandIn, user_id: int, latencies: list[float]) -> None:
    standin.send_text(user_id, "hi")  # the echo bot answers with a message with a button
    message = await standin.wait_for_message(user_id, timeout=60)
    for _ in range(ECHO_PRESSES):
        cursor = standin.cursor(user_id)
        start = time.perf_counter()
        standin.press(user_id, message, "x")
        message = await standin.wait_for_message(user_id, after=cursor, timeout=60)
        latencies.append(time.perf_counter() - start)


async def telegram_side() -> None:
    """Serve the stand-in; on each stdin line `bot N` / `echo N` play N people, print one
    JSON line with the timings; stop at `quit` or end of input."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with BotApiStandIn(token=TOKEN) as standin:
        print(json.dumps({"base_url": standin.bot_base_url, "file_url": standin.file_base_url}))
        sys.stdout.flush()
        while line := (await reader.readline()).decode().split():
            if line[0] == "quit":
                break
            kind, n = line[0], int(line[1])
            latencies: list[float] = []
            start, cpu = time.perf_counter(), time.process_time()
            if kind == "bot":
                people = (participant(standin, USER_BASE + i, latencies) for i in range(n))
            else:
                people = (echo_user(standin, ECHO_BASE + i, latencies) for i in range(n))
            await asyncio.gather(*people)
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
            print(json.dumps({"elapsed": elapsed, "cpu": cpu, "latencies": latencies}))
            sys.stdout.flush()


class Telegram:
    """The parent's handle on the child process."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.bot_base_url = ""
        self.file_base_url = ""
        self.cpu: dict[str, tuple[float, float]] = {}  # kind -> (bot side, Telegram side)

    async def __aenter__(self) -> Telegram:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--telegram",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        hello = await self._read()
        self.bot_base_url, self.file_base_url = hello["base_url"], hello["file_url"]
        return self

    async def _read(self) -> dict:  # type: ignore[type-arg]
        assert self.proc is not None and self.proc.stdout is not None
        line = await self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the stand-in process ended early")
        return json.loads(line)

    async def play(self, kind: str, n: int) -> tuple[float, list[float]]:
        """Play n people; also note CPU seconds used by this process and by the child."""
        assert self.proc is not None and self.proc.stdin is not None
        cpu = time.process_time()
        self.proc.stdin.write(f"{kind} {n}\n".encode())
        await self.proc.stdin.drain()
        result = await self._read()
        self.cpu[kind] = (time.process_time() - cpu, result["cpu"])
        return result["elapsed"], result["latencies"]

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(b"quit\n")
        self.proc.stdin.close()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()


# --- the bot side: this process ------------------------------------------------------------


async def bench_bot(telegram: Telegram, url: str, n: int) -> tuple[float, list[float], int]:
    settings = load_settings(None, database={"url": url}, partnership={"name": "Bench"})
    engine = make_engine(url)
    migrate.upgrade(engine)
    sessions = make_session_factory(engine)
    ctx = AppContext(settings=settings, sessions=sessions)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.toml"
        path.write_text(BUTTONS_ONLY)
        with session_scope(sessions) as session:
            consultation, _ = import_consultation(session, load_consultation(path))
            round_ = factories.open_round(session, consultation)
            for i in range(n):
                person = factories.participant(session, USER_BASE + i)
                factories.invitation(session, round_, person)
    harness = BotHarness(ctx, telegram)  # type: ignore[arg-type]  # needs only the URLs
    await harness.start()
    try:
        elapsed, latencies = await telegram.play("bot", n)
    finally:
        await harness.stop()
    with session_scope(sessions) as session:
        stored = session.scalar(select(func.count()).select_from(Answer)) or 0
    engine.dispose()
    return elapsed, latencies, stored


ECHO_MARKUP = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="x")]])


async def echo_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_chat is not None
    await update.effective_chat.send_message("go", reply_markup=ECHO_MARKUP)


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None and update.effective_chat is not None
    await query.answer()
    await update.effective_chat.send_message("echo", reply_markup=ECHO_MARKUP)


async def bench_echo(telegram: Telegram, n: int) -> tuple[float, list[float]]:
    # The same request backend, pool sizes and polling as the bot (bot/app.py, the harness).
    application = (
        Application.builder()
        .token(TOKEN)
        .base_url(telegram.bot_base_url)
        .request(AiohttpRequest(connection_pool_size=64))
        .get_updates_request(AiohttpRequest(connection_pool_size=1, read_timeout=6))
        .concurrent_updates(True)
        .build()
    )
    application.add_handler(CallbackQueryHandler(echo))
    application.add_handler(MessageHandler(filters.TEXT, echo_text))
    await application.initialize()
    assert application.updater is not None
    await application.updater.start_polling(poll_interval=0.0, timeout=1)
    await application.start()
    try:
        return await telegram.play("echo", n)
    finally:
        await application.updater.stop()
        await application.stop()
        await application.shutdown()


def _line(label: str, values: list[float]) -> str:
    return (
        f"{label:<26} p50 {pct(values, 0.5):7.1f} ms   p95 {pct(values, 0.95):7.1f} ms"
        f"   mean {statistics.mean(values) * 1000:7.1f} ms   (n={len(values)})"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--participants", type=int, default=200)
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--telegram", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.telegram:
        await telegram_side()
        return
    n = args.participants
    with tempfile.TemporaryDirectory() as folder:
        url = args.db or f"sqlite:///{folder}/bench.sqlite3"
        async with Telegram() as telegram:
            elapsed, latencies, stored = await bench_bot(telegram, url, n)
            echo_elapsed, echo_latencies = await bench_echo(telegram, n)
    database = url.split(":", 1)[0] if args.db else "sqlite (fresh file, WAL, synchronous=NORMAL)"
    print(
        f"configuration: {n} participants x 5 button answers; bot: PTB polling (timeout 1 s,"
        f" interval 0), concurrent updates, aiohttp requests; database: {database};"
        f" stand-in + participants in a child process; {os.cpu_count()} CPUs,"
        f" Python {platform.python_version()}"
    )
    rate = stored / elapsed
    echo_rate = len(echo_latencies) / echo_elapsed
    bot95, echo95 = pct(latencies, 0.95), pct(echo_latencies, 0.95)
    print(
        f"bot:  {stored} answers stored in {elapsed:.2f} s = {rate:.0f} answers/s (target >= 300)"
    )
    print(
        f"echo: {len(echo_latencies)} presses in {echo_elapsed:.2f} s = {echo_rate:.0f} presses/s"
    )
    print(_line("bot press -> next prompt", latencies) + "   (target p95 < 50 ms)")
    print(_line("echo press -> reply", echo_latencies))
    print(
        f"ratio bot/echo: p50 {pct(latencies, 0.5) / pct(echo_latencies, 0.5):.2f},"
        f" p95 {bot95 / echo95:.2f} (target <= 2), throughput {rate / echo_rate:.2f}"
    )
    # CPU per press says what the hardware allows whatever else runs on the machine: one
    # core's worth of the bot process is the ceiling of a single PTB process.
    bot_cpu, tg_cpu = telegram.cpu["bot"]
    echo_cpu, tg_echo_cpu = telegram.cpu["echo"]
    bot_ms, echo_ms = bot_cpu / max(stored, 1) * 1000, echo_cpu / len(echo_latencies) * 1000
    print(
        f"CPU per press, bot process: bot {bot_ms:.2f} ms (one core = {1000 / bot_ms:.0f}/s),"
        f" echo {echo_ms:.2f} ms (one core = {1000 / echo_ms:.0f}/s);"
        f" stand-in + participants: {tg_cpu / max(stored, 1) * 1000:.2f} /"
        f" {tg_echo_cpu / len(echo_latencies) * 1000:.2f} ms"
    )
    print(
        f"Little's law: {n} people pressing again as soon as answered keep ~{n} presses in"
        f" flight, so latency ~ {n} / throughput ({n / max(rate, 1) * 1000:.0f} ms at the"
        f" bot's rate; p95 < 50 ms at this load needs >= {n / 0.05:.0f} presses/s)"
    )
    load = os.getloadavg()[0]
    print(f"load average (1 min) at the end: {load:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    asyncio.run(main())
