"""Cross-cutting handler pieces: role checks, duplicate updates, group chats, errors, /help."""

from __future__ import annotations

import asyncio
import functools
import html
import logging
import weakref
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from telegram import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.error import TelegramError
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.kernel.context import AppContext, app_context
from bot.kernel.people import role_of
from bot.kernel.reply import OutgoingMessage
from storage.db import KeptConnection, session_in, session_scope, transaction
from storage.models import Participant, ParticipantStatus, ProcessedUpdate, Role
from storage.prepared import Prepared

log = logging.getLogger(__name__)
PARTICIPANTS = Participant.__table__
# Built once: every update runs these, and building a statement costs as much as running it.
_MARK_PROCESSED = Prepared(
    insert(ProcessedUpdate.__table__).values(
        update_id=bindparam("update_id"), processed_at=bindparam("now")
    )
)
_STATUS = Prepared(
    select(PARTICIPANTS.c.status).where(PARTICIPANTS.c.telegram_user_id == bindparam("user"))
)

Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[Any]]
H = TypeVar("H", bound=Handler)
R = TypeVar("R")

ROLE_RANK = {Role.MEMBER: 0, Role.LEAD: 1, Role.COORDINATOR: 2}


@dataclass(frozen=True)
class MenuCommand:
    command: str
    description: str
    role: Role = Role.MEMBER  # the least role that sees it


# One place lists every command, so /help, the Telegram command menu and the role checks agree.
COMMANDS: list[MenuCommand] = [
    MenuCommand("start", "Join or restart"),
    MenuCommand("help", "What I can do for you"),
]


def register_command(command: str, description: str, role: Role = Role.MEMBER) -> None:
    if any(entry.command == command for entry in COMMANDS):
        return
    COMMANDS.append(MenuCommand(command, description, role))


def commands_for(role: Role | None) -> list[MenuCommand]:
    rank = ROLE_RANK[role or Role.MEMBER]
    return [entry for entry in COMMANDS if ROLE_RANK[entry.role] <= rank]


async def set_command_menu(bot: Any, chat_id: int | None, role: Role | None) -> None:
    """Show each person the commands their role can use (Telegram scopes menus per chat)."""
    commands = [BotCommand(c.command, c.description) for c in commands_for(role)]
    scope = (
        BotCommandScopeChat(chat_id) if chat_id is not None else BotCommandScopeAllPrivateChats()
    )
    try:
        await bot.set_my_commands(commands, scope=scope)
    except TelegramError as exc:  # a menu is a nicety; never fail an update over it
        log.warning("could not set the command menu for chat %s: %s", chat_id, exc)


_PEOPLE_BUSY: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()


def one_at_a_time(user_id: int) -> asyncio.Lock:
    """A lock per person, so that two presses of theirs (a double tap, two buttons in quick
    succession) are decided one after the other even when in_transaction runs them in
    threads: the second then sees what the first stored. Other people are not held up."""
    lock = _PEOPLE_BUSY.get(user_id)
    if lock is None:
        lock = _PEOPLE_BUSY[user_id] = asyncio.Lock()
    return lock


async def in_transaction(ctx: AppContext, work: Callable[[Connection], R]) -> R:
    """Run `work` in one Core transaction. On SQLite it runs right here, on a connection kept
    for the event loop (kept_connection): statements take microseconds and one writer at a
    time is all SQLite allows, so a thread would only queue behind the write lock. On a server
    database every statement waits for a round trip, which on the event loop held up every
    other update: there it runs in a worker thread (bench/participant_bench.py --db)."""

    def run() -> R:
        with work_transaction(ctx) as connection:
            return work(connection)

    if _on_sqlite(ctx):
        return run()
    return await asyncio.to_thread(run)


def work_transaction(ctx: AppContext) -> AbstractContextManager[Connection]:
    """The transaction in_transaction runs its work in: on SQLite on the kept connection,
    elsewhere on one from the pool (storage.db.transaction)."""
    if _on_sqlite(ctx):
        return kept_connection(ctx).transaction()
    return transaction(ctx.sessions)


