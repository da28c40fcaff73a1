"""A participant's own data: /mydata (everything stored about them) and /forget (erase it)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from bot.digests.fanout import rerender_pending_digests
from bot.digests.published import erase_quotes
from bot.kernel.audit import record
from bot.kernel.context import AppContext
from bot.kernel.dialogs import button
from bot.kernel.reply import Document, OutgoingMessage, Reply, rows
from bot.participation.cards import describe
from bot.participation.state import AnswerData
from storage.models import (
    Action,
    AnswerCode,
    AnswerReview,
    AuditEvent,
    Delivery,
    DialogState,
    Invitation,
    Invite,
    Participant,
    Round,
    Schedule,
)

T = "messages/participant/"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def export(session: Session, participant: Participant) -> dict[str, Any]:
    """Everything stored about this person, as plain JSON-able data."""
    org = participant.organisation
    invitations = list(
        session.scalars(
            select(Invitation)
            .where(Invitation.participant_id == participant.id)
            .order_by(Invitation.id)
        )
    )
    deliveries = list(
        session.scalars(
            select(Delivery)
            .where(
                (Delivery.participant_id == participant.id)
                | (Delivery.chat_id == participant.chat_id)
            )
            .order_by(Delivery.id)
        )
    )
    events = list(
        session.scalars(
            select(AuditEvent)
            .where(
                (AuditEvent.actor_telegram_id == participant.telegram_user_id)
                | (
                    (AuditEvent.subject_type == "participant")
                    & (AuditEvent.subject_id == participant.id)
                )
            )
            .order_by(AuditEvent.id)
        )
    )
    return {
        "participant": {
            "telegram_user_id": participant.telegram_user_id,
            "chat_id": participant.chat_id,
            "display_name": participant.display_name,
            "role": participant.role.value,
            "status": participant.status.value,
            "organisation": org.name if org else None,
            "group": participant.group_label,
            "answers_as": participant.answers_as,
            "profile": participant.profile,
            "consent_at": _iso(participant.consent_at),
            "consent_notice_version": participant.consent_notice_version,
            "joined_at": _iso(participant.created_at),
        },
        "consultations": [
            {
                "consultation": inv.round.consultation.title,
                "round_id": inv.round_id,
                "status": inv.status.value,
                "segment": inv.segment,
                "invited_at": _iso(inv.invited_at),
                "started_at": _iso(inv.started_at),
                "completed_at": _iso(inv.completed_at),
                "declined_at": _iso(inv.declined_at),
                "answers": _answers(inv),
            }
            for inv in invitations
        ],
        "messages_queued_or_sent": [
            {
                "kind": d.kind,
                "status": d.status.value,
                "created_at": _iso(d.created_at),
                "sent_at": _iso(d.sent_at),
            }
            for d in deliveries
        ],
        "activity": [{"at": _iso(e.at), "action": e.action, "details": e.details} for e in events],
    }


def _answers(invitation: Invitation) -> list[dict[str, Any]]:
    by_question = {a.question_id: a for a in invitation.answers}
    return [
        {
            "question": q.text,
            "question_key": q.key,
            "answer": describe(q, AnswerData.of(answer)),
            "choices": sorted(c.option_key for c in answer.choices),
            "number": answer.number,
            "text": answer.text,
            "skipped": answer.skipped,
            "codes": sorted({c.code for c in answer.codes}),
            "answered_at": _iso(answer.answered_at),
            "changed_at": _iso(answer.changed_at),
        }
        for q in invitation.round.consultation.questions
        if (answer := by_question.get(q.id)) is not None
    ]


def mydata(session: Session, ctx: AppContext, participant: Participant) -> Reply:
    data = export(session, participant)
    content = json.dumps(data, ensure_ascii=False, indent=2).encode()
    answers = sum(len(c["answers"]) for c in data["consultations"])
    text = ctx.renderer.render(T + "mydata.html", data=data, answers=answers)
    return Reply(documents=[Document("my-consultbot-data.json", content)]).say(text)


def confirm_forget(ctx: AppContext) -> Reply:
    return Reply().say(
        OutgoingMessage(
            ctx.renderer.render(
                T + "forget_confirm.html", partnership=ctx.settings.partnership.name
            ),
            buttons=rows(
                [button(ctx.renderer, "erase", "f:yes")],
                [button(ctx.renderer, "keep_data", "f:no")],
            ),
        )
    )


def forget(session: Session, ctx: AppContext, telegram_user_id: int) -> bool:
    """Erase everything that names this person. Answers go too (with their choices and codes),
    and their quotes leave the published releases and every digest not yet sent; the published
    figures stay as they were, so nothing can be learnt by comparing digests. Digests already
    sent cannot be recalled."""
    participant = session.scalar(
        select(Participant).where(Participant.telegram_user_id == telegram_user_id)
    )
    if participant is None:
        return False
    chat_id = participant.chat_id
    pid = participant.id
    session.execute(delete(Delivery).where(Delivery.participant_id == pid))
    if chat_id is not None:
        session.execute(delete(Delivery).where(Delivery.chat_id == chat_id))
        session.execute(delete(DialogState).where(DialogState.chat_id == chat_id))
        session.execute(
            update(Round)
            .where(Round.progress_chat_id == chat_id)
            .values(progress_chat_id=None, progress_message_id=None)
        )
    invitation_ids = list(
        session.scalars(select(Invitation.id).where(Invitation.participant_id == pid))
    )
    rounds = erase_quotes(session, invitation_ids)
    rerender_pending_digests(session, ctx, rounds)
    # Answer rows cascade from the invitation (and their choices and codes from the answer).
    session.execute(delete(Invitation).where(Invitation.participant_id == pid))
    for table, column in (
        (AuditEvent, AuditEvent.actor_telegram_id),
        (Invite, Invite.created_by),
        (Round, Round.created_by),
        (Schedule, Schedule.created_by),
        (Action, Action.created_by),
        (AnswerCode, AnswerCode.coded_by),
        (AnswerReview, AnswerReview.reviewed_by),
    ):
        session.execute(update(table).where(column == telegram_user_id).values({column.key: None}))
    # Events about the person keep what happened but lose who it was.
    session.execute(
        update(AuditEvent)
        .where(AuditEvent.subject_type == "participant", AuditEvent.subject_id == pid)
        .values(subject_id=None, details={})
    )
    session.delete(participant)
    session.flush()
    record(session, "participant.forget")
    return True
