"""Community members and leads: joining, answering, and staying in control of their data.

Each handler parses the update (a press's callback data once, by bot.participation.presses),
calls one service of bot.participation in one transaction, and only after the commit talks to
Telegram, so what a person said is stored before anything is sent back.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import replace

from sqlalchemy import Connection
from sqlalchemy.orm import Session
from telegram import Update
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    ChatMemberHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.kernel.context import AppContext
from bot.kernel.people import find_participant
from bot.kernel.reply import OutgoingMessage, Reply
from bot.participation import joining, journey, mydata, presses
from bot.participation.decide import Media, Typed
from bot.participation.invites import (
    create_invite,
    invite_message,
    lead_invite,
    parse_invite_args,
)
from bot.rounds.opening import invite_latecomer
from bot.rounds.services import round_services
from bot.telegram import replies, transactions
from bot.telegram.context import app_context
from bot.telegram.menus import register_command
from handlers.common import answer, require_role, typed
from storage.db import after_erasure, session_in
from storage.models import Participant, ParticipantStatus, Role

log = logging.getLogger(__name__)
T = "messages/participant/"
_UNREAD = object()

register_command("resume")
register_command("profile")
register_command("pause")
register_command("stop")
register_command("mydata")
register_command("forget")
register_command("language")
register_command("invite", Role.COORDINATOR)


def _participant_service(
    service: Callable[[Session, AppContext, Participant], Reply], *, agreed: bool = True
) -> Callable[[Update, ContextTypes.DEFAULT_TYPE], object]:
    """A command for people who have joined and agreed to the notice (or, not `agreed`, for
    anyone with a row: staff granted a role before they joined); others are told how to
    join."""

    async def handler(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        ctx = app_context(context)
        user = update.effective_user
        if user is None:
            return

        def decide(session: Session) -> Reply:
            participant = find_participant(session, user.id)
            if participant is None or (agreed and participant.consent_at is None):
                return Reply().say(ctx.renderer.render(T + "not_joined.html"))
            return service(session, ctx, participant)

        await replies.deliver(update, context, await _decided(ctx, user.id, decide))

    handler.__name__ = getattr(service, "__name__", "participant_command")
    return handler


async def _decided(ctx: AppContext, user_id: int, decide: Callable[[Session], Reply]) -> Reply:
    """A service's decision for one person's update, in one transaction: their updates one
    at a time, and off the event loop on a server database (transactions.in_session)."""
    return await transactions.in_session(ctx, decide, person=user_id)


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    user, chat = update.effective_user, update.effective_chat
    if user is None or chat is None:
        return
    code = typed(context.args[0]) if context.args else None

    def decide(session: Session) -> Reply:
        participant = find_participant(session, user.id) if code is None else None
        if participant is not None:  # coming back: offered what opened while away
            _invite_latecomer(session, ctx, participant)
        return joining.start(session, ctx, user.id, chat.id, code)

    await replies.deliver(update, context, await _decided(ctx, user.id, decide))


def _choose_language(session: Session, ctx: AppContext, participant: Participant) -> Reply:
    """/language: anyone with a row (participants, leads, coordinators) chooses theirs."""
    return Reply().say(joining.choose_language(ctx))


def _invite_latecomer(session: Session, ctx: AppContext, participant: Participant) -> None:
    invite_latecomer(session, participant, now=ctx.clock.now(), services=round_services(ctx))


def _resume(session: Session, ctx: AppContext, participant: Participant) -> Reply:
    """/resume: any open round they belong to that opened while they were away (paused,
    blocked) waits with the rest, and what waits first is offered."""
    _invite_latecomer(session, ctx, participant)
    return joining.resume_command(session, ctx, participant)


async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    query, user, chat = update.callback_query, update.effective_user, update.effective_chat
    if query is None or user is None or chat is None:
        return
    press = presses.parse(query.data or "")
    if isinstance(press, presses.Press) and query.message is not None:
        press = replace(press, on=query.message.message_id)
    first_here = transactions.first_seen_here(context, update)
    try:
        reply = await transactions.in_transaction(
            ctx, lambda connection: _press(connection, ctx, context, update, press), person=user.id
        )
    except transactions.DuplicateUpdate:
        if not first_here:  # decided here: its reply is on its way, or went
            log.info("dropped duplicate update %s", update.update_id)
            return
        reply = await _pressed_again(ctx, user.id, update.update_id, press)
    if isinstance(press, presses.ForgetPress) and press.yes:
        await _after_erasure(ctx, update)
    await replies.deliver(update, context, reply)


async def _after_erasure(ctx: AppContext, update: Update) -> None:
    """The erasure has committed: now (outside any transaction) leave no copy of what it
    deleted in SQLite's write-ahead log (storage.db.after_erasure)."""
    if not await asyncio.to_thread(after_erasure, ctx.engine):
        # The update id only: the person asked to be forgotten.
        log.warning(
            "erasure (update %s) committed, but a reader kept the write-ahead log from being "
            "truncated: it may hold the erased rows until later writes overwrite them",
            update.update_id,
        )


