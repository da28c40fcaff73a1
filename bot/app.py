"""Builds the python-telegram-bot Application. Nothing else in the project knows PTB wiring."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CommandHandler,
    Defaults,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.kernel.context import CONTEXT_KEY, AppContext
from bot.kernel.people import list_privileged
from bot.telegram import jobs as runtime
from bot.telegram import menus, transactions
from bot.telegram.client import ConsultBot
from bot.telegram.request import AiohttpRequest
from handlers import common, coordinator, lead, participant
from storage.db import session_scope

log = logging.getLogger(__name__)

# Handler groups: lower numbers run first, and a guard raising ApplicationHandlerStop ends the
# update there.
GUARDS = -10
FEATURES = 0


def build_application(ctx: AppContext, token: str, *, jobs: bool = True) -> Application:  # type: ignore[type-arg]
    """The bot's Application. `jobs`: run the repeating job (rounds tick and outbox sender);
    one process of a deployment does, other webhook workers only answer updates."""
    telegram = ctx.settings.telegram
    bot = ConsultBot(
        token,
        base_url=telegram.base_url,
        base_file_url=telegram.base_file_url,
        defaults=Defaults(parse_mode="HTML"),
        # Interactive replies retry a 429 a few times; the overall pace of broadcasts is the
        # outbox's job, so the overall limiter here is off (0) and only groups are limited.
        rate_limiter=AIORateLimiter(overall_max_rate=0, max_retries=3),
        # aiohttp instead of PTB's default httpx: several times the requests a second on the
        # same CPU, which broadcasts to thousands need (see bot/aiohttp_request.py).
        request=AiohttpRequest(
            connection_pool_size=64,
            read_timeout=telegram.request_timeout,
            write_timeout=telegram.request_timeout,
            connect_timeout=telegram.request_timeout,
        ),
        get_updates_request=AiohttpRequest(
            connection_pool_size=1,
            read_timeout=telegram.poll_timeout + telegram.request_timeout,
            connect_timeout=telegram.request_timeout,
        ),
    )
    builder: ApplicationBuilder = (  # type: ignore[type-arg]
        Application.builder()
        .bot(bot)
        .concurrent_updates(True)
        .post_init(post_init)
        .post_shutdown(post_shutdown)
    )
    application = builder.build()
    application.bot_data[CONTEXT_KEY] = ctx
    register_handlers(application)
    if jobs:
        runtime.schedule_jobs(application)
    return application


def register_handlers(application: Application) -> None:  # type: ignore[type-arg]
    application.add_handler(TypeHandler(Update, transactions.drop_duplicate_updates), group=GUARDS)
    application.add_handler(TypeHandler(Update, common.private_chats_only), group=GUARDS + 1)

    application.add_handler(CommandHandler("start", participant.start), group=FEATURES)
    application.add_handler(CommandHandler("help", common.help_command), group=FEATURES)
    participant.register(application)
    lead.register(application)
    coordinator.register(application)

    # Within one group the first matching handler wins, so the catch-all for unknown commands
    # is added after every feature's handlers.
    application.add_handler(MessageHandler(filters.COMMAND, common.unknown_command), group=FEATURES)
    application.add_error_handler(common.on_error)


async def post_init(application: Application) -> None:  # type: ignore[type-arg]
    """Command menus for everyone and, by role, for privileged chats."""
    ctx: AppContext = application.bot_data[CONTEXT_KEY]
    await menus.set_command_menu(application.bot, None, None)
    with session_scope(ctx.sessions) as session:
        people = [(p.chat_id, p.role) for p in list_privileged(session) if p.chat_id]
    for chat_id, role in people:
        await menus.set_command_menu(application.bot, chat_id, role)
    log.info("command menus set (%d privileged chats)", len(people))
    runtime.settle_heap()


async def post_shutdown(application: Application) -> None:  # type: ignore[type-arg]
    transactions.close_kept_connection(application.bot_data[CONTEXT_KEY])
