"""Voluntary sector leads (and coordinators): digests in chat."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session
from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes

from bot.digests.digest import DigestError
from bot.digests.fanout import digest_for, scope_for, viewer
from bot.digests.render import chart_barriers, render_html, render_telegram
from bot.kernel.context import AppContext
from bot.kernel.reply import Document, Reply
from bot.telegram.context import app_context
from bot.telegram.menus import register_command
from bot.telegram.transactions import in_session
from handlers import feedback, review
from handlers.common import answer, require_role, say
from storage.models import Role

log = logging.getLogger(__name__)

register_command("digest", Role.LEAD)


def digest_reply(session: Session, ctx: AppContext, user_id: int, argument: str) -> Reply:
    """The digest a lead or coordinator asked for: its parts as messages, the barrier chart as
    a picture, and the printable HTML file."""
    v = viewer(session, ctx, user_id)
    if v is None:
        return say(ctx, "not_allowed.html", needed=Role.LEAD.value)
    try:
        scope = scope_for(session, ctx, v, argument)
    except DigestError as exc:
        return say(ctx, "lead/refused.html", error=str(exc))
    digest = digest_for(session, ctx, v, scope)
    renderer = ctx.renderer
    reply = Reply()
    for part in render_telegram(digest, renderer):
        reply.say(part)
    chart = chart_barriers(digest)
    if chart:
        caption = renderer.render("messages/lead/captions.html", of="chart")
        reply.documents.append(Document("chart.png", chart, caption, photo=True))
    name = f"digest-round-{scope.round_ids[0]}" if len(scope.round_ids) == 1 else "digest-quarter"
    reply.documents.append(
        Document(
            f"{name}.html",
            render_html(digest, renderer).encode("utf-8"),
            renderer.render("messages/lead/captions.html", of="file"),
        )
    )
    return reply


@require_role(Role.LEAD)
async def digest_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    user = update.effective_user
    if user is None:
        return
    argument = " ".join(context.args or [])[:20]
    # Compiling, coding and charting a digest is heavy work for the runner's worker thread.
    await answer(
        update,
        context,
        in_session(ctx, lambda s: digest_reply(s, ctx, user.id, argument), heavy=True),
    )


def register(application: Application) -> None:  # type: ignore[type-arg]
    """Add the lead handlers (group FEATURES), and the coordinators' review and feedback."""
    application.add_handler(CommandHandler("digest", digest_command))
    review.register(application)
    feedback.register(application)
