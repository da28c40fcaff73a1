"""Who is asked in a round: the audience (everyone, organisations or service users, narrowed
by organisation fields), its members today, and the fatigue cap that leaves out organisations
already asked too often."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from bot.digests.segments import segment_label, segment_names
from bot.kernel.people import may_be_asked
from bot.kernel.render import Renderer
from bot.participation.profile import area_of
from bot.rounds.services import RoundError
from storage.models import (
    Consultation,
    Invitation,
    InvitationStatus,
    Organisation,
    Participant,
    Round,
    RoundStatus,
)

SEGMENT_FIELDS = ("area", "size", "sector", "kind")
WHO = ("everyone", "organisations", "service_users")
ACTIVE_INVITATION = (
    InvitationStatus.PENDING,
    InvitationStatus.QUEUED,
    InvitationStatus.DELIVERED,
    InvitationStatus.STARTED,
)


def normalise_audience(audience: dict[str, Any] | None) -> dict[str, Any]:
    """Audience as stored: ``{"who": everyone|organisations|service_users, "where": {...}}``.

    ``where`` filters on a person's area (bot.participation.profile.area_of: their own answer,
    else their organisation's) and on organisation fields (size, sector, kind), where a
    participant's own profile answer of the same name counts too (service users have no
    organisation).
    """
    audience = dict(audience or {})
    who = audience.get("who", "everyone")
    if who not in WHO:
        raise RoundError("unknown_audience", who=str(who), known=WHO)
    where = {str(k): str(v) for k, v in (audience.get("where") or {}).items()}
    for key in where:
        if key not in SEGMENT_FIELDS:
            raise RoundError("unknown_segment", key=key, known=SEGMENT_FIELDS)
    return {"who": who, "where": where}


def describe_audience(renderer: Renderer, audience: dict[str, Any]) -> str:
    """The audience in words, for the coordinator (Telegram HTML): an area or size by its
    profile label in the reader's language ("North", "Gogledd")."""
    names = segment_names(renderer.templates)
    return renderer.render(
        "messages/coordinator/audience.html",
        audience=normalise_audience(audience),
        label=lambda key, value: segment_label(names, key, value),
    )


def intended_audience(consultation: Consultation) -> str:
    """Who a consultation set is written for: its file's audience_hint (organisations,
    service_users or everyone)."""
    return str((consultation.spec or {}).get("audience_hint") or "everyone")


def audience_mismatch(consultation: Consultation, audience: dict[str, Any]) -> str | None:
    """The audience `consultation` is written for, when the chosen one asks others too (the
    organisations' health check for everyone) or others instead; None when they agree. A set
    for everyone fits any audience, and narrowing by area, size or sector changes nothing."""
    intended = intended_audience(consultation)
    chosen = normalise_audience(audience)["who"]
    return intended if intended not in ("everyone", chosen) else None


def describe_mismatch(renderer: Renderer, intended: str, audience: dict[str, Any]) -> str:
    """The warning the coordinator sees before confirming (plain text, for the CLI too)."""
    return renderer.render(
        "messages/coordinator/audience_mismatch.html",
        intended=intended,
        chosen=normalise_audience(audience)["who"],
    )


def segment_value(person: Participant, key: str) -> str | None:
    """The person's value of a SEGMENT_FIELDS key, as targeting reads it: their area by
    area_of; an organisation field from the organisation, else their own profile answer."""
    if key == "area":
        return area_of(person)
    org = person.organisation
    have = getattr(org, key, None) if org is not None else None
    if have is None:
        have = (person.profile or {}).get(key)
    return None if have is None else str(have)


def _matches(person: Participant, audience: dict[str, Any]) -> bool:
    who = audience["who"]
    if who == "organisations" and not (
        person.organisation_id is not None or person.answers_as == "organisation"
    ):
        return False
    if who == "service_users" and person.answers_as != "service_user":
        return False
    for key, wanted in audience["where"].items():
        have = segment_value(person, key)
        if have is None or have.casefold() != wanted.casefold():
            return False
    return True


