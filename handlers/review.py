"""Coordinators: /review the barrier coding of free-text answers, one at a time."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from bot.coding import review
from bot.coding.stored import codebook_for
from bot.telegram.context import app_context
from bot.telegram.menus import register_command
from bot.telegram.transactions import in_session
from handlers.common import answer, require_role
from storage.models import Role

log = logging.getLogger(__name__)

register_command("review", Role.COORDINATOR)


def _reviewer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> review.Reviewer:
    ctx = app_context(context)
    assert update.effective_chat is not None
    codebook = codebook_for(ctx.settings, ctx.loaded)
    return review.Reviewer(update.effective_chat.id, codebook, ctx.renderer)


@require_role(Role.COORDINATOR)
async def review_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    r = _reviewer(update, context)
    # Codes answers not coded yet first: heavy work for the runner's worker thread.
    await answer(
        update, context, in_session(app_context(context), lambda s: review.start(s, r), heavy=True)
    )


@require_role(Role.COORDINATOR)
async def review_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    r, data = _reviewer(update, context), update.callback_query.data or ""  # type: ignore[union-attr]
    actor = update.effective_user.id  # type: ignore[union-attr]
    # A press may code the next answers in the queue: heavy work, off the event loop.
    run = in_session(
        app_context(context), lambda s: review.press(s, r, data, actor=actor), heavy=True
    )
    await answer(update, context, run)


def register(application: Application) -> None:  # type: ignore[type-arg]
    application.add_handler(CommandHandler("review", review_command))
    application.add_handler(CallbackQueryHandler(review_button, pattern=r"^rv:"))
