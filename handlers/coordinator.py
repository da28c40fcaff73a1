"""Coordinators: scheduling and watching rounds. Thin adapters over bot.rounds.commands and
bot.rounds.schedule_dialog; every command and button is coordinator-only."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session
from telegram import Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.kernel.dialogs import number
from bot.kernel.reply import Reply
from bot.rounds import commands, schedule_dialog
from bot.rounds.services import round_services
from bot.telegram.context import app_context
from bot.telegram.jobs import tick_now, wake_sender
from bot.telegram.menus import register_command
from bot.telegram.replies import deliver
from bot.telegram.transactions import in_session
from handlers.common import acting_dialog, answer, dialog_text, require_role, say, typed
from storage.models import Role

log = logging.getLogger(__name__)

DIALOG_GROUP = -4  # before the features group, so typed dialog answers are not taken as answers

register_command("schedule", Role.COORDINATOR)
register_command("rounds", Role.COORDINATOR)
register_command("round", Role.COORDINATOR)
register_command("remind", Role.COORDINATOR)
register_command("close", Role.COORDINATOR)
register_command("cancel", Role.COORDINATOR)


def round_argument(context: ContextTypes.DEFAULT_TYPE) -> int | None:
    """The round number of ``/round 3`` or ``/round #3``; None if it is missing or not one."""
    args = context.args or []
    return number(args[0].removeprefix("#")) if len(args) == 1 else None


def _dialog(update: Update, context: ContextTypes.DEFAULT_TYPE) -> schedule_dialog.Dialog:
    return acting_dialog(schedule_dialog.Dialog, update, context)


# ------------------------------------------------------------------ /schedule dialog


@require_role(Role.COORDINATOR)
async def schedule_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    d = _dialog(update, context)
    run = in_session(app_context(context), lambda session: schedule_dialog.start(session, d))
    await answer(update, context, run)


@require_role(Role.COORDINATOR)
async def schedule_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    d, data = _dialog(update, context), update.callback_query.data or ""  # type: ignore[union-attr]
    await answer(update, context, in_session(ctx, lambda s: schedule_dialog.press(s, d, data)))
    if data == schedule_dialog.CONFIRM:  # a round that opens now is opened at once
        await tick_now(ctx)


@require_role(Role.COORDINATOR)
async def _schedule_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    d, text = _dialog(update, context), typed(update.effective_message.text or "")  # type: ignore[union-attr]
    run = in_session(app_context(context), lambda s: schedule_dialog.text(s, d, text))
    await answer(update, context, run)


# ------------------------------------------------------------------ watching and acting


@require_role(Role.COORDINATOR)
async def rounds_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    services = round_services(ctx)
    await answer(update, context, in_session(ctx, lambda s: commands.overview(s, services)))


async def _round_command(update: Update, context: ContextTypes.DEFAULT_TYPE, command: str) -> None:
    """/round, /remind, /close and /cancel N: the number checked here, the rest in the service."""
    ctx = app_context(context)
    number = round_argument(context)
    if number is None:
        await deliver(update, context, say(ctx, "coordinator/usage.html", command=command))
        return
    assert update.effective_user is not None
    services, now, actor = round_services(ctx), ctx.clock.now(), update.effective_user.id

    def work(session: Session) -> Reply:
        if command == "round":
            return commands.detail(session, services, number)
        if command == "remind":
            return commands.remind(session, services, number, now=now, actor=actor)
        if command == "close":
            return commands.ask_close(session, services, number)
        return commands.ask_cancel(session, services, number)

    await answer(update, context, in_session(ctx, work))
    if command == "remind":
        wake_sender(ctx)


@require_role(Role.COORDINATOR)
async def round_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _round_command(update, context, "round")


@require_role(Role.COORDINATOR)
async def remind_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _round_command(update, context, "remind")


@require_role(Role.COORDINATOR)
async def close_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _round_command(update, context, "close")


@require_role(Role.COORDINATOR)
async def cancel_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _round_command(update, context, "cancel")


@require_role(Role.COORDINATOR)
async def ending_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """``co:c:<round>`` closes, ``co:x:<round>`` cancels, ``co:xs:<round>`` also stops its
    series, ``co:k:<round>`` keeps it as it is."""
    ctx = app_context(context)
    assert update.callback_query is not None and update.effective_user is not None
    data, actor = update.callback_query.data or "", update.effective_user.id
    services, now = round_services(ctx), ctx.clock.now()
    closing = commands.is_close_press(data)
    # Closing compiles and queues the round's digests: heavy work for the runner's thread.
    run = in_session(
        ctx,
        lambda s: commands.answer_ending(s, services, data, now=now, actor=actor),
        heavy=closing,
    )
    await answer(update, context, run)
    if closing:
        wake_sender(ctx)


class _DialogWaiting(filters.MessageFilter):
    def filter(self, message: Any) -> bool:
        return bool(message.text) and not message.text.startswith("/")


def register(application: Application) -> None:  # type: ignore[type-arg]
    """Add the coordinator handlers (group FEATURES)."""
    application.add_handler(CommandHandler("schedule", schedule_command))
    application.add_handler(CommandHandler("rounds", rounds_command))
    application.add_handler(CommandHandler("round", round_command))
    application.add_handler(CommandHandler("remind", remind_command))
    application.add_handler(CommandHandler("close", close_command))
    application.add_handler(CommandHandler("cancel", cancel_command))
    application.add_handler(CallbackQueryHandler(schedule_button, pattern=r"^co:s:"))
    application.add_handler(CallbackQueryHandler(ending_button, pattern=r"^co:(c|x|xs|k):"))
    application.add_handler(
        MessageHandler(
            filters.ChatType.PRIVATE & _DialogWaiting(),
            dialog_text(schedule_dialog.waiting_for_text, _schedule_text),
        ),
        group=DIALOG_GROUP,
    )
