"""The delivery guarantee under SIGKILL: the sender runs in its own process against the
stand-in and a file database, is killed mid-round, and restarted. Counting from the stand-in:
nobody is missed, and duplicates stay within one batch (each chat at most one extra copy)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from bot.kernel.context import AppContext
from bot.rounds.events import run_due_events
from bot.rounds.planning import schedule_once
from bot.rounds.services import Services
from standin import BotApiStandIn
from storage.db import session_scope
from storage.models import Delivery, DeliveryStatus
from tests.conftest import Database
from tests.support import factories
from tests.support.harness import TOKEN

RECIPIENTS = 400
BATCH = 50


def _sender_command(*extra: str) -> list[str]:
    return [
        sys.executable,
        "-c",
        "from bot.cli import main; main()",
        "send",
        "--rate",
        "400",
        "--batch-size",
        str(BATCH),
        "--per-chat",
        "1",
        *extra,
    ]


async def test_sigkill_mid_round_loses_nothing_and_duplicates_at_most_a_batch(
    ctx: AppContext, db: Database, standin: BotApiStandIn, tmp_path: Path
) -> None:
    with session_scope(ctx.sessions) as s:
        consultation = factories.consultation(s)
        org = factories.organisation(s, "North", area="north")
        for n in range(RECIPIENTS):
            factories.participant(s, 20_000 + n, organisation=org)
            standin.register_chat(20_000 + n)
        schedule_once(
            s,
            consultation,
            audience={"who": "everyone"},
            opens_at=ctx.clock.now(),
            open_for=timedelta(days=3),
            remind_before=[],
        )
    run_due_events(ctx.sessions, now=ctx.clock.now(), services=Services(ctx.renderer, "P"))
    standin.slow(0.01, "sendMessage")  # requests in flight when the axe falls
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULTBOT_")}
    env.update(
        CONSULTBOT_TOKEN=TOKEN,
        CONSULTBOT_DATABASE__URL=db.url,
        CONSULTBOT_TELEGRAM__BASE_URL=standin.bot_base_url,
        CONSULTBOT_TELEGRAM__BASE_FILE_URL=standin.file_base_url,
    )
    first = await asyncio.create_subprocess_exec(
        *_sender_command(),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        deadline = asyncio.get_running_loop().time() + 30
        while standin.stats.messages_sent < RECIPIENTS // 3:
            assert asyncio.get_running_loop().time() < deadline, "the sender never got going"
            assert first.returncode is None, await first.stderr.read()  # type: ignore[union-attr]
            await asyncio.sleep(0.01)
    finally:
        if first.returncode is None:
            first.send_signal(signal.SIGKILL)
        await first.wait()
    killed_at = standin.stats.messages_sent
    assert 0 < killed_at < RECIPIENTS
    with session_scope(ctx.sessions) as s:
        in_flight = s.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.status == DeliveryStatus.SENDING)
        )
    assert in_flight is not None and in_flight <= BATCH

    second = await asyncio.create_subprocess_exec(
        *_sender_command("--until-idle"),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(second.communicate(), 60)
    finally:
        if second.returncode is None:
            second.send_signal(signal.SIGKILL)
            await second.wait()
    assert second.returncode == 0, err.decode()

    per_chat = Counter(
        {chat: len(standin.messages(chat)) for chat in range(20_000, 20_000 + RECIPIENTS)}
    )
    missing = [chat for chat, n in per_chat.items() if n == 0]
    duplicates = sum(n - 1 for n in per_chat.values() if n > 1)
    assert missing == [], f"lost: {missing[:10]}"
    assert duplicates <= BATCH and max(per_chat.values()) <= 2
    with session_scope(ctx.sessions) as s:
        statuses = dict(
            s.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()
        )
    assert statuses == {DeliveryStatus.SENT: RECIPIENTS}
    print(f"killed after {killed_at} sends; {in_flight} rows in flight; {duplicates} duplicated")
