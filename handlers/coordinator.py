"""Coordinators: scheduling and watching rounds. Thin adapters over bot.rounds.lifecycle,
bot.rounds.schedule_dialog and bot.telegram.sender; every command and button is coordinator-only."""

from __future__ import annotations

import logging
from typing import Any

from telegram import Update
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.rounds import lifecycle as rounds
from bot.rounds import schedule_dialog
from bot.rounds.services import round_services
from bot.telegram.context import app_context
from bot.telegram.jobs import tick_now, wake_sender
from bot.telegram.menus import register_command
from bot.telegram.replies import next_step, send_html, show
from handlers.common import dialog_text, require_role
from storage.db import session_scope
from storage.models import Role

log = logging.getLogger(__name__)

DIALOG_GROUP = -4  # before the features group, so typed dialog answers are not taken as answers

register_command("schedule", "Plan a consultation round", Role.COORDINATOR)
register_command("rounds", "Rounds and response rates", Role.COORDINATOR)
register_command("round", "One round in detail: /round N", Role.COORDINATOR)
register_command("remind", "Remind non-finishers: /remind N", Role.COORDINATOR)
register_command("close", "Close a round now: /close N", Role.COORDINATOR)
register_command("cancel", "Cancel a round: /cancel N", Role.COORDINATOR)


def _round_number(context: ContextTypes.DEFAULT_TYPE) -> int | None:
    args = context.args or []
    if len(args) != 1 or not args[0].lstrip("#").isdigit():
        return None
    return int(args[0].lstrip("#"))


# ------------------------------------------------------------------ /schedule dialog


@require_role(Role.COORDINATOR)
async def schedule_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    assert update.effective_chat is not None
    try:
        with session_scope(ctx.sessions) as session:
            screen = schedule_dialog.start(session, update.effective_chat.id, now=ctx.clock.now())
    except schedule_dialog.DialogError as exc:
        await send_html(update, str(exc))
        return
    await show(update, screen.message)


@require_role(Role.COORDINATOR)
async def schedule_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    query = update.callback_query
    assert (
        query is not None
        and update.effective_chat is not None
        and update.effective_user is not None
    )
    try:
        with session_scope(ctx.sessions) as session:
            screen = schedule_dialog.press(
                session,
                update.effective_chat.id,
                query.data or "",
                now=ctx.clock.now(),
                settings=ctx.settings,
                renderer=ctx.renderer,
                actor=update.effective_user.id,
            )
    except (schedule_dialog.DialogError, rounds.RoundError) as exc:
        await query.answer(str(exc)[:190], show_alert=True)
        return
    await next_step(update, screen.message)
    if screen.opens_now:
        await tick_now(ctx)


@require_role(Role.COORDINATOR)
async def _schedule_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    assert update.effective_chat is not None and update.effective_message is not None
    try:
        with session_scope(ctx.sessions) as session:
            screen = schedule_dialog.text(
                session,
                update.effective_chat.id,
                update.effective_message.text or "",
                now=ctx.clock.now(),
                settings=ctx.settings,
            )
    except schedule_dialog.DialogError as exc:
        await send_html(update, str(exc))
        return
    await show(update, screen.message)


# ------------------------------------------------------------------ watching and acting


@require_role(Role.COORDINATOR)
async def rounds_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    with session_scope(ctx.sessions) as session:
        text = ctx.renderer.render(
            "messages/coordinator/rounds.html", rounds=rounds.list_rounds(session)
        )
    await send_html(update, text)


@require_role(Role.COORDINATOR)
async def round_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    number = _round_number(context)
    if number is None:
        await send_html(update, "Which round? Send it like /round 3 (see /rounds).")
        return
    try:
        with session_scope(ctx.sessions) as session:
            round_ = rounds.get_round(session, number)
            stats = rounds.round_stats(session, round_)
            text = ctx.renderer.render(
                "messages/coordinator/round.html",
                s=stats,
                audience=rounds.describe_audience(round_.audience),
            )
    except rounds.RoundError as exc:
        await send_html(update, str(exc).capitalize() + ".")
        return
    await send_html(update, text)


async def _act(update: Update, context: ContextTypes.DEFAULT_TYPE, action: str) -> None:
    ctx = app_context(context)
    number = _round_number(context)
    if number is None:
        await send_html(update, f"Which round? Send it like /{action} 3 (see /rounds).")
        return
    assert update.effective_user is not None
    actor = update.effective_user.id
    now = ctx.clock.now()
    try:
        with session_scope(ctx.sessions) as session:
            round_ = rounds.get_round(session, number)
            if action == "remind":
                count = rounds.remind_round(
                    session,
                    round_,
                    now=now,
                    services=round_services(ctx),
                    key=f"m{now:%Y%m%d%H%M}",
                    actor=actor,
                )
                text = (
                    f"Reminding {count} {'person' if count == 1 else 'people'} "
                    f"who have not finished round #{number}."
                )
            elif action == "close":
                rounds.close_round(
                    session, round_, now=now, actor=actor, on_closed=round_services(ctx).on_closed
                )
                text = f"Round #{number} is closed."
            else:
                if round_.status.value not in ("scheduled", "open"):
                    raise rounds.RoundError(f"round {number} is already {round_.status.value}")
                message = schedule_dialog.cancel_buttons(round_)
                await show(update, message)
                return
    except rounds.RoundError as exc:
        await send_html(update, str(exc).capitalize() + ".")
        return
    await send_html(update, text)
    wake_sender(ctx)


@require_role(Role.COORDINATOR)
async def remind_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _act(update, context, "remind")


@require_role(Role.COORDINATOR)
async def close_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _act(update, context, "close")


@require_role(Role.COORDINATOR)
async def cancel_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await _act(update, context, "cancel")


@require_role(Role.COORDINATOR)
async def cancel_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """``co:x:<round>`` cancels, ``co:k:<round>`` keeps; the round is checked afresh."""
    ctx = app_context(context)
    query = update.callback_query
    assert query is not None and update.effective_user is not None
    parts = (query.data or "").split(":")
    if len(parts) != 3 or not parts[2].isdigit():
        await query.answer("I did not recognise that button.", show_alert=True)
        return
    number = int(parts[2])
    if parts[1] == "k":
        await query.answer("Kept.")
        await send_html(update, f"Round #{number} stays as it is.")
        return
    if parts[1] not in ("x", "xs"):
        await query.answer("I did not recognise that button.", show_alert=True)
        return
    actor, now = update.effective_user.id, ctx.clock.now()
    try:
        with session_scope(ctx.sessions) as session:
            round_ = rounds.get_round(session, number)
            rounds.cancel_round(session, round_, now=now, actor=actor)
            stopped = (
                rounds.stop_series(session, round_, now=now, actor=actor)
                if parts[1] == "xs"
                else None
            )
    except rounds.RoundError as exc:
        await query.answer(str(exc).capitalize() + ".", show_alert=True)
        return
    await query.answer("Cancelled.")
    text = f"Round #{number} is cancelled."
    if stopped is not None:
        text += f" The series is stopped: no more rounds will be planned ({stopped} withdrawn)."
    await send_html(update, text)


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
    application.add_handler(CallbackQueryHandler(cancel_button, pattern=r"^co:(x|xs|k):"))
    application.add_handler(
        MessageHandler(
            filters.ChatType.PRIVATE & _DialogWaiting(),
            dialog_text(schedule_dialog.waiting_for_text, _schedule_text),
        ),
        group=DIALOG_GROUP,
    )
