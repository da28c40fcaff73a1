"""Builds the python-telegram-bot Application and starts it as a webhook worker. Nothing else
in the project knows PTB wiring."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from telegram import Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.kernel import i18n
from bot.kernel.config import Settings
from bot.kernel.context import CONTEXT_KEY, AppContext
from bot.kernel.logs import setup_logging
from bot.kernel.people import list_privileged
from bot.telegram import jobs as runtime
from bot.telegram import menus, transactions
from bot.telegram.client import make_bot
from bot.telegram.inbox import ForgetWhenProcessed, Inbox
from bot.telegram.webhook import ALLOWED_UPDATES, receive_updates, webhook_path
from handlers import authoring, common, coordinator, lead, participant
from storage.db import make_engine, make_session_factory, session_scope

log = logging.getLogger(__name__)

# Handler groups: lower numbers run first, and a guard raising ApplicationHandlerStop ends the
# update there.
GUARDS = -10
FEATURES = 0


def build_application(
    ctx: AppContext, token: str, *, jobs: bool = True, inbox: Inbox | None = None
) -> Application:  # type: ignore[type-arg]
    """The bot's Application. `jobs`: run the repeating job (rounds tick and outbox sender);
    one process of a deployment does, other webhook workers only answer updates. `inbox`
    (webhook workers): told when each update is processed, so its row goes."""
    bot = make_bot(token, ctx.settings.telegram)
    processing = True if inbox is None else ForgetWhenProcessed(inbox)
    builder: ApplicationBuilder = (  # type: ignore[type-arg]
        Application.builder().bot(bot).concurrent_updates(processing).post_init(post_init)
    )
    application = builder.build()
    application.bot_data[CONTEXT_KEY] = ctx
    register_handlers(application)
    if jobs:
        runtime.schedule_jobs(application, ctx)
    return application


def register_handlers(application: Application) -> None:  # type: ignore[type-arg]
    application.add_handler(TypeHandler(Update, transactions.drop_duplicate_updates), group=GUARDS)
    application.add_handler(TypeHandler(Update, common.private_chats_only), group=GUARDS + 1)

    application.add_handler(CommandHandler("start", participant.start), group=FEATURES)
    application.add_handler(CommandHandler("help", common.help_command), group=FEATURES)
    participant.register(application)
    lead.register(application)
    coordinator.register(application)
    authoring.register(application)

    # Within one group the first matching handler wins, so the catch-all for unknown commands
    # is added after every feature's handlers.
    application.add_handler(MessageHandler(filters.COMMAND, common.unknown_command), group=FEATURES)
    application.add_error_handler(common.on_error)


async def post_init(application: Application) -> None:  # type: ignore[type-arg]
    """Command menus for everyone and, by role, for privileged chats."""
    ctx: AppContext = application.bot_data[CONTEXT_KEY]
    await menus.set_command_menu(application.bot, ctx.renderer, None, None)
    with session_scope(ctx.sessions) as session:
        people = [(p.chat_id, p.role, p.language) for p in list_privileged(session) if p.chat_id]
    for chat_id, role, language in people:
        with i18n.speaking(language):
            await menus.set_command_menu(application.bot, ctx.renderer, chat_id, role)
    log.info("command menus set (%d privileged chats)", len(people))
    runtime.settle_heap()


async def run_worker(
    ctx: AppContext,
    token: str,
    *,
    secret: str,
    index: int = 0,
    stop: asyncio.Event | None = None,
) -> None:
    """One webhook worker, until SIGTERM or SIGINT (or `stop` is set). Every update it
    acknowledges is in the inbox first; at a stop it stops receiving, then processes what it
    holds; what a crash leaves, another process or the next start takes over."""
    telegram = ctx.settings.telegram
    assert telegram.webhook_url is not None
    first = index == 0
    inbox = Inbox(ctx)
    application = build_application(ctx, token, jobs=first, inbox=inbox)
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
    await inbox.open()
    runner = await receive_updates(application, inbox, telegram, secret)
    upkeep: asyncio.Task[None] | None = None
    try:
        async with application:
            if first:
                await application.bot.set_webhook(
                    telegram.webhook_url,
                    secret_token=secret,
                    allowed_updates=ALLOWED_UPDATES,
                    max_connections=telegram.webhook_max_connections,
                )
                await post_init(application)
            await application.start()
            upkeep = asyncio.create_task(inbox.keep_up(application), name="inbox")
            runtime.settle_heap()  # worker 0 did in post_init
            log.info(
                "worker %d of %d receiving updates on %s:%d%s",
                index + 1,
                telegram.workers,
                telegram.webhook_listen,
                telegram.webhook_port,
                webhook_path(telegram.webhook_url),
            )
            await stop.wait()
            await runner.cleanup()  # nothing new: Telegram keeps it for another host or a start
            await application.stop()  # what is in hand is processed
    finally:
        if upkeep is not None:
            upkeep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await upkeep
        await runner.cleanup()  # (again, if done: harmless)
        await inbox.close()


def worker_main(settings: Settings, token: str, secret: str, index: int) -> None:
    """A worker process: its own engine, Application and event loop (spawned, so nothing of
    the parent's is shared but the settings)."""
    setup_logging(settings.log_level, token)
    engine = make_engine(settings.database_url)
    ctx = AppContext(settings=settings, sessions=make_session_factory(engine))
    try:
        asyncio.run(run_worker(ctx, token, secret=secret, index=index))
    finally:
        engine.dispose()
