"""Hand-countable rounds for digest tests: explicit answers written as the journey writes them
(Answer + AnswerChoice rows, and OPTION codes for options and question rules that carry codes)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from storage.models import (
    Answer,
    AnswerChoice,
    AnswerCode,
    CodeSource,
    Consultation,
    Invitation,
    InvitationStatus,
    Organisation,
    Question,
    Round,
    RoundStatus,
    utcnow,
)
from tests.support import factories


def question(consultation: Consultation, key: str) -> Question:
    return next(q for q in consultation.questions if q.key == key)


def answer(session: Session, invitation: Invitation, q: Question, value: Any) -> Answer:
    """Store one answer; `None` stores a skip."""
    row = Answer(invitation_id=invitation.id, question_id=q.id, skipped=value is None)
    session.add(row)
    session.flush()
    codes: set[str] = set()
    rules = q.coding or {}
    if value is None:
        pass
    elif q.type in ("single", "multi"):
        keys = [value] if isinstance(value, str) else list(value)
        for key in keys:
            session.add(AnswerChoice(answer_id=row.id, option_key=key))
            option = next(o for o in q.options if o["id"] == key)
            codes.update(option.get("codes") or [])
    elif q.type == "yesno":
        session.add(AnswerChoice(answer_id=row.id, option_key=value))
        if rules.get("codes") and value == rules.get("codes_when"):
            codes.update(rules["codes"])
    elif q.type == "scale":
        row.number = float(value)
        at_most = rules.get("codes_at_most")
        if rules.get("codes") and at_most is not None and value <= at_most:
            codes.update(rules["codes"])
    else:
        row.text = value
    for code in codes:
        session.add(AnswerCode(answer_id=row.id, code=code, source=CodeSource.OPTION))
    session.flush()
    return row


def respondent(
    session: Session,
    round_: Round,
    user_id: int,
    answers: dict[str, Any],
    *,
    organisation: Organisation | None = None,
    profile: dict[str, Any] | None = None,
    display_name: str | None = None,
    complete: bool = True,
    answers_as: str = "organisation",
    language: str | None = None,
) -> Invitation:
    person = factories.participant(
        session,
        user_id,
        organisation=organisation,
        profile={"answers_as": answers_as, **(profile or {})},
        display_name=display_name,
        answers_as=answers_as,
        language=language,
    )
    invitation = factories.invitation(session, round_, person)
    if answers:
        invitation.started_at = utcnow()
        invitation.status = InvitationStatus.STARTED
    for key, value in answers.items():
        answer(session, invitation, question(round_.consultation, key), value)
    if answers and complete:
        invitation.completed_at = utcnow()
        invitation.status = InvitationStatus.COMPLETED
    session.flush()
    return invitation


def close(round_: Round, at: datetime | None = None) -> None:
    at = at or utcnow()
    round_.status = RoundStatus.CLOSED
    round_.closed_at = at
    round_.closes_at = at


def closed_round(session: Session, consultation: Consultation, *, days_ago: int = 1) -> Round:
    now = utcnow() - timedelta(days=days_ago)
    round_ = factories.open_round(session, consultation, now=now - timedelta(days=7))
    close(round_, now)
    session.flush()
    return round_
