"""Coordinators: record actions against a round's findings, and publish "you said, we did"."""

from __future__ import annotations

from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes

from bot.context import app_context
from bot.digest import codebook_for, list_actions
from bot.feedback import (
    ONE_LINE_HELP,
    FeedbackError,
    add_action,
    closed_round,
    parse_action,
    publish_feedback,
    set_action_status,
)
from handlers.common import escape, register_command, reply, require_role
from storage.db import session_scope
from storage.models import ActionStatus, Role

register_command(
    "action", "Record an action: /action N code | heard | do | who | date", Role.COORDINATOR
)
register_command("actions", "List a round's actions: /actions N", Role.COORDINATOR)
register_command("feedback", "Send 'you said, we did' for round N", Role.COORDINATOR)

STATUS_WORDS = {"done": ActionStatus.DONE, "drop": ActionStatus.DROPPED, "open": ActionStatus.OPEN}


def _round_number(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() and len(text) < 10 else None


@require_role(Role.COORDINATOR)
async def action_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/action N code | finding | action | owner | date   or   /action done|drop|open ID"""
    ctx = app_context(context)
    user = update.effective_user
    message = update.effective_message
    if user is None or message is None:
        return
    body = (message.text or "").partition(" ")[2].strip()
    head, _, rest = body.partition(" ")
    codebook = codebook_for(ctx.settings, ctx.extras)
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
        await reply(update, escape(str(exc)))
        return
    await reply(update, escape(text))


@require_role(Role.COORDINATOR)
async def actions_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    round_id = _round_number(" ".join(context.args or []))
    if round_id is None:
        await reply(update, "Send /actions followed by a round number.")
        return
    codebook = codebook_for(ctx.settings, ctx.extras)
    with session_scope(ctx.sessions) as session:
        items = list_actions(session, [round_id], codebook=codebook, today=ctx.clock.now().date())
    if not items:
        await reply(update, escape(f"Round {round_id} has no actions yet.\n{ONE_LINE_HELP}"))
        return
    lines = [
        f"{a.id}. {escape(a.action)} – {escape(a.owner)}"
        f"{f', by {a.due_on:%d %b %Y}' if a.due_on else ''} "
        f"[{'overdue' if a.overdue else a.status}{', published' if a.published else ''}]"
        for a in items
    ]
    await reply(update, f"<b>Actions for round {round_id}</b>\n" + "\n".join(lines))


@require_role(Role.COORDINATOR)
async def feedback_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    user = update.effective_user
    round_id = _round_number(" ".join(context.args or []))
    if round_id is None or user is None:
        await reply(update, "Send /feedback followed by a round number.")
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
        await reply(update, escape(str(exc)))
        return
    await reply(
        update,
        f"Feedback on {actions} action{'s' if actions != 1 else ''} queued for {people} "
        f"{'person' if people == 1 else 'people'} who took part in round {round_id}.",
    )


def register(application: Application) -> None:  # type: ignore[type-arg]
    application.add_handler(CommandHandler("action", action_command))
    application.add_handler(CommandHandler("actions", actions_command))
    application.add_handler(CommandHandler("feedback", feedback_command))
