"""A participant's way through a consultation round: the host of bot.participation.decide.
Every press, typed answer, other message and /resume is one read of where the person is
(bot.participation.state), one pure decision, one write of its effects
(bot.participation.store), all in the caller's transaction, and then the Reply that says what
the decision says (bot.participation.cards). Where someone is always comes from the database
(their invitations and answers), never from memory.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, bindparam, update

from bot.coding.stored import codebook_for
from bot.kernel import i18n
from bot.kernel.context import AppContext
from bot.kernel.reply import OutgoingMessage, Reply
from bot.participation.cards import invitation_message, render
from bot.participation.decide import Again, Event, Media, Resume, Typed, decide
from bot.participation.presses import Press
from bot.participation.state import QuestionsCache, read_state
from bot.participation.store import write
from storage.db import session_in
from storage.models import Invitation

log = logging.getLogger(__name__)


def handle_press(
    connection: Connection, ctx: AppContext, user_id: int, press: Press, *, again: bool = False
) -> Reply:
    """A press on a round's intro or a question card, by Telegram user `user_id`; `again`: one
    decided before, delivered again (decide.Again)."""
    event = Again(press) if again else press
    return _run(connection, ctx, user_id, event, target=press.invitation_id)  # type: ignore[return-value]


def where_they_are(connection: Connection, ctx: AppContext, user_id: int) -> Reply:
    """A typed message decided before, delivered again (decide.Again): where they are now."""
    return _run(connection, ctx, user_id, Again())  # type: ignore[return-value]


def handle_message(
    connection: Connection, ctx: AppContext, user_id: int, message: Typed | Media
) -> Reply | None:
    """Typed text (the answer to a text question, or a nudge back to what is waiting), or a
    sticker, photo...; None for someone who has not joined."""
    return _run(connection, ctx, user_id, message, joined_only=True)


def resume(connection: Connection, ctx: AppContext, user_id: int, *, quiet: bool = False) -> Reply:
    """Carry on where they left off, or offer the round that is waiting; with `quiet`, say
    nothing when nothing is."""
    return _run(connection, ctx, user_id, Resume(quiet=quiet))  # type: ignore[return-value]


def _run(
    connection: Connection,
    ctx: AppContext,
    user_id: int,
    event: Event,
    *,
    target: int | None = None,
    joined_only: bool = False,
) -> Reply | None:
    limit = ctx.settings.privacy.max_text_length
    questions = ctx.loaded.get(QuestionsCache)  # one per process
    state = read_state(
        connection, user_id, questions, target=target, text_limit=limit, language=i18n.current()
    )
    if joined_only and not state.joined:
        return None
    if state.language is not None:
        i18n.use(state.language)  # read with the rest: no statement of its own
    decision = decide(state, event, ctx.clock.now())
    if decision.refused:
        log.warning("refused %r from %s: %s", event, user_id, decision.refused)
    write(
        connection,
        decision.effects,
        lambda: codebook_for(ctx.settings, ctx.loaded),
        language=i18n.current(),  # a typed answer is coded in the language it was asked in
    )
    return render(
        decision, ctx.renderer, lambda invitation_id: _intro(connection, ctx, invitation_id)
    )


def _intro(connection: Connection, ctx: AppContext, invitation_id: int) -> OutgoingMessage:
    with session_in(ctx.sessions, connection) as session:
        invitation = session.get(Invitation, invitation_id)
        assert invitation is not None
        partnership = ctx.settings.partnership.name
        return invitation_message(session, ctx.renderer, invitation, partnership=partnership)


_REMEMBER_CARD = (
    update(Invitation.__table__)
    .where(Invitation.__table__.c.id == bindparam("invitation"))
    .values(prompt_message_id=bindparam("message_id"))
)


def remember_card(connection: Connection, invitation_id: int, message_id: int) -> None:
    """Note which chat message is the invitation's prompt card (after it was sent), so that a
    typed answer can take its buttons off."""
    connection.execute(_REMEMBER_CARD, {"invitation": invitation_id, "message_id": message_id})
