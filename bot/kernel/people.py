"""Participants and their roles."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.kernel.audit import record
from bot.kernel.config import Settings
from storage.models import Participant, Role


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
