"""Participants answering at once: the real bot (PTB polling over HTTP) against the Bot API
stand-in, on a fresh SQLite file (or --db URL), beside a bare PTB echo handler.

Run: .venv/bin/python bench/participant_bench.py [--participants 200] [--db URL]

Each simulated participant presses Start, then answers every prompt by button, waiting for
the bot's next prompt before pressing again (as a person would). Printed: answers stored per
second, p50/p95 from a press to the bot's next prompt, and the same latency for an echo
handler (answer the callback, send one message) measured in the same run.

The stand-in runs in this process's event loop, so its own work counts against both the bot
and the echo baseline alike; the comparison between them is the fair figure.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update  # noqa: E402
from telegram.ext import Application, CallbackQueryHandler, ContextTypes  # noqa: E402

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


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def _key(text: str) -> str:
    lines = text.split("\n")
    return lines[1] if len(lines) > 1 else ""


async def participant(standin: BotApiStandIn, user_id: int, latencies: list[float]) -> None:
    intro = await standin.wait_for_message(user_id, after=0, predicate=lambda m: "Bench" in m.text)
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


async def bench_bot(standin: BotApiStandIn, url: str, n: int) -> tuple[float, list[float], int]:
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
                person = factories.participant(session, 10_000 + i)
                factories.invitation(session, round_, person)
    harness = BotHarness(ctx, standin)
    await harness.start()
    try:
        # Each person opens the round with /resume (the outbox's job in production).
        for i in range(n):
            standin.send_text(10_000 + i, "/resume")
        latencies: list[float] = []
        start = time.perf_counter()
        await asyncio.gather(*(participant(standin, 10_000 + i, latencies) for i in range(n)))
        elapsed = time.perf_counter() - start
    finally:
        await harness.stop()
    with session_scope(sessions) as session:
        stored = session.scalar(select(func.count()).select_from(Answer)) or 0
    engine.dispose()
    return elapsed, latencies, stored


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None and update.effective_chat is not None
    await query.answer()
    await update.effective_chat.send_message(
        "echo", reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="x")]])
    )


async def bench_echo(standin: BotApiStandIn, n: int, presses: int) -> list[float]:
    application = (
        Application.builder()
        .token(TOKEN)
        .base_url(standin.bot_base_url)
        .concurrent_updates(True)
        .build()
    )
    application.add_handler(CallbackQueryHandler(echo))
    await application.initialize()
    assert application.updater is not None
    await application.updater.start_polling(poll_interval=0.0, timeout=1)
    await application.start()
    latencies: list[float] = []

    async def one(user_id: int) -> None:
        standin.send_text(user_id, "hi")  # makes the chat known to the stand-in
        await application.bot.send_message(
            user_id,
            "go",
            reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="x")]]),
        )
        message = standin.last_message(user_id)
        assert message is not None
        for _ in range(presses):
            cursor = standin.cursor(user_id)
            start = time.perf_counter()
            standin.press(user_id, message, "x")
            message = await standin.wait_for_message(user_id, after=cursor, timeout=60)
            latencies.append(time.perf_counter() - start)

    try:
        await asyncio.gather(*(one(20_000 + i) for i in range(n)))
    finally:
        await application.updater.stop()
        await application.stop()
        await application.shutdown()
    return latencies


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--participants", type=int, default=200)
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.db or f"sqlite:///{folder}/bench.sqlite3"
        async with BotApiStandIn(token=TOKEN) as standin:
            elapsed, latencies, stored = await bench_bot(standin, url, args.participants)
            echo_latencies = await bench_echo(standin, args.participants, 5)
    print(f"participants: {args.participants}, answers stored: {stored} in {elapsed:.2f} s")
    print(f"answers stored per second: {stored / elapsed:.0f}")
    print(
        f"press -> next prompt: p50 {pct(latencies, 0.5):.1f} ms, p95 {pct(latencies, 0.95):.1f} ms"
        f" (mean {statistics.mean(latencies) * 1000:.1f} ms)"
    )
    print(
        f"echo baseline:        p50 {pct(echo_latencies, 0.5):.1f} ms, "
        f"p95 {pct(echo_latencies, 0.95):.1f} ms"
    )
    print(f"p95 ratio bot/echo: {pct(latencies, 0.95) / pct(echo_latencies, 0.95):.2f}")


if __name__ == "__main__":
    asyncio.run(main())
