"""What one button press costs the bot in its own code, without Telegram or the network: the
database work and message rendering of Start now plus five answers, per press, beside the
bare duplicate-guard transaction as a baseline (the least any update pays), in one process.

Run: .venv/bin/python bench/press_cost.py [--participants 1000] [--db URL]

participant_bench.py measures the whole bot against an echo handler over HTTP; this isolates
the part that is the bot's own, so a change to the hot path can be measured with little noise.
Printed: CPU microseconds per press (process time), median of --repeats runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from participant_bench import BUTTONS_ONLY, PRESS  # noqa: E402
from telegram import CallbackQuery, Chat, Update, User  # noqa: E402

from bot.consultations.catalogue import import_consultation  # noqa: E402
from bot.consultations.sets import load_consultation  # noqa: E402
from bot.kernel.config import load_settings  # noqa: E402
from bot.kernel.context import AppContext  # noqa: E402
from bot.participation import journey, presses  # noqa: E402
from bot.telegram import transactions  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import make_engine, make_session_factory, session_scope  # noqa: E402
from tests.support import factories  # noqa: E402

USER_BASE = 10_000


def press_update(update_id: int, user_id: int, data: str) -> Update:
    user = User(user_id, "P", False)
    query = CallbackQuery(str(update_id), user, "ci", data=data)
    update = Update(update_id, callback_query=query)
    update._effective_chat = Chat(user_id, "private")  # type: ignore[attr-defined]
    return update


def button(message: object, label: str) -> str:
    for row in message.buttons:  # type: ignore[attr-defined]
        for b in row:
            if b.text == label or b.text.endswith(label):
                return b.callback_data  # type: ignore[no-any-return]
    raise LookupError(label)


def run(ctx: AppContext, invitations: list[tuple[int, int]], first_update: int) -> float:
    """Every participant presses Start now, then answers by button; CPU seconds per press."""
    update_id = first_update
    cards = {user_id: f"p:go:{invitation_id}" for user_id, invitation_id in invitations}
    spent = 0.0
    for step in range(1 + len(PRESS)):
        for user_id, _ in invitations:
            update_id += 1
            update = press_update(update_id, user_id, cards[user_id])
            started = time.process_time()
            # As handlers.participant.on_press does (bot.telegram.transactions.in_transaction).
            press = presses.parse(cards[user_id])
            assert isinstance(press, presses.Press)
            with transactions.work_transaction(ctx) as connection:
                transactions.claim_update(connection, update, ctx.clock.now())
                outcome = journey.handle_press(connection, ctx, user_id, press)
            spent += time.process_time() - started
            shown = outcome.messages[0] if outcome.messages else outcome.edit  # Start now: the card
            if step < len(PRESS):
                # The card shows the answer just given above the next question: the last one.
                question = [q for q in PRESS if q in shown.text][-1]
                cards[user_id] = button(shown, PRESS[question])
    return spent / (len(invitations) * (1 + len(PRESS)))


def guard_only(ctx: AppContext, people: list[tuple[int, int]], first_update: int) -> float:
    """The least any update costs: a transaction that records it and reads the sender's status
    (bot.telegram.transactions.drop_duplicate_updates, on the connection in_transaction uses)."""
    started = time.process_time()
    for k, (user_id, _) in enumerate(people):
        update = press_update(first_update + k, user_id, "x")
        with transactions.work_transaction(ctx) as connection:
            transactions.claim_update(connection, update, ctx.clock.now())
            transactions.sender_status(connection, update)
    return (time.process_time() - started) / len(people)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--participants", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--db", default=None, help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    n = args.participants
    with tempfile.TemporaryDirectory() as folder:
        url = args.db or f"sqlite:///{folder}/press.sqlite3"
        settings = load_settings(None, database={"url": url}, partnership={"name": "Bench"})
        engine = make_engine(url)
        migrate.upgrade(engine)
        ctx = AppContext(settings=settings, sessions=make_session_factory(engine))
        path = Path(folder) / "bench.toml"
        path.write_text(BUTTONS_ONLY)
        runs = []
        with session_scope(ctx.sessions) as session:
            consultation, _ = import_consultation(session, load_consultation(path))
            for r in range(args.repeats):
                round_ = factories.open_round(session, consultation)
                people = []
                for i in range(n):
                    person = factories.participant(session, USER_BASE + r * n + i)
                    people.append(
                        (USER_BASE + r * n + i, factories.invitation(session, round_, person).id)
                    )
                runs.append(people)
        presses, guards = [], []
        for r, people in enumerate(runs):
            presses.append(run(ctx, people, 10_000_000 * (r + 1)))
            guards.append(guard_only(ctx, people, 50_000_000 + r * n))
            print(
                f"run {r + 1}: {presses[-1] * 1e6:.0f} us per press;"
                f" the duplicate check alone, in its own transaction: {guards[-1] * 1e6:.0f} us",
                flush=True,
            )
        press, guard = statistics.median(presses), statistics.median(guards)
        print(
            f"median of {len(runs)} runs of {n} people x {1 + len(PRESS)} presses:"
            f" {press * 1e6:.0f} us CPU per press in the bot's own code,"
            f" {press / guard:.1f}x the bare duplicate check ({guard * 1e6:.0f} us)"
        )
        engine.dispose()


if __name__ == "__main__":
    main()
