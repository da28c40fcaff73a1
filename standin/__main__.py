"""Run the stand-in on its own: ``python -m standin --port 8081 --token T``.

Prints its URL (and the PTB base URLs) on one line each, then serves until SIGINT/SIGTERM
or until ``--lifetime`` seconds have passed, so a forgotten server cannot linger.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from .server import DEFAULT_TOKEN
from .sidedoor import BotApiStandIn


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m standin", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--bot-id", type=int, default=None)
    parser.add_argument("--bot-username", default="consultbot_test_bot")
    parser.add_argument("--bot-first-name", default="Consultbot")
    parser.add_argument("--flood-limits", action="store_true", help="simulate flood control")
    parser.add_argument(
        "--lifetime", type=float, default=None, help="stop by itself after this many seconds"
    )
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    stand_in = BotApiStandIn(
        args.token,
        host=args.host,
        port=args.port,
        bot_id=args.bot_id,
        bot_username=args.bot_username,
        bot_first_name=args.bot_first_name,
        flood_limits=args.flood_limits,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with stand_in:
        print(f"Bot API stand-in listening on {stand_in.url}", flush=True)
        print(f"base_url={stand_in.bot_base_url}", flush=True)
        print(f"base_file_url={stand_in.file_base_url}", flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), args.lifetime)
    print("Bot API stand-in stopped", flush=True)


def main(argv: list[str] | None = None) -> None:
    asyncio.run(_serve(_parse_args(argv)))


if __name__ == "__main__":
    main()
