"""Voluntary sector leads (and coordinators): digests in chat."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from telegram import Update
from telegram.ext import Application, CommandHandler, ContextTypes

from bot.digests.compile import DigestError
from bot.digests.fanout import digest_for, scope_for, viewer
from bot.digests.render import chart_barriers, render_html, render_telegram
from bot.kernel.context import AppContext
from bot.telegram.context import app_context
from bot.telegram.menus import register_command
from bot.telegram.replies import send_html
from handlers import feedback, review
from handlers.common import escape, require_role
from storage.db import session_scope
from storage.models import Role

log = logging.getLogger(__name__)

register_command("digest", "Digest: /digest, /digest N or /digest quarter", Role.LEAD)


@dataclass
class _Rendered:
    parts: list[str]
    chart: bytes | None
    html: bytes
    name: str


def _build(ctx: AppContext, user_id: int, argument: str) -> _Rendered | str:
    """All the blocking work (database, coding, charts) in one worker thread."""
    with session_scope(ctx.sessions) as session:
        v = viewer(session, ctx, user_id)
        if v is None:
            return ctx.renderer.render("messages/not_allowed.html", needed=Role.LEAD.value)
        try:
            scope = scope_for(session, ctx, v, argument)
        except DigestError as exc:
            return escape(str(exc))
        digest = digest_for(session, ctx, v, scope)
    name = f"digest-round-{scope.round_ids[0]}" if len(scope.round_ids) == 1 else "digest-quarter"
    return _Rendered(
        parts=render_telegram(digest, ctx.renderer),
        chart=chart_barriers(digest),
        html=render_html(digest, ctx.renderer).encode("utf-8"),
        name=name,
    )


@require_role(Role.LEAD)
async def digest_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None:
        return
    argument = " ".join(context.args or [])[:20]
    result = await asyncio.to_thread(_build, ctx, user.id, argument)
    if isinstance(result, str):
        await send_html(update, result)
        return
    for part in result.parts:
        await send_html(update, part, disable_web_page_preview=True)
    if result.chart:
        await chat.send_photo(result.chart, caption="Barriers named: external against internal")
    await chat.send_document(
        result.html, filename=f"{result.name}.html", caption="The full digest, to open or print."
    )


def register(application: Application) -> None:  # type: ignore[type-arg]
    """Add the lead handlers (group FEATURES), and the coordinators' review and feedback."""
    application.add_handler(CommandHandler("digest", digest_command))
    review.register(application)
    feedback.register(application)
