"""The one function that carries out a service's Reply in Telegram: edit, send, answer the
press, send documents. Handlers hand every Reply here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from telegram import CallbackQuery, InputFile, Update
from telegram.error import BadRequest, Forbidden, NetworkError
from telegram.ext import ContextTypes

from bot.kernel.reply import BUTTONS_OFF, OutgoingMessage, Reply
from bot.participation import joining, journey
from bot.telegram.client import ConsultBot
from bot.telegram.context import app_context
from bot.telegram.menus import set_command_menu
from bot.telegram.transactions import in_session, in_transaction
from storage.models import Role

log = logging.getLogger(__name__)


R = TypeVar("R")


async def deliver(update: Update, context: ContextTypes.DEFAULT_TYPE, reply: Reply) -> None:
    """Carry out a service's decision. A 403 means the person blocked the bot: mark them
    unreachable so the outbox stops too."""
    ctx = app_context(context)
    bot = context.bot
    assert isinstance(bot, ConsultBot)
    query = update.callback_query
    chat = update.effective_chat
    sent: int | None = None
    try:
        # What the person waits for goes first: the pressed card edited into the next
        # question, then any new message. The press is answered (its spinner stopped) after
        # those. Answering alongside the edit instead doubled the requests in flight under
        # load, and each press waited for the slower one: bench/participant_bench.py's
        # closed-loop median went from 2.0-2.4x echo's to 1.6x with this order.
        messages = reply.messages
        if reply.edit is not None:
            edited = False
            if query is not None and query.message is not None:
                pressed = query.message
                edited = await _edit(bot, pressed.chat.id, pressed.message_id, reply.edit)
            elif query is None and reply.edit_message_id is not None and chat is not None:
                edited = await _edit(bot, chat.id, reply.edit_message_id, reply.edit)
            if not edited and reply.edit_or_send:
                messages = [reply.edit, *messages]
        if chat is not None:
            for message in messages:
                sent = await _retrying(lambda m=message: bot.send_text(chat.id, m))  # type: ignore[misc]
        if query is not None:
            await _answer(bot, query, reply.toast, alert=reply.alert)
        if chat is not None:
            for document in reply.documents:
                send = chat.send_photo if document.photo else chat.send_document
                await send(
                    InputFile(document.content, filename=document.filename),
                    caption=document.caption,
                )
    except Forbidden:
        user = update.effective_user
        if user is not None:
            user_id = user.id
            await in_session(ctx, lambda session: joining.mark_unreachable(session, user_id))
        log.info("user %s blocked the bot; marked unreachable", user.id if user else None)
        return
    if reply.card_for is not None and sent is not None:
        card_for, message_id = reply.card_for, sent
        await in_transaction(
            ctx, lambda connection: journey.remember_card(connection, card_for, message_id)
        )
    if reply.menu_role is not None and chat is not None:
        await set_command_menu(context.bot, ctx.renderer, chat.id, Role(reply.menu_role))


# Waits before the second and third try of a reply that failed in transit.
RETRY_WAITS = (0.5, 2.0)


async def _retrying(call: Callable[[], Awaitable[R]]) -> R:
    """Try a reply again when it failed in transit (timeout, 5xx, connection reset). The
    answer is already stored; a person left without their next question is worse than the
    rare duplicate a retried timeout can make. Telegram's refusals (BadRequest) are final;
    429s are waited out by PTB's rate limiter."""
    for wait in RETRY_WAITS:
        try:
            return await call()
        except BadRequest:
            raise
        except NetworkError as exc:  # TimedOut is a NetworkError too
            log.warning("a reply failed (%s); trying again in %.1f s", exc, wait)
            await asyncio.sleep(wait)
    return await call()


async def _answer(
    bot: ConsultBot, query: CallbackQuery, toast: str | None, *, alert: bool = False
) -> None:
    try:
        if alert:  # a refusal the person must read: a box to dismiss, not a passing toast
            await _retrying(lambda: query.answer(toast, show_alert=True))
        else:
            await _retrying(lambda: bot.answer_press(query.id, toast or None))
    except BadRequest as exc:  # too old to answer: the spinner has gone by itself
        log.info("could not answer a button press: %s", exc)


async def _edit(bot: ConsultBot, chat_id: int, message_id: int, message: OutgoingMessage) -> bool:
    """Whether the message now shows `message` (an unchanged one, after a double press, does)."""
    try:
        if message is BUTTONS_OFF:
            await _retrying(lambda: bot.remove_buttons(chat_id, message_id))
        else:
            await _retrying(lambda: bot.edit_text(chat_id, message_id, message))
    except BadRequest as exc:  # "message is not modified", deleted, or too old to edit
        log.info("could not edit message %s: %s", message_id, exc)
        return "not modified" in str(exc)
    return True
