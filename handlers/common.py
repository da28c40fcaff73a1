"""Cross-cutting handler pieces: role checks, refusals, dialogs' typed lines, group chats,
errors, /help."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session
from telegram import Update
from telegram.ext import ApplicationHandlerStop, ContextTypes

from bot.kernel.context import AppContext
from bot.kernel.dialogs import Dialog, DialogError
from bot.kernel.people import role_of
from bot.kernel.reply import Reply
from bot.rounds.services import RoundError
from bot.telegram import menus
from bot.telegram.context import app_context
from bot.telegram.replies import deliver
from bot.telegram.transactions import in_session
from storage.models import Role

log = logging.getLogger(__name__)

Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[Any]]
H = TypeVar("H", bound=Handler)
D = TypeVar("D", bound=Dialog)


async def current_role(ctx: AppContext, user_id: int) -> Role | None:
    return await in_session(ctx, lambda session: role_of(session, ctx.settings, user_id))


def say(ctx: AppContext, template: str, **context: Any) -> Reply:
    """A Reply of one message from templates/messages/."""
    return Reply().say(ctx.renderer.render(f"messages/{template}", **context))


def refusal(update: Update, text: str) -> Reply:
    """Something the person can fix: an alert on their press, or a message."""
    if update.callback_query is not None:
        return Reply(toast=text[:190], alert=True)  # an alert holds at most 200 characters
    return Reply().say(text)


async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE, run: Awaitable[Reply]) -> None:
    """Deliver the Reply of a service run through the transaction runner (`run`, e.g.
    ``in_session(ctx, work)``). A DialogError or RoundError rolled the transaction back: it is
    said kindly instead."""
    ctx = app_context(context)
    try:
        reply = await run
    except DialogError as exc:  # its text may quote what the person typed: not logged
        log.info("refused update %s in a dialog", update.update_id)
        reply = refusal(update, str(exc))
    except RoundError as exc:
        log.info("refused update %s: %s", update.update_id, exc.reason)
        reply = refusal(update, exc.say(ctx.renderer))
    await deliver(update, context, reply)


def require_role(role: Role) -> Callable[[H], H]:
    """Let the handler run only for people with at least `role`; everyone else gets a short
    answer, the attempt is logged, and nothing changes."""

    def decorate(handler: H) -> H:
        @functools.wraps(handler)
        async def guarded(update: Update, context: ContextTypes.DEFAULT_TYPE) -> Any:
            ctx = app_context(context)
            user = update.effective_user
            have = await current_role(ctx, user.id) if user else None
            if have is None or menus.ROLE_RANK[have] < menus.ROLE_RANK[role]:
                log.warning(
                    "refused %s to user %s (role %s, needs %s)",
                    handler.__name__,
                    user.id if user else None,
                    have,
                    role,
                )
                text = ctx.renderer.render("messages/not_allowed.html", needed=role.value)
                await deliver(update, context, refusal(update, text))
                return None
            return await handler(update, context)

        return guarded  # type: ignore[return-value]

    return decorate


def acting_dialog(kind: type[D], update: Update, context: ContextTypes.DEFAULT_TYPE) -> D:
    """A guided dialog of `kind` in this chat, now, acted on by the person who sent the
    update (dialogs whose steps record who did them: /schedule, a sent draft)."""
    ctx = app_context(context)
    assert update.effective_chat is not None and update.effective_user is not None
    return kind(  # type: ignore[call-arg]
        chat_id=update.effective_chat.id,
        now=ctx.clock.now(),
        settings=ctx.settings,
        renderer=ctx.renderer,
        actor=update.effective_user.id,
    )


def dialog_text(waiting: Callable[[Session, int], bool], handle: Handler) -> Handler:
    """A handler for typed answers to a guided dialog: it takes a message only while
    `waiting(session, chat_id)` says this chat's dialog expects text, and then stops other
    handlers from seeing it; any other message goes on to them."""

    async def route(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        ctx = app_context(context)
        chat, message = update.effective_chat, update.effective_message
        if chat is None or message is None or not message.text:
            return
        chat_id = chat.id
        if not await in_session(ctx, lambda session: waiting(session, chat_id)):
            return
        await handle(update, context)
        raise ApplicationHandlerStop

    return route


async def private_chats_only(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Consultation answers are personal: the bot works only in private chats. In a group it
    answers a command addressed to it once, and otherwise stays quiet."""
    chat = update.effective_chat
    if chat is None or chat.type == chat.PRIVATE:
        return
    message = update.effective_message
    if message is not None and message.text and message.text.startswith("/"):
        await deliver(update, context, say(app_context(context), "private_only.html"))
    elif update.callback_query is not None:
        await deliver(update, context, Reply())
    log.info("ignored update %s from %s chat %s", update.update_id, chat.type, chat.id)
    raise ApplicationHandlerStop


async def help_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    user = update.effective_user
    role = await current_role(ctx, user.id) if user else None
    help_ = say(
        ctx,
        "help.html",
        role=(role or Role.MEMBER).value,
        commands=menus.commands_for(ctx.renderer, role),
        partnership=ctx.settings.partnership.name,
    )
    await deliver(update, context, help_)


async def unknown_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    message = update.effective_message
    command = ((message.text or "").split() or [""])[0] if message else ""
    user = update.effective_user  # its id only: the User carries a name and username
    log.info("unknown command from user %s", user.id if user else None)
    await deliver(update, context, say(ctx, "unknown_command.html", command=command[:40]))


async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Last resort: log with the stack, tell the person kindly, never crash the bot."""
    log.error("error while handling an update", exc_info=context.error)
    if not isinstance(update, Update):
        return
    try:
        await deliver(update, context, say(app_context(context), "error.html"))
    except Exception:  # the error reply itself may fail (403, network): nothing more to do
        log.debug("could not tell the user about the error", exc_info=True)


# Control characters never reach a service: PostgreSQL refuses a NUL byte in text, and none
# belongs in an answer, a finding or a date. Newlines and tabs stay.
_CONTROL = dict.fromkeys(c for c in (*range(0x20), *range(0x7F, 0xA0)) if chr(c) not in "\n\r\t")


def typed(text: str) -> str:
    """What a person typed, as every handler hands it to a service."""
    return text.translate(_CONTROL)