def audience_members(session: Session, audience: dict[str, Any]) -> list[Participant]:
    """Active, consented people in the audience. PAUSED, STOPPED and UNREACHABLE are left out."""
    audience = normalise_audience(audience)
    people = session.scalars(
        select(Participant)
        .options(selectinload(Participant.organisation))
        .where(may_be_asked(), Participant.consent_at.is_not(None))
        .order_by(Participant.id)
    )
    return [p for p in people if _matches(p, audience)]


def segment_values(session: Session, key: str, who: str = "everyone") -> list[str]:
    """The values of `key` that people of the audience `who` have, as targeting reads them
    (segment_value), for the dialog's buttons: each one asks somebody."""
    if key not in SEGMENT_FIELDS:
        raise RoundError("unknown_segment", key=key, known=SEGMENT_FIELDS)
    people = audience_members(session, {"who": who})
    return sorted({v for p in people if (v := segment_value(p, key))})


def invitees(
    session: Session, audience: dict[str, Any], *, now: datetime, cap: int, period_days: int
) -> tuple[list[Participant], list[str]]:
    """The audience's members less those of organisations already asked in `cap` or more
    rounds within the period (the fatigue cap), and those organisations' names."""
    people = audience_members(session, audience)
    org_ids = {p.organisation_id for p in people if p.organisation_id}
    if not org_ids:
        return people, []
    asked = session.execute(
        select(Invitation.organisation_id)
        .join(Round, Round.id == Invitation.round_id)
        .where(
            Invitation.organisation_id.in_(org_ids),
            Round.opened_at >= now - timedelta(days=period_days),
            Round.status.in_((RoundStatus.OPEN, RoundStatus.CLOSED)),
        )
        .group_by(Invitation.organisation_id)
        .having(func.count(func.distinct(Invitation.round_id)) >= cap)
    )
    capped = set(asked.scalars())
    names = session.scalars(
        select(Organisation.name).where(Organisation.id.in_(capped)).order_by(Organisation.name)
    )
    return [p for p in people if p.organisation_id not in capped], list(names)


def belongs(
    session: Session, person: Participant, round_: Round, *, cap: int, period_days: int
) -> bool:
    """Whether `person` is in `round_`'s audience and their organisation was not left out of it
    by the fatigue cap (as invitees() counted when it opened): the question for someone who
    was away (paused, blocked) when it opened."""
    if not _matches(person, normalise_audience(round_.audience)):
        return False
    org_id = person.organisation_id
    if org_id is None or round_.opened_at is None:
        return True
    asked_here = select(Invitation.id).where(
        Invitation.round_id == round_.id, Invitation.organisation_id == org_id
    )
    if session.scalar(asked_here.limit(1)) is not None:
        return True
    asked_before = session.scalar(
        select(func.count(func.distinct(Invitation.round_id)))
        .join(Round, Round.id == Invitation.round_id)
        .where(
            Invitation.organisation_id == org_id,
            Round.id != round_.id,
            Round.opened_at >= round_.opened_at - timedelta(days=period_days),
            Round.opened_at <= round_.opened_at,
            Round.status.in_((RoundStatus.OPEN, RoundStatus.CLOSED)),
        )
    )
    return (asked_before or 0) < cap


@dataclass
class AudiencePreview:
    size: int
    left_out_orgs: list[str]  # over the fatigue cap
    busy: int  # people with an invitation still active in an open round


def preview_audience(
    session: Session, audience: dict[str, Any], *, now: datetime, cap: int, period_days: int
) -> AudiencePreview:
    people, left_out = invitees(session, audience, now=now, cap=cap, period_days=period_days)
    busy = busy_people(session, [p.id for p in people])
    return AudiencePreview(len(people), left_out, len(busy))


def busy_people(
    session: Session, ids: list[int], *, statuses: tuple[Any, ...] = ACTIVE_INVITATION
) -> set[int]:
    if not ids:
        return set()
    busy: set[int] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        busy.update(
            session.scalars(
                select(Invitation.participant_id)
                .join(Round, Round.id == Invitation.round_id)
                .where(
                    Round.status == RoundStatus.OPEN,
                    Invitation.participant_id.in_(chunk),
                    Invitation.status.in_(statuses),
                )
            )
        )
    return busy
