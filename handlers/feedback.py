"""Coordinators: record actions against a round's findings (a guided dialog, or one line for
those who know the form), and publish "you said, we did"."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.coding.stored import codebook_for
from bot.feedback import action_dialog, commands
from bot.kernel.dialogs import number
from bot.telegram.context import app_context
from bot.telegram.menus import register_command
from bot.telegram.replies import deliver
from bot.telegram.transactions import in_session
from handlers.common import answer, dialog_text, require_role, say, typed
from storage.models import Role

log = logging.getLogger(__name__)

# After /schedule's typed answers (-4) and before the features group (0): within one group only
# the first matching handler runs, so each dialog's typed lines need a group of their own.
DIALOG_GROUP = -3

register_command("action", Role.COORDINATOR)
register_command("actions", Role.COORDINATOR)
register_command("feedback", Role.COORDINATOR)


def _dialog(update: Update, context: ContextTypes.DEFAULT_TYPE) -> action_dialog.Dialog:
    ctx = app_context(context)
    assert update.effective_chat is not None
    return action_dialog.Dialog(
        chat_id=update.effective_chat.id,
        now=ctx.clock.now(),
        settings=ctx.settings,
        renderer=ctx.renderer,
        codebook=codebook_for(ctx.settings, ctx.loaded),
    )


@require_role(Role.COORDINATOR)
async def action_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/action or /action N: the guided dialog. /action N code | finding | action | owner |
    date: one line. /action done|drop|open ID: an action's status."""
    ctx = app_context(context)
    user, message = update.effective_user, update.effective_message
    if user is None or message is None:
        return
    body = typed(message.text or "").partition(" ")[2].strip()
    head, _, rest = body.partition(" ")
    d = _dialog(update, context)
    if not rest and (not head or number(head) is not None):
        # Offering findings compiles the round's digest: heavy work, off the event loop.
        run = in_session(ctx, lambda s: action_dialog.start(s, d, number(head)), heavy=True)
    else:
        run = in_session(
            ctx, lambda s: commands.one_line(s, d.renderer, d.codebook, head, rest, actor=user.id)
        )
    await answer(update, context, run)


@require_role(Role.COORDINATOR)
async def action_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A press in the /action dialog (``ac:...``); checked against the stored dialog."""
    d, data = _dialog(update, context), update.callback_query.data or ""  # type: ignore[union-attr]
    actor = update.effective_user.id  # type: ignore[union-attr]
    # Picking a round compiles its digest for the findings: heavy work, off the event loop.
    run = in_session(
        app_context(context), lambda s: action_dialog.press(s, d, data, actor=actor), heavy=True
    )
    await answer(update, context, run)


@require_role(Role.COORDINATOR)
async def _action_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    d, text = _dialog(update, context), typed(update.effective_message.text or "")  # type: ignore[union-attr]
    await answer(
        update, context, in_session(app_context(context), lambda s: action_dialog.text(s, d, text))
    )


@require_role(Role.COORDINATOR)
async def actions_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    round_id = number(" ".join(context.args or []))
    if round_id is None:
        await deliver(update, context, say(ctx, "action/usage.html", command="actions"))
        return
    d = _dialog(update, context)
    run = in_session(
        ctx, lambda s: commands.listing(s, d.renderer, d.codebook, round_id, now=d.now)
    )
    await answer(update, context, run)


@require_role(Role.COORDINATOR)
async def feedback_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    user = update.effective_user
    round_id = number(" ".join(context.args or []))
    if round_id is None or user is None:
        await deliver(update, context, say(ctx, "action/usage.html", command="feedback"))
        return
    partnership, now = ctx.settings.partnership.name, ctx.clock.now()
    run = in_session(
        ctx,
        lambda s: commands.publish(
            s, ctx.renderer, round_id, partnership=partnership, now=now, actor=user.id
        ),
    )
    await answer(update, context, run)


def register(application: Application) -> None:  # type: ignore[type-arg]
    application.add_handler(CommandHandler("action", action_command))
    application.add_handler(
        CallbackQueryHandler(action_button, pattern=rf"^{action_dialog.PREFIX}:")
    )
    application.add_handler(
        MessageHandler(
            filters.ChatType.PRIVATE & filters.TEXT & ~filters.COMMAND,
            dialog_text(action_dialog.waiting_for_text, _action_text),
        ),
        group=DIALOG_GROUP,
    )
    application.add_handler(CommandHandler("actions", actions_command))
    application.add_handler(CommandHandler("feedback", feedback_command))
