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

from bot.digests.compile import codebook_for, list_actions
from bot.feedback import action_dialog
from bot.feedback.actions import (
    ONE_LINE_HELP,
    FeedbackError,
    add_action,
    closed_round,
    parse_action,
    publish_feedback,
    set_action_status,
)
from bot.kernel.context import AppContext
from bot.telegram.context import app_context
from bot.telegram.menus import register_command
from bot.telegram.replies import next_step, send_html, show
from handlers.common import dialog_text, escape, require_role
from storage.db import session_scope
from storage.models import ActionStatus, Role

log = logging.getLogger(__name__)

# After /schedule's typed answers (-4) and before the features group (0): within one group only
# the first matching handler runs, so each dialog's typed lines need a group of their own.
DIALOG_GROUP = -3

register_command(
    "action", "Record an action (a guided dialog): /action or /action N", Role.COORDINATOR
)
register_command("actions", "List a round's actions: /actions N", Role.COORDINATOR)
register_command("feedback", "Send 'you said, we did' for round N", Role.COORDINATOR)

STATUS_WORDS = {"done": ActionStatus.DONE, "drop": ActionStatus.DROPPED, "open": ActionStatus.OPEN}


def _round_number(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() and len(text) < 10 else None


def _dialog(ctx: AppContext, chat_id: int) -> action_dialog.Dialog:
    return action_dialog.Dialog(
        chat_id=chat_id,
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
    user, chat = update.effective_user, update.effective_chat
    message = update.effective_message
    if user is None or chat is None or message is None:
        return
    body = (message.text or "").partition(" ")[2].strip()
    head, _, rest = body.partition(" ")
    if not rest and (not head or _round_number(head) is not None):
        try:
            with session_scope(ctx.sessions) as session:
                screen = action_dialog.start(session, _dialog(ctx, chat.id), _round_number(head))
        except action_dialog.DialogError as exc:
            await send_html(update, str(exc))
            return
        await show(update, screen.message)
        return
    codebook = codebook_for(ctx.settings, ctx.loaded)
    try:
        with session_scope(ctx.sessions) as session:
            if head in STATUS_WORDS and _round_number(rest) is not None:
                action = set_action_status(session, int(rest), STATUS_WORDS[head], actor=user.id)
                text = f"Action {action.id} is now {action.status.value}."
            else:
                round_id = _round_number(head)
                if round_id is None or not rest:
                    raise FeedbackError(ONE_LINE_HELP)
                closed_round(session, round_id)
                action = add_action(session, round_id, parse_action(rest, codebook), actor=user.id)
                text = (
                    f"Action {action.id} recorded for round {round_id}. "
                    f"Send /feedback {round_id} to tell everyone who took part."
                )
    except FeedbackError as exc:
        await send_html(update, escape(str(exc)))
        return
    await send_html(update, escape(text))


@require_role(Role.COORDINATOR)
async def action_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A press in the /action dialog (``ac:...``); checked against the stored dialog."""
    ctx = app_context(context)
    query, chat, user = update.callback_query, update.effective_chat, update.effective_user
    if query is None or chat is None or user is None:
        return
    try:
        with session_scope(ctx.sessions) as session:
            screen = action_dialog.press(
                session, _dialog(ctx, chat.id), query.data or "", actor=user.id
            )
    except action_dialog.DialogError as exc:
        log.info("action button %r refused for %s", (query.data or "")[:64], user.id)
        await query.answer(str(exc)[:190], show_alert=True)
        return
    await next_step(update, screen.message)


@require_role(Role.COORDINATOR)
async def _action_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    chat, message = update.effective_chat, update.effective_message
    assert chat is not None and message is not None
    try:
        with session_scope(ctx.sessions) as session:
            screen = action_dialog.text(session, _dialog(ctx, chat.id), message.text or "")
    except action_dialog.DialogError as exc:
        await send_html(update, str(exc))
        return
    await show(update, screen.message)


@require_role(Role.COORDINATOR)
async def actions_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    round_id = _round_number(" ".join(context.args or []))
    if round_id is None:
        await send_html(update, "Send /actions followed by a round number.")
        return
    codebook = codebook_for(ctx.settings, ctx.loaded)
    with session_scope(ctx.sessions) as session:
        items = list_actions(session, [round_id], codebook=codebook, today=ctx.clock.now().date())
    if not items:
        await send_html(update, escape(f"Round {round_id} has no actions yet.\n{ONE_LINE_HELP}"))
        return
    lines = [
        f"{a.id}. {escape(a.action)} – {escape(a.owner)}"
        f"{f', by {a.due_on:%d %b %Y}' if a.due_on else ''} "
        f"[{'overdue' if a.overdue else a.status}{', published' if a.published else ''}]"
        for a in items
    ]
    await send_html(update, f"<b>Actions for round {round_id}</b>\n" + "\n".join(lines))


@require_role(Role.COORDINATOR)
async def feedback_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    user = update.effective_user
    round_id = _round_number(" ".join(context.args or []))
    if round_id is None or user is None:
        await send_html(update, "Send /feedback followed by a round number.")
        return
    try:
        with session_scope(ctx.sessions) as session:
            actions, people = publish_feedback(
                session,
                ctx.renderer,
                round_id,
                partnership=ctx.settings.partnership.name,
                now=ctx.clock.now(),
                actor=user.id,
            )
    except FeedbackError as exc:
        await send_html(update, escape(str(exc)))
        return
    await send_html(
        update,
        f"Feedback on {actions} action{'s' if actions != 1 else ''} queued for {people} "
        f"{'person' if people == 1 else 'people'} who took part in round {round_id}.",
    )


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
