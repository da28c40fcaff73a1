"""Community members and leads: joining, answering, and staying in control of their data."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, ContextTypes

from bot.context import app_context
from bot.people import find_participant
from handlers.common import reply, set_command_menu
from storage.db import session_scope


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    user = update.effective_user
    if user is None:
        return
    with session_scope(ctx.sessions) as session:
        participant = find_participant(session, user.id)
        role = participant.role if participant else None
        if participant is not None and update.effective_chat is not None:
            participant.chat_id = update.effective_chat.id
        name = participant.display_name if participant else None
    if participant is None:
        text = ctx.renderer.render(
            "messages/welcome.html",
            partnership=ctx.settings.partnership.name,
            allow_individuals=ctx.settings.partnership.allow_individuals,
        )
    else:
        text = ctx.renderer.render("messages/welcome_back.html", name=name)
    await reply(update, text)
    if update.effective_chat is not None and role is not None:
        await set_command_menu(context.bot, update.effective_chat.id, role)


def register(application: Application) -> None:  # type: ignore[type-arg]
    """Add the participant handlers (group FEATURES); /start is registered by bot.app."""
