"""Participants and their roles."""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.orm import Session

from bot.kernel.audit import record
from bot.kernel.config import Settings
from storage.models import Participant, ParticipantStatus, Role

# /stop and Telegram's 403 (blocked) both mean: nothing more is sent to that person, of any
# kind (invitations, reminders, digests, feedback, notices), until they /start again.
MESSAGEABLE = (ParticipantStatus.ACTIVE, ParticipantStatus.PAUSED)


def may_be_messaged() -> ColumnElement[bool]:
    """Whom the outbox may write to: they have a chat and have not stopped (or blocked) the
    bot. Every query that picks people to send something to applies this."""
    return Participant.chat_id.is_not(None) & Participant.status.in_(MESSAGEABLE)


def may_be_asked() -> ColumnElement[bool]:
    """Whom a round may invite or remind: may_be_messaged, and not paused (/pause holds back
    new rounds only; a lead's digest and "you said, we did" still reach them)."""
    return may_be_messaged() & (Participant.status == ParticipantStatus.ACTIVE)


def chat_may_be_messaged(session: Session, chat_id: int) -> bool:
    """For what is addressed to a chat rather than a participant (a coordinator's notices
    and sending progress): nobody in it has stopped or blocked the bot."""
    silenced = exists().where(
        Participant.chat_id == chat_id, Participant.status.not_in(MESSAGEABLE)
    )
    return not session.scalar(select(silenced))


def chat_language(session: Session, chat_id: int) -> str | None:
    """The language chosen by the person of a chat (a coordinator's, for their notices and
    sending progress); None: the deployment's default. A private chat's id is its person's
    Telegram id, which a coordinator's row has even before their chat is recorded."""
    return session.scalar(
        select(Participant.language)
        .where(
            or_(Participant.chat_id == chat_id, Participant.telegram_user_id == chat_id),
            Participant.language.is_not(None),
        )
        .limit(1)
    )


def find_participant(session: Session, telegram_user_id: int) -> Participant | None:
    return session.scalar(
        select(Participant).where(Participant.telegram_user_id == telegram_user_id)
    )


def role_of(session: Session, settings: Settings, telegram_user_id: int) -> Role | None:
    """The role someone acts in: admins named in the config are always coordinators."""
    if telegram_user_id in settings.partnership.admins:
        return Role.COORDINATOR
    participant = find_participant(session, telegram_user_id)
    return participant.role if participant is not None else None


def grant_role(
    session: Session, telegram_user_id: int, role: Role, *, actor: int | None = None
) -> Participant:
    """Give someone a role; creates their row if they have not talked to the bot yet."""
    participant = find_participant(session, telegram_user_id)
    if participant is None:
        participant = Participant(telegram_user_id=telegram_user_id, role=role)
        session.add(participant)
        session.flush()
    previous = participant.role
    participant.role = role
    record(
        session,
        "role.grant",
        actor=actor,
        subject=("participant", participant.id),
        details={"role": role.value, "previous": previous.value if previous else None},
    )
    return participant


def revoke_role(session: Session, telegram_user_id: int, *, actor: int | None = None) -> bool:
    """Back to a plain member. False if there was nobody to revoke."""
    participant = find_participant(session, telegram_user_id)
    if participant is None or participant.role == Role.MEMBER:
        return False
    previous = participant.role
    participant.role = Role.MEMBER
    record(
        session,
        "role.revoke",
        actor=actor,
        subject=("participant", participant.id),
        details={"previous": previous.value},
    )
    return True


def list_privileged(session: Session) -> list[Participant]:
    return list(
        session.scalars(
            select(Participant)
            .where(Participant.role != Role.MEMBER)
            .order_by(Participant.role, Participant.telegram_user_id)
        )
    )
