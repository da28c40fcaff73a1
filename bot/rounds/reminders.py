"""Reminders: a nudge, through the outbox, to everyone who has a round's invitation and has not
finished it. Sent by a REMIND event (bot.rounds.events) or by the coordinator's /remind N."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, contains_eager

from bot.kernel import i18n
from bot.kernel.audit import record
from bot.kernel.people import may_be_asked
from bot.outbox.queue import enqueue
from bot.participation.cards import reminder_message
from bot.rounds.services import RoundError, Services
from storage.models import Invitation, InvitationStatus, Round, RoundStatus

# Invitations that are still waiting for an answer: reminders go to these only.
NOT_FINISHED = (InvitationStatus.DELIVERED, InvitationStatus.STARTED)


def remind_round(
    session: Session,
    round_: Round,
    *,
    now: datetime,
    services: Services,
    key: str,
    actor: int | None = None,
) -> int:
    """Remind the people who have the invitation but have not finished. Returns how many."""
    if round_.status != RoundStatus.OPEN or round_.closes_at <= now:
        raise RoundError("not_open", round_id=round_.id)
    count = 0
    invitations = session.scalars(
        select(Invitation)
        .join(Invitation.participant)
        .options(contains_eager(Invitation.participant))
        .where(
            Invitation.round_id == round_.id,
            Invitation.status.in_(NOT_FINISHED),
            may_be_asked(),
        )
        .order_by(Invitation.id)
    )
    # Each reminder in its person's language, and for whoever chose none the deployment's,
    # never the language of the coordinator who sent /remind.
    with i18n.speaking(None):
        for invitation in invitations:
            person = invitation.participant
            assert person.chat_id is not None
            added = enqueue(
                session,
                chat_id=person.chat_id,
                message=reminder_message(
                    session, services.renderer, invitation, partnership=services.partnership
                ),
                kind="reminder",
                participant_id=person.id,
                round_id=round_.id,
                invitation_id=invitation.id,
                dedupe_key=f"remind:{invitation.id}:{key}",
                not_before=now,
            )
            if added is not None:
                invitation.reminded_at = now
                count += 1
    record(
        session,
        "round.remind",
        actor=actor,
        subject=("round", round_.id),
        details={"reminded": count, "key": key},
    )
    return count
