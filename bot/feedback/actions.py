"""Closing the loop, "you said, we did": actions recorded against a round's findings, and the
feedback message sent to everyone who took part."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from bot.coding.codebook import Codebook
from bot.kernel import i18n
from bot.kernel.audit import record
from bot.kernel.people import may_be_messaged
from bot.kernel.render import Renderer
from bot.kernel.reply import OutgoingMessage
from bot.outbox.queue import enqueue
from storage.models import (
    Action,
    ActionStatus,
    Consultation,
    Invitation,
    InvitationStatus,
    Participant,
    Round,
    RoundStatus,
)

MAX_FIELD = 500
MAX_OWNER = 120  # Action.owner's column


class FeedbackError(Exception):
    """Something the coordinator can fix: `reason` and `details` for
    templates/messages/action/error.html, which says it to them."""

    def __init__(self, reason: str, **details: Any) -> None:
        super().__init__(reason, details)
        self.reason = reason
        self.details = details


@dataclass(frozen=True)
class ActionInput:
    barrier_code: str | None
    finding: str
    action: str
    owner: str
    due_on: date | None


@dataclass(frozen=True)
class FeedbackItem:
    """One published action, for the next round's intro."""

    round_id: int
    consultation: str
    finding: str
    action: str
    owner: str
    due_on: date | None
    status: str
    published_at: datetime


def parse_action(text: str, codebook: Codebook) -> ActionInput:
    """Parse 'code | finding | action | owner | date' (code may be '-', date optional)."""
    parts = [p.strip() for p in text.split("|")]
    if len(parts) not in (4, 5) or not all(parts[:4]):
        raise FeedbackError("form")
    code, finding, action, owner = parts[:4]
    if code in ("-", "none"):
        barrier: str | None = None
    elif code in codebook:
        barrier = code
    else:
        known = [c.code for c in codebook.codes]
        raise FeedbackError("unknown_code", code=code[:40], known=known)
    due = parse_due(parts[4]) if len(parts) == 5 and parts[4] else None
    for name, value in (("finding", finding), ("action", action), ("owner", owner)):
        if len(value) > (MAX_OWNER if name == "owner" else MAX_FIELD):
            raise FeedbackError("too_long", field=name)
    return ActionInput(barrier, finding, action, owner, due)


def parse_due(text: str) -> date:
    """A due date written as YYYY-MM-DD."""
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise FeedbackError("date_form")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise FeedbackError("no_such_date") from None


def closed_round(session: Session, round_id: int) -> Round:
    round_ = session.get(Round, round_id)
    if round_ is None or round_.status != RoundStatus.CLOSED:
        raise FeedbackError("not_closed", round_id=round_id)
    return round_


def add_action(
    session: Session, round_id: int, spec: ActionInput, *, actor: int | None = None
) -> Action:
    closed_round(session, round_id)
    action = Action(
        round_id=round_id,
        barrier_code=spec.barrier_code,
        finding=spec.finding,
        action=spec.action,
        owner=spec.owner,
        due_on=spec.due_on,
        created_by=actor,
    )
    session.add(action)
    session.flush()
    record(
        session,
        "action.add",
        actor=actor,
        subject=("action", action.id),
        details={"round": round_id, "code": spec.barrier_code},
    )
    return action


def set_action_status(
    session: Session, action_id: int, status: ActionStatus, *, actor: int | None = None
) -> Action:
    action = session.get(Action, action_id)
    if action is None:
        raise FeedbackError("no_action", action_id=action_id)
    action.status = status
    record(
        session,
        "action.status",
        actor=actor,
        subject=("action", action.id),
        details={"status": status.value},
    )
    return action


def took_part(round_id: int) -> object:
    return (Invitation.round_id == round_id) & or_(
        Invitation.started_at.is_not(None),
        Invitation.status.in_([InvitationStatus.STARTED, InvitationStatus.COMPLETED]),
    )


def _title_in(consultation: Consultation, language: str) -> str:
    """The set's title in `language` when the set has it (its own translations)."""
    texts = ((consultation.spec or {}).get("translations") or {}).get(language) or {}
    return str(texts.get("title") or consultation.title)


def publish_feedback(
    session: Session,
    renderer: Renderer,
    round_id: int,
    *,
    partnership: str,
    now: datetime,
    actor: int | None = None,
) -> tuple[int, int]:
    """Send the round's actions to everyone who took part in it, through the outbox, and mark
    them published. Returns (actions, people). Publishing again sends only to people who have
    not had this version (dedupe key per round, person and action count)."""
    round_ = closed_round(session, round_id)
    actions = list(
        session.scalars(
            select(Action)
            .where(Action.round_id == round_id, Action.status != ActionStatus.DROPPED)
            .order_by(Action.id)
        )
    )
    if not actions:
        raise FeedbackError("no_actions", round_id=round_id)
    said: dict[str | None, str] = {}

    def text_in(language: str | None) -> str:
        """The message in `language` (None: the default), rendered once per language."""
        if language not in said:
            with i18n.speaking(language):
                said[language] = renderer.render(
                    "digest/feedback.html",
                    partnership=partnership,
                    title=_title_in(round_.consultation, i18n.current()),
                    actions=actions,
                )
        return said[language]

    people = list(
        session.execute(
            select(Participant.id, Participant.chat_id, Participant.language)
            .join(Invitation, Invitation.participant_id == Participant.id)
            .where(
                took_part(round_id),
                may_be_messaged(),
            )
            .order_by(Participant.id)
        )
    )
    version = len(actions)
    sent = 0
    for participant_id, chat_id, language in people:
        if enqueue(
            session,
            chat_id=chat_id,
            message=OutgoingMessage(text_in(language)),
            kind="feedback",
            not_before=now,
            participant_id=participant_id,
            round_id=round_id,
            dedupe_key=f"feedback:{round_id}:{participant_id}:{version}",
        ):
            sent += 1
    for action in actions:
        if action.published_at is None:
            action.published_at = now
    record(
        session,
        "feedback.publish",
        actor=actor,
        subject=("round", round_id),
        details={"actions": len(actions), "people": sent},
    )
    return len(actions), sent


def recent_feedback(
    session: Session, participant_id: int, since: datetime | None
) -> list[FeedbackItem]:
    """Actions published since `since` for rounds this participant took part in, newest first;
    for the next round's intro ("since we last asked, ...")."""
    query = (
        select(Action, Round)
        .join(Round, Round.id == Action.round_id)
        .join(Invitation, Invitation.round_id == Round.id)
        .where(
            Invitation.participant_id == participant_id,
            took_part(Round.id),  # type: ignore[arg-type]
            Action.published_at.is_not(None),
            Action.status != ActionStatus.DROPPED,
        )
        .order_by(Action.published_at.desc(), Action.id.desc())
    )
    if since is not None:
        query = query.where(Action.published_at > since)
    return [
        FeedbackItem(
            round_id=round_.id,
            consultation=round_.consultation.title,
            finding=action.finding,
            action=action.action,
            owner=action.owner,
            due_on=action.due_on,
            status=action.status.value,
            published_at=action.published_at,  # type: ignore[arg-type]
        )
        for action, round_ in session.execute(query)
    ]