async def _pressed_again(
    ctx: AppContext, user_id: int, update_id: int, press: presses.AnyPress | None
) -> Reply:
    """A press decided by a process now gone, whose reply may never have been sent (Telegram
    delivers again what that process never confirmed): a card brought to where the person is;
    any other press just has its spinner stopped."""
    log.info("update %s delivered again after a restart", update_id)
    if not isinstance(press, presses.Press):
        return Reply(toast="")
    return await transactions.in_transaction(
        ctx,
        lambda connection: journey.handle_press(connection, ctx, user_id, press, again=True),
        person=user_id,
    )


async def _typed_again(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A typed message decided by a process now gone (see _pressed_again): where they are."""
    ctx = app_context(context)
    user = update.effective_user
    assert user is not None
    reply = await transactions.in_transaction(
        ctx, lambda connection: journey.where_they_are(connection, ctx, user.id), person=user.id
    )
    await replies.deliver(update, context, reply)


def _is_typed(update: Update) -> bool:
    message = update.message
    return (
        message is not None
        and message.chat.type == "private"
        and bool(message.text)
        and not (message.text or "").startswith("/")
    )


def _press(
    connection: Connection,
    ctx: AppContext,
    context: ContextTypes.DEFAULT_TYPE,
    update: Update,
    press: presses.AnyPress | None,
) -> Reply:
    """Every button of this module and any malformed one, in one transaction with the
    duplicate check: the guards left both it and the stopped question to this handler."""
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    if getattr(context, "participant_status", None) is transactions.CLAIMED_BY_HANDLER:
        transactions.claim_update(connection, update, ctx.clock.now())
    if isinstance(press, presses.Press):
        return journey.handle_press(connection, ctx, user.id, press)  # it knows who stopped
    if transactions.sender_status(connection, update) == ParticipantStatus.STOPPED:
        return _stopped_hint(ctx)
    if press is None:
        return _bad_button(ctx, update)
    with session_in(ctx.sessions, connection) as session:
        if isinstance(press, presses.ForgetPress):
            return _forget_press(session, ctx, user.id, press.yes)
        return joining.handle_press(session, ctx, user.id, chat.id, user.full_name, press)


def _forget_press(session: Session, ctx: AppContext, user_id: int, yes: bool) -> Reply:
    if not yes:
        text = ctx.renderer.render(T + "forget_cancelled.html")
        return Reply(toast="", edit=OutgoingMessage(text))
    erased = mydata.forget(session, ctx, user_id)
    template = "forgotten.html" if erased else "nothing_to_forget.html"
    return Reply(toast="", edit=OutgoingMessage(ctx.renderer.render(T + template)))


def _bad_button(ctx: AppContext, update: Update) -> Reply:
    """Callback data in no format anyone uses: forged or corrupted. Say so briefly, log it."""
    query = update.callback_query
    log.warning(
        "malformed callback %r from %s",
        (query.data or "")[:64] if query else None,
        update.effective_user.id if update.effective_user else None,
    )
    return Reply(toast="").say(ctx.renderer.render(T + "bad_button.html"))


async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is not None and message.text is not None:
        await _journey_or_join(update, context, Typed(typed(message.text)))


async def on_other(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    if message is not None:
        # The kind's words are the template's (not_text.html), in the person's language.
        kind = next((k for k in MEDIA_KINDS if getattr(message, k, None)), "message")
        await _journey_or_join(update, context, Media(kind))


MEDIA_KINDS = ("sticker", "photo", "voice", "location", "video", "audio", "document", "contact")


async def _journey_or_join(
    update: Update, context: ContextTypes.DEFAULT_TYPE, event: Typed | Media
) -> None:
    """A message decided by the journey for someone who has joined; anyone else is answered
    as /start would."""
    ctx = app_context(context)
    user, message = update.effective_user, update.effective_message
    if user is None or message is None:
        return
    chat_id = message.chat_id

    def decide(connection: Connection) -> Reply:
        reply = journey.handle_message(connection, ctx, user.id, event)
        if reply is not None:
            return reply
        with session_in(ctx.sessions, connection) as session:
            return joining.start(session, ctx, user.id, chat_id, None)

    reply = await transactions.in_transaction(ctx, decide, person=user.id)
    await replies.deliver(update, context, reply)


async def stopped_guard(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """After /stop the bot sends nothing unasked and answers only /start (and a hint)."""
    user = update.effective_user
    if user is None or update.my_chat_member is not None:
        return
    message = update.effective_message
    if message is not None and (message.text or "").split("@")[0].split()[:1] == ["/start"]:
        return
    ctx = app_context(context)
    # Read with the duplicate check, in its transaction (handlers.common); one column, not the
    # ORM row, if this runs without it.
    status = getattr(context, "participant_status", _UNREAD)
    if status is transactions.CLAIMED_BY_HANDLER:
        return  # the handler reads it in its own transaction
    if status is _UNREAD:
        status = await transactions.in_transaction(
            ctx, lambda connection: transactions.sender_status(connection, update)
        )
    if status != ParticipantStatus.STOPPED:
        return
    await replies.deliver(update, context, _stopped_hint(ctx))
    raise ApplicationHandlerStop


async def on_edited(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """An edit is neither an answer nor a command (it would be stored as the next answer, or
    the command run again): say how to change an answer instead."""
    text = app_context(context).renderer.render(T + "edited.html")
    await replies.deliver(update, context, Reply().say(text))
    raise ApplicationHandlerStop


def _stopped_hint(ctx: AppContext) -> Reply:
    return Reply(toast="").say(ctx.renderer.render(T + "stopped_hint.html"))


async def on_my_chat_member(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """The person blocked the bot (kicked) or left: stop sending. /start brings them back."""
    member = update.my_chat_member
    if member is None or member.chat.type != "private":
        return
    if member.new_chat_member.status in ("kicked", "left"):
        user_id = member.from_user.id
        await transactions.in_session(
            app_context(context), lambda session: joining.mark_unreachable(session, user_id)
        )


def _pause(session: Session, ctx: AppContext, participant: Participant) -> Reply:
    return joining.set_status(session, ctx, participant, ParticipantStatus.PAUSED)


def _stop(session: Session, ctx: AppContext, participant: Participant) -> Reply:
    return joining.set_status(session, ctx, participant, ParticipantStatus.STOPPED)


def _forget(session: Session, ctx: AppContext, participant: Participant) -> Reply:
    return mydata.confirm_forget(ctx)


@require_role(Role.COORDINATOR)
async def invite_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    user = update.effective_user
    try:
        options = parse_invite_args(list(context.args or []))
    except ValueError as exc:
        text = ctx.renderer.render("messages/invites/usage.html", problem=str(exc))
        await replies.deliver(update, context, Reply().say(text))
        return
    username = context.bot.username

    def create(session: Session) -> Reply:
        invite = create_invite(
            session,
            now=ctx.clock.now(),
            created_by=user.id if user else None,
            **options,  # type: ignore[arg-type]
        )
        return Reply().say(invite_message(ctx.renderer, invite, username))

    await replies.deliver(update, context, await transactions.in_session(ctx, create))


@require_role(Role.COORDINATOR)
async def lead_invite_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """``iv:lead:<organisation>``, under an organisation's invite: a link for its lead."""
    ctx = app_context(context)
    assert update.callback_query is not None and update.effective_user is not None
    data, actor = update.callback_query.data or "", update.effective_user.id
    username, now = context.bot.username, ctx.clock.now()
    run = transactions.in_session(
        ctx,
        lambda s: lead_invite(s, ctx.renderer, data, now=now, bot_username=username, actor=actor),
    )
    await answer(update, context, run)


# The callback data on_press answers: the first part of this module's (presses.parse reads the
# rest), and anything without a short lowercase prefix (malformed, answered as such). Other
# features use their own prefixes.
OWN_PRESSES = rf"^({'|'.join(presses.PREFIXES)}):|^(?![a-z]{{1,4}}:)"
_OWN_PRESS = re.compile(OWN_PRESSES)


def _is_own_press(update: Update) -> bool:
    query = update.callback_query
    return query is not None and bool(_OWN_PRESS.match(query.data or ""))


MEDIA = (
    filters.Sticker.ALL
    | filters.PHOTO
    | filters.VOICE
    | filters.LOCATION
    | filters.VIDEO
    | filters.AUDIO
    | filters.Document.ALL
    | filters.CONTACT
)


def register(application: Application) -> None:  # type: ignore[type-arg]
    """Add the participant handlers (group FEATURES); /start is registered by bot.app."""
    # Groups: after bot.app's guards, before the dialogs' typed lines (-4, -3) and features.
    application.add_handler(TypeHandler(Update, stopped_guard), group=-6)
    edits = MessageHandler(filters.UpdateType.EDITED_MESSAGE, on_edited)
    application.add_handler(edits, group=-5)
    application.add_handler(ChatMemberHandler(on_my_chat_member, ChatMemberHandler.MY_CHAT_MEMBER))
    commands = {
        "resume": _resume,
        "profile": joining.profile_command,
        "pause": _pause,
        "stop": _stop,
        "mydata": mydata.mydata,
        "forget": _forget,
    }
    for name, service in commands.items():
        application.add_handler(CommandHandler(name, _participant_service(service)))
    application.add_handler(CommandHandler("invite", invite_command))
    language = _participant_service(_choose_language, agreed=False)
    application.add_handler(CommandHandler("language", language))
    application.add_handler(CallbackQueryHandler(lead_invite_button, pattern=r"^iv:"))
    application.add_handler(CallbackQueryHandler(on_press, pattern=OWN_PRESSES))
    # on_press checks for duplicates in its own transaction: one commit per button, not two.
    transactions.claimed_by_handler(_is_own_press)
    transactions.when_delivered_again(_is_typed, _typed_again)
    application.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, on_text))
    application.add_handler(MessageHandler(MEDIA, on_other))
