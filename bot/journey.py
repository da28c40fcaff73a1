"""A participant's way through a consultation round. Where someone is is always derived from
the database (their invitation and answers), never held in memory."""

from __future__ import annotations

from sqlalchemy.orm import Session

from bot.messages import Button, OutgoingMessage, rows
from bot.render import Renderer
from storage.models import Invitation


def invitation_message(
    session: Session, renderer: Renderer, invitation: Invitation, *, partnership: str
) -> OutgoingMessage:
    """The intro that opens a round for one person, with Start now / Later / Not this time."""
    round_ = invitation.round
    consultation = round_.consultation
    text = renderer.render(
        "messages/participant/invitation.html",
        title=consultation.title,
        partnership=partnership,
        intro=consultation.intro,
        minutes=consultation.estimated_minutes,
        questions=len(consultation.questions),
        closes_at=round_.closes_at,
    )
    return OutgoingMessage(
        text=text,
        buttons=rows(
            [Button("Start now", f"p:go:{invitation.id}")],
            [
                Button("Later", f"p:later:{invitation.id}"),
                Button("Not this time", f"p:no:{invitation.id}"),
            ],
        ),
    )
