"""Small builders for test data, written through the real services where there is one."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from bot.consultations.catalogue import import_consultation
from bot.consultations.sets import load_consultation
from storage.models import (
    Consultation,
    Invitation,
    InvitationStatus,
    Organisation,
    Participant,
    ParticipantStatus,
    Role,
    Round,
    RoundStatus,
    utcnow,
)

SETS = Path(__file__).resolve().parents[2] / "templates" / "consultations"


def organisation(session: Session, name: str, **fields: Any) -> Organisation:
    org = Organisation(name=name, **fields)
    session.add(org)
    session.flush()
    return org


def participant(
    session: Session,
    telegram_user_id: int,
    *,
    role: Role = Role.MEMBER,
    organisation: Organisation | None = None,
    profile: dict[str, Any] | None = None,
    consented: bool = True,
    status: ParticipantStatus = ParticipantStatus.ACTIVE,
    display_name: str | None = None,
    answers_as: str | None = "organisation",
    language: str | None = None,
) -> Participant:
    person = Participant(
        telegram_user_id=telegram_user_id,
        chat_id=telegram_user_id,
        role=role,
        organisation=organisation,
        profile=profile or {},
        consent_at=utcnow() if consented else None,
        consent_notice_version="2026-11" if consented else None,
        status=status,
        display_name=display_name,
        answers_as=answers_as,
        language=language,
    )
    session.add(person)
    session.flush()
    return person


def consultation(session: Session, name: str = "partnership-health-check") -> Consultation:
    """Import one of the shipped sets (file name without .toml)."""
    row, _ = import_consultation(session, load_consultation(SETS / f"{name}.toml"))
    return row


def open_round(
    session: Session,
    consultation: Consultation,
    *,
    now: datetime | None = None,
    open_for: timedelta = timedelta(days=10),
    audience: dict[str, Any] | None = None,
) -> Round:
    now = now or utcnow()
    round_ = Round(
        consultation=consultation,
        audience=audience or {"everyone": True},
        status=RoundStatus.OPEN,
        opens_at=now,
        closes_at=now + open_for,
        opened_at=now,
    )
    session.add(round_)
    session.flush()
    return round_


def invitation(
    session: Session,
    round_: Round,
    person: Participant,
    *,
    status: InvitationStatus = InvitationStatus.DELIVERED,
) -> Invitation:
    invite = Invitation(
        round=round_,
        participant=person,
        status=status,
        organisation_id=person.organisation_id,
        # The language as profile.segment_of copies it (only when given, so older tests'
        # segments stay as they were).
        segment={**person.profile, **({"language": person.language} if person.language else {})},
    )
    session.add(invite)
    session.flush()
    return invite
