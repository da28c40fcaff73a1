"""The application's context as handlers and jobs reach it through python-telegram-bot."""

from __future__ import annotations

from telegram.ext import ContextTypes

from bot.kernel.context import CONTEXT_KEY, AppContext


def app_context(context: ContextTypes.DEFAULT_TYPE) -> AppContext:
    ctx = context.bot_data[CONTEXT_KEY]
    assert isinstance(ctx, AppContext)
    return ctx