def _on_sqlite(ctx: AppContext) -> bool:
    return ctx.sessions.kw["bind"].dialect.name == "sqlite"  # type: ignore[no-any-return]


async def in_session(ctx: AppContext, work: Callable[[Session], R]) -> R:
    """in_transaction for services that need an ORM session: one over its connection."""

    def run(connection: Connection) -> R:
        with session_in(ctx.sessions, connection) as session:
            return work(session)

    return await in_transaction(ctx, run)


KEPT_CONNECTION = "common.kept_connection"


def kept_connection(ctx: AppContext) -> KeptConnection:
    """The connection in_transaction uses on SQLite (closed by close_kept_connection)."""
    kept = ctx.extras.get(KEPT_CONNECTION)
    if kept is None:
        kept = ctx.extras[KEPT_CONNECTION] = KeptConnection(ctx.sessions.kw["bind"])
    return kept  # type: ignore[no-any-return]


def close_kept_connection(ctx: AppContext) -> None:
    kept = ctx.extras.pop(KEPT_CONNECTION, None)
    if kept is not None:
        kept.close()


def current_role(ctx: AppContext, user_id: int) -> Role | None:
    with session_scope(ctx.sessions) as session:
        return role_of(session, ctx.settings, user_id)


def markup(message: OutgoingMessage) -> InlineKeyboardMarkup | None:
    """A message's buttons as Telegram's inline keyboard."""
    if not message.buttons:
        return None
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(b.text, callback_data=b.callback_data, url=b.url) for b in row]
            for row in message.buttons
        ]
    )


async def reply(update: Update, text: str, **kwargs: Any) -> None:
    """Answer in the chat the update came from, as Telegram HTML."""
    chat = update.effective_chat
    if chat is None:
        return
    await chat.send_message(text, parse_mode="HTML", **kwargs)


async def show(update: Update, message: OutgoingMessage) -> None:
    """Send a message with its buttons in the chat the update came from."""
    await reply(update, message.text, reply_markup=markup(message))


async def next_step(update: Update, message: OutgoingMessage) -> None:
    """Answer a dialog's button press and replace the pressed message with the next step, so
    an earlier step's buttons are gone; a message too old to edit gets a new one instead."""
    query = update.callback_query
    assert query is not None
    await query.answer()
    try:
        await query.edit_message_text(message.text, reply_markup=markup(message))
    except TelegramError:  # too old to edit, or unchanged
        log.debug("could not edit the dialog message", exc_info=True)
        await show(update, message)


