"""Opening a round: one Invitation per person in the audience and one outbox Delivery per
invitation to send, all in the caller's transaction, so a crash either invites everyone or
no one."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.kernel import i18n
from bot.kernel.audit import record
from bot.kernel.people import chat_language, chat_may_be_messaged
from bot.kernel.reply import OutgoingMessage
from bot.outbox.queue import enqueue
from bot.participation import cards
from bot.participation.profile import segment_of
from bot.rounds.audiences import belongs, busy_people, invitees
from bot.rounds.closing import skip_pending_events
from bot.rounds.services import RoundError, Services
from storage.models import Invitation, InvitationStatus, Participant, Round, RoundStatus


@dataclass
class OpenResult:
    invited: int = 0
    queued: int = 0
    left_out_orgs: list[str] = field(default_factory=list)
    opened: bool = True


def open_round(
    session: Session, round_: Round, *, now: datetime, services: Services, actor: int | None = None
) -> OpenResult:
    """Invite the audience: Invitations and Deliveries written in the caller's transaction."""
    if round_.status != RoundStatus.SCHEDULED:
        raise RoundError("not_scheduled", round_id=round_.id, status=round_.status.value)
    if round_.closes_at <= now:
        _missed(session, round_, now=now, actor=actor)
        return OpenResult(opened=False)
    people, left_out = invitees(
        session,
        round_.audience,
        now=now,
        cap=services.max_rounds_per_period,
        period_days=services.period_days,
    )
    busy = busy_people(session, [p.id for p in people], statuses=(InvitationStatus.STARTED,))
    round_.status = RoundStatus.OPEN
    round_.opened_at = now
    result = OpenResult(left_out_orgs=left_out)
    invitations: list[Invitation] = []
    for person in people:
        invitation = Invitation(
            round=round_,
            participant=person,
            status=InvitationStatus.QUEUED if person.id in busy else InvitationStatus.PENDING,
            segment=segment_of(person),
            organisation_id=person.organisation_id,
            invited_at=now,
        )
        session.add(invitation)
        invitations.append(invitation)
    session.flush()
    # Each invitation in its person's language, and for whoever chose none the deployment's,
    # never the language of the coordinator whose /schedule or /close made this run.
    with i18n.speaking(None):
        for invitation in invitations:
            if invitation.status == InvitationStatus.QUEUED:
                result.queued += 1
                continue
            person = invitation.participant
            assert person.chat_id is not None
            enqueue(
                session,
                chat_id=person.chat_id,
                message=cards.invitation_message(
                    session, services.renderer, invitation, partnership=services.partnership
                ),
                kind="invitation",
                participant_id=person.id,
                round_id=round_.id,
                invitation_id=invitation.id,
                dedupe_key=f"invite:{round_.id}:{person.id}",
                not_before=now,
            )
            result.invited += 1
    record(
        session,
        "round.open",
        actor=actor,
        subject=("round", round_.id),
        details={
            "invited": result.invited,
            "queued": result.queued,
            "left_out": result.left_out_orgs,
        },
    )
    if (
        round_.progress_chat_id
        and result.left_out_orgs
        and chat_may_be_messaged(session, round_.progress_chat_id)
    ):
        _tell_left_out(session, round_, result.left_out_orgs, now=now, services=services)
    return result


def invite_latecomer(
    session: Session, person: Participant, *, now: datetime, services: Services
) -> int:
    """Invite `person` to every open round they belong to that opened without them (they had
    paused or blocked the bot, or had not joined): how many. Written, not sent: the caller
    offers the first (bot.participation.journey.resume), as /resume and /start do."""
    if person.consent_at is None:
        return 0
    asked = select(Invitation.round_id).where(Invitation.participant_id == person.id)
    rounds = session.scalars(
        select(Round)
        .where(Round.status == RoundStatus.OPEN, Round.closes_at > now, Round.id.not_in(asked))
        .order_by(Round.opened_at, Round.id)
    ).all()
    cap, period = services.max_rounds_per_period, services.period_days
    missed = [r for r in rounds if belongs(session, person, r, cap=cap, period_days=period)]
    busy = bool(busy_people(session, [person.id], statuses=(InvitationStatus.STARTED,)))
    for round_ in missed:
        session.add(
            Invitation(
                round=round_,
                participant=person,
                status=InvitationStatus.QUEUED if busy else InvitationStatus.PENDING,
                segment=segment_of(person),
                organisation_id=person.organisation_id,
                invited_at=now,
            )
        )
        record(
            session,
            "round.latecomer",
            subject=("participant", person.id),
            details={"round_id": round_.id},
        )
    session.flush()  # the caller reads them with a Core statement next
    return len(missed)


def _missed(session: Session, round_: Round, *, now: datetime, actor: int | None) -> None:
    """A round whose time passed before it could open (downtime) closes unopened."""
    round_.status = RoundStatus.CLOSED
    round_.closed_at = now
    skip_pending_events(session, round_, now, note="round was over before it could open")
    record(
        session,
        "round.missed",
        actor=actor,
        subject=("round", round_.id),
        details={
            "opens_at": round_.opens_at.isoformat(),
            "closes_at": round_.closes_at.isoformat(),
        },
    )


def _tell_left_out(
    session: Session, round_: Round, names: list[str], *, now: datetime, services: Services
) -> None:
    """Tell the coordinator who opened the round which organisations the cap left out."""
    assert round_.progress_chat_id is not None
    with i18n.speaking(chat_language(session, round_.progress_chat_id)):
        text = services.renderer.render(
            "messages/coordinator/left_out.html",
            round=round_,
            names=names,
            cap=services.max_rounds_per_period,
            days=services.period_days,
        )
    enqueue(
        session,
        chat_id=round_.progress_chat_id,
        message=OutgoingMessage(text),
        kind="notice",
        round_id=round_.id,
        dedupe_key=f"leftout:{round_.id}",
        not_before=now,
    )
