"""Coordinators: /review the barrier coding of free-text answers, one at a time."""

from __future__ import annotations

import logging

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from bot.coding.review import ReviewError, ReviewView, next_item, parse_callback, review_message
from bot.coding.review import save as save_review
from bot.coding.review import skip as skip_review
from bot.coding.review import toggle as toggle_code
from bot.digests.compile import codebook_for
from bot.kernel.reply import OutgoingMessage
from bot.telegram.context import app_context
from bot.telegram.menus import register_command
from bot.telegram.replies import send_html
from handlers.common import escape, require_role
from storage.db import session_scope
from storage.models import Role

log = logging.getLogger(__name__)

register_command("review", "Check the barrier coding of answers", Role.COORDINATOR)

DONE = "Nothing is waiting for review: every written answer is coded or checked."


def markup(message: OutgoingMessage) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(b.text, callback_data=b.callback_data) for b in row]
            for row in message.buttons
        ]
    )


@require_role(Role.COORDINATOR)
async def review_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    chat = update.effective_chat
    if chat is None:
        return
    codebook = codebook_for(ctx.settings, ctx.loaded)
    with session_scope(ctx.sessions) as session:
        view = next_item(session, codebook, chat.id)
        message = review_message(view, codebook, ctx.renderer) if view else None
    if message is None:
        await send_html(update, DONE)
        return
    await send_html(update, message.text, reply_markup=markup(message))


@require_role(Role.COORDINATOR)
async def review_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    query, chat, user = update.callback_query, update.effective_chat, update.effective_user
    if query is None or chat is None or user is None:
        return
    codebook = codebook_for(ctx.settings, ctx.loaded)
    view: ReviewView | None
    try:
        action, answer_id, index = parse_callback(query.data or "")
        with session_scope(ctx.sessions) as session:
            if action == "t":
                assert index is not None
                view = toggle_code(session, codebook, chat.id, answer_id, index)
            elif action == "s":
                view = save_review(session, codebook, chat.id, answer_id, actor=user.id)
            else:
                view = skip_review(session, codebook, chat.id, answer_id)
            message = review_message(view, codebook, ctx.renderer) if view else None
    except ReviewError as exc:
        log.info("review button %r refused for %s: %s", (query.data or "")[:64], user.id, exc)
        await query.answer(str(exc), show_alert=True)
        return
    await query.answer("Saved" if action == "s" else None)
    try:
        if message is None:
            await query.edit_message_text(escape(DONE), parse_mode="HTML")
        else:
            await query.edit_message_text(
                message.text, parse_mode="HTML", reply_markup=markup(message)
            )
    except BadRequest as exc:  # "message is not modified" after a double press
        log.debug("review edit skipped: %s", exc)


def register(application: Application) -> None:  # type: ignore[type-arg]
    application.add_handler(CommandHandler("review", review_command))
    application.add_handler(CallbackQueryHandler(review_button, pattern=r"^rv:"))