def require_role(role: Role) -> Callable[[H], H]:
    """Let the handler run only for people with at least `role`; everyone else gets a short
    answer, the attempt is logged, and nothing changes."""

    def decorate(handler: H) -> H:
        @functools.wraps(handler)
        async def guarded(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Any:
            ctx = app_context(context)
            user = update.effective_user
            have = current_role(ctx, user.id) if user else None
            if have is None or ROLE_RANK[have] < ROLE_RANK[role]:
                log.warning(
                    "refused %s to user %s (role %s, needs %s)",
                    handler.__name__,
                    user.id if user else None,
                    have,
                    role,
                )
                text = ctx.renderer.render("messages/not_allowed.html", needed=role.value)
                if update.callback_query is not None:
                    await update.callback_query.answer(text, show_alert=True)
                else:
                    await reply(update, text)
                return None
            return await handler(update, context)

        return guarded  # type: ignore[return-value]

    return decorate


class DuplicateUpdate(Exception):
    """This update was processed before: Telegram delivered it again."""


# Updates that one handler claims in its own transaction (see claim_update), so that the
# busiest update there is, an answer button, costs one transaction instead of two.
_CLAIMED_BY_HANDLER: list[Callable[[Update], bool]] = []
CLAIMED_BY_HANDLER = object()  # context.participant_status while the handler has yet to read it


def claimed_by_handler(predicate: Callable[[Update], bool]) -> None:
    """Register updates whose handler calls claim_update itself; the guard leaves them be."""
    if predicate not in _CLAIMED_BY_HANDLER:  # every application registers its handlers
        _CLAIMED_BY_HANDLER.append(predicate)


def claim_update(connection: Connection, update: Update, now: datetime) -> None:
    """Mark `update` processed in the caller's transaction, as drop_duplicate_updates does for
    other updates; DuplicateUpdate if it was seen before (the caller's transaction must then
    roll back, which leaving session_scope or transaction by it does)."""
    try:
        _MARK_PROCESSED.run(connection, {"update_id": update.update_id, "now": now})
    except IntegrityError:
        raise DuplicateUpdate(update.update_id) from None


def sender_status(connection: Connection, update: Update) -> ParticipantStatus | None:
    """The sender's ParticipantStatus (None for someone who never joined)."""
    user = update.effective_user
    return None if user is None else _STATUS.scalar(connection, {"user": user.id})


async def drop_duplicate_updates(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Telegram may deliver an update twice; the second copy must change nothing."""
    if any(claims(update) for claims in _CLAIMED_BY_HANDLER):
        context.participant_status = CLAIMED_BY_HANDLER  # type: ignore[attr-defined]
        return
    ctx = app_context(context)

    def claim(connection: Connection) -> ParticipantStatus | None:
        # A plain INSERT, not an ORM add and flush: this runs for every update, and the unit
        # of work costs several times the statement itself.
        claim_update(connection, update, ctx.clock.now())
        # The stopped guard's question, asked in this transaction rather than its own.
        return sender_status(connection, update)

    try:
        context.participant_status = await in_transaction(ctx, claim)  # type: ignore[attr-defined]
    except DuplicateUpdate:
        log.info("dropped duplicate update %s", update.update_id)
        raise ApplicationHandlerStop from None


def dialog_text(waiting: Callable[[Session, int], bool], handle: Handler) -> Handler:
    """A handler for typed answers to a guided dialog: it takes a message only while
    `waiting(session, chat_id)` says this chat's dialog expects text, and then stops other
    handlers from seeing it; any other message goes on to them."""

    async def route(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        ctx = app_context(context)
        chat, message = update.effective_chat, update.effective_message
        if chat is None or message is None or not message.text:
            return
        with session_scope(ctx.sessions) as session:
            expects_text = waiting(session, chat.id)
        if not expects_text:
            return
        await handle(update, context)
        raise ApplicationHandlerStop

    return route


async def private_chats_only(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Consultation answers are personal: the bot works only in private chats. In a group it
    answers a command addressed to it once, and otherwise stays quiet."""
    chat = update.effective_chat
    if chat is None or chat.type == chat.PRIVATE:
        return
    message = update.effective_message
    if message is not None and message.text and message.text.startswith("/"):
        ctx = app_context(context)
        await reply(update, ctx.renderer.render("messages/private_only.html"))
    if update.callback_query is not None:
        await update.callback_query.answer()
    log.info("ignored update %s from %s chat %s", update.update_id, chat.type, chat.id)
    raise ApplicationHandlerStop


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    user = update.effective_user
    role = current_role(ctx, user.id) if user else None
    await reply(
        update,
        ctx.renderer.render(
            "messages/help.html",
            role=(role or Role.MEMBER).value,
            commands=commands_for(role),
            partnership=ctx.settings.partnership.name,
        ),
    )


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    message = update.effective_message
    command = (message.text or "").split()[0] if message and message.text else ""
    log.info("unknown command %r from %s", command[:40], update.effective_user)
    await reply(update, ctx.renderer.render("messages/unknown_command.html", command=command[:40]))


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Last resort: log with the stack, tell the person kindly, never crash the bot."""
    log.error("error while handling an update", exc_info=context.error)
    if not isinstance(update, Update):
        return
    try:
        ctx = app_context(context)
        if update.callback_query is not None:
            await update.callback_query.answer()
        await reply(update, ctx.renderer.render("messages/error.html"))
    except Exception:  # the error reply itself may fail (403, network): nothing more to do
        log.debug("could not tell the user about the error", exc_info=True)


def escape(text: str) -> str:
    return html.escape(text, quote=False)
