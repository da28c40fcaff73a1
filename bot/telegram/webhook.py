"""Receiving updates by webhook, in one process or several.

Telegram POSTs each update to a public HTTPS URL; a reverse proxy (nginx, Caddy) ends TLS and
passes it to `telegram.webhook_listen:webhook_port`. Each worker process serves that port with
SO_REUSEPORT, so the kernel spreads Telegram's parallel connections (up to
`webhook_max_connections`) over the workers; every worker runs the same handlers, and since
where a person is lives in the database (never in memory), any worker can take any update.
Worker 0 of each `consultbot run` registers the webhook, sets the command menus and runs the
repeating job (the rounds tick and the outbox sender). Several hosts behind one URL each have
a worker 0; the database keeps their work from doubling (due events are claimed with SKIP
LOCKED, one sender holds an advisory lock), and all of them register the same URL and secret
(derived_secret). A worker's start-up (bot.app.run_worker) builds the Application; this
module only receives.

The receiver is a small aiohttp app rather than PTB's own webhook server (tornado), which has
no way to share a port between processes. It checks Telegram's secret-token header, stores the
update in the inbox (bot.telegram.inbox) and only then answers 200, so an update Telegram
counts as delivered survives the process; meanwhile it hands the update to the PTB
Application's queue exactly as polling does.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import multiprocessing
import signal
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from telegram import Update
from telegram.ext import Application

from bot.kernel.config import Settings, TelegramSettings
from bot.telegram.inbox import Inbox

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member"]


def webhook_path(url: str) -> str:
    """The path Telegram will POST to: the webhook URL's own path."""
    return urlsplit(url).path or "/"


# What the token is keyed over to make the webhook secret (derived_secret); changing it
# changes every deployment's secret at once, which is harmless: each start calls setWebhook.
SECRET_LABEL = b"consultbot webhook secret-token v1"


def derived_secret(token: str) -> str:
    """Telegram's secret header when CONSULTBOT_WEBHOOK_SECRET is not set: HMAC-SHA256 of a
    fixed label keyed by the bot token, so every host and worker with this token arrives at
    the same one and accepts the updates another host's setWebhook asked for (a fresh secret
    per start made the last host to start the only one that did). 64 hex digits, within
    Telegram's 1-256 characters of A-Z, a-z, 0-9, _ and -. The token cannot be recovered from
    it, and whoever has the token could call setWebhook themselves anyway."""
    return hmac.new(token.encode(), SECRET_LABEL, hashlib.sha256).hexdigest()


async def start_receiver(
    application: Application,  # type: ignore[type-arg]
    inbox: Inbox | None,
    *,
    listen: str,
    port: int,
    path: str,
    secret: str,
    reuse_port: bool,
) -> web.AppRunner:
    """Serve `path` on listen:port: put each update on the application's queue, and answer
    200 once `inbox` has it stored. No inbox (bench/participant_bench.py's bare echo bot):
    each is acknowledged at once, and lost if the process dies."""

    async def receive(request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not hmac.compare_digest(given.encode(), secret.encode()):
            log.warning("webhook call without the right secret from %s", request.remote)
            return web.Response(status=403)
        try:
            body = await request.text()
            data: Any = json.loads(body)
            update = Update.de_json(data, application.bot)
        except Exception:  # not JSON, or not an update: nothing Telegram would send
            log.warning("webhook call with a body that is not an update", exc_info=True)
            return web.Response(status=400)
        # Processing starts at once, beside the keeping: the person's reply does not wait for
        # the inbox's commit, only Telegram's 200 does. A copy processed twice (the keeping
        # fails and Telegram sends it again, or it was here already) is dropped by the
        # processed-update check.
        kept = None if inbox is None else asyncio.ensure_future(inbox.keep(update.update_id, body))
        await application.update_queue.put(update)
        if kept is not None:
            try:
                await kept
            except Exception:  # the database is away: not acknowledged, so Telegram retries
                log.warning("could not keep update %s; Telegram will retry", update.update_id)
                return web.Response(status=503)
        return web.Response()

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post(path, receive)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, listen, port, reuse_port=reuse_port or None)
    await site.start()
    return runner


async def receive_updates(
    application: Application,  # type: ignore[type-arg]
    inbox: Inbox | None,
    telegram: TelegramSettings,
    secret: str,
) -> web.AppRunner:
    """start_receiver as `telegram` (TelegramSettings) says: its listen address, port and the
    webhook URL's path; the port is shared when there is more than one worker."""
    assert telegram.webhook_url is not None
    return await start_receiver(
        application,
        inbox,
        listen=telegram.webhook_listen,
        port=telegram.webhook_port,
        path=webhook_path(telegram.webhook_url),
        secret=secret,
        reuse_port=telegram.workers > 1,
    )


def run_workers(
    settings: Settings, token: str, secret: str, start: Callable[[Settings, str, str, int], None]
) -> int:
    """Start `settings.telegram.workers` processes, each calling start(settings, token,
    secret, index); stop them all on SIGTERM or SIGINT, or when one of them ends. Returns
    the first non-zero exit code, or 0."""
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=start, args=(settings, token, secret, i), name=f"worker-{i}")
        for i in range(settings.telegram.workers)
    ]
    for process in processes:
        process.start()
    stopping = False

    def stop_all(*_: object) -> None:
        nonlocal stopping
        stopping = True
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: each worker stops cleanly

    previous = {sig: signal.signal(sig, stop_all) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stopping and all(p.is_alive() for p in processes):
            processes[0].join(0.5)
        stop_all()
        for process in processes:
            process.join(30)
            if process.is_alive():
                process.kill()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    codes = [p.exitcode or 0 for p in processes]
    return next((c for c in codes if c not in (0, -signal.SIGTERM)), 0)
