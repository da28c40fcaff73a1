"""A participant's own data: /mydata (everything stored about them) and /forget (erase it)."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, delete, select, update
from sqlalchemy.orm import Session

from bot.digests.fanout import rerender_pending_digests
from bot.digests.published import erase_quotes, quotes_of
from bot.kernel import i18n
from bot.kernel.audit import record
from bot.kernel.context import AppContext
from bot.kernel.dialogs import button
from bot.kernel.reply import Document, OutgoingMessage, Reply, rows
from bot.participation.cards import describe
from bot.participation.state import AnswerData
from storage.models import (
    Action,
    Answer,
    AnswerChoice,
    AnswerCode,
    AnswerReview,
    AuditEvent,
    Delivery,
    DialogState,
    Invitation,
    Invite,
    Organisation,
    Participant,
    Question,
    Round,
    Schedule,
)

T = "messages/participant/"

# Every column that can hold a person's id or words is either in /mydata's file (EXPORTED,
# per table) or left out for the reason given (NOT_EXPORTED, "table.column" or "table.*").
# tests/storage/test_mydata.py walks the models and fails on a column in neither, so a new
# table or column that refers to people must be exported, or knowingly left out, here.
EXPORTED: dict[str, frozenset[str]] = {
    "participants": frozenset(
        {
            "telegram_user_id",
            "chat_id",
            "display_name",
            "role",
            "status",
            "organisation_id",
            "group_label",
            "answers_as",
            "profile",
            "invite_id",
            "consent_at",
            "consent_notice_version",
            "language",
            "created_at",
            "updated_at",
        }
    ),
    "organisations": frozenset({"name", "kind", "area", "size", "sector"}),
    "invitations": frozenset(
        {
            "round_id",
            "participant_id",
            "channel",
            "status",
            "segment",
            "organisation_id",
            "invited_at",
            "delivered_at",
            "started_at",
            "completed_at",
            "declined_at",
            "reminded_at",
            "editing_question_id",
            "prompt_message_id",
        }
    ),
    "answers": frozenset(
        {"invitation_id", "question_id", "number", "text", "skipped", "answered_at", "changed_at"}
    ),
    "answer_choices": frozenset({"answer_id", "option_key"}),
    "answer_codes": frozenset(
        {"answer_id", "code", "source", "evidence", "doubtful", "coded_by", "coded_at"}
    ),
    "answer_reviews": frozenset({"answer_id", "reviewed_by", "reviewed_at"}),
    "deliveries": frozenset(
        {
            "chat_id",
            "participant_id",
            "kind",
            "round_id",
            "invitation_id",
            "dedupe_key",
            "payload",
            "status",
            "attempts",
            "sent_at",
            "telegram_message_id",
            "error",
            "created_at",
        }
    ),
    "dialog_states": frozenset({"chat_id", "kind", "step", "data", "updated_at"}),
    "invites": frozenset(
        {
            "code",
            "organisation_id",
            "group_label",
            "role",
            "answers_as",
            "max_uses",
            "uses",
            "expires_at",
            "revoked_at",
            "created_by",
            "created_at",
        }
    ),
    "rounds": frozenset({"created_by", "progress_chat_id", "progress_message_id"}),
    "schedules": frozenset({"created_by", "cron", "active", "created_at"}),
    "actions": frozenset(
        {
            "round_id",
            "barrier_code",
            "finding",
            "action",
            "owner",
            "due_on",
            "status",
            "created_by",
            "created_at",
            "published_at",
        }
    ),
    "audit_events": frozenset(
        {"at", "actor_telegram_id", "action", "subject_type", "subject_id", "details"}
    ),
}
_SET = "a consultation set: the partnership's questions, the same for everyone"
_PLAN = "a round's or series' plan: partnership business, the same for everyone it reaches"
NOT_EXPORTED: dict[str, str] = {
    "consultations.*": _SET,
    "questions.*": _SET + " (each exported answer names its question)",
    "scheduled_events.*": "a round's timetable; its note is the scheduler's, about no one",
    "processed_updates.*": "Telegram's update ids, kept to drop duplicates: linked to no one",
    "rounds.audience": _PLAN,
    "rounds.remind_before_seconds": _PLAN,
    "schedules.audience": _PLAN,
    "schedules.timezone": _PLAN,
    "schedules.remind_before_seconds": _PLAN,
    "update_inbox.*": "a Telegram update as it arrived, kept only until it is handled (well "
    "under a second, or until a restart after a crash), then deleted",
    "invitations.submission_key": "held only by a submission gathered elsewhere and imported "
    "(bot.participation.imported), which belongs to no participant; a person's own "
    "invitations have none",
    "releases.figures": "counts of people, never of one person; their own quotes in it are "
    "exported as quoted_in_published_digests",
}


def _iso(moment: datetime | date | None) -> str | None:
    return moment.isoformat() if moment else None


def _rows(session: Session, query: Any) -> list[Any]:
    return list(session.scalars(query))


def export(session: Session, participant: Participant) -> dict[str, Any]:
    """Everything stored about this person, as plain JSON-able data (see EXPORTED)."""
    pid, tid, chat = participant.id, participant.telegram_user_id, participant.chat_id
    invitations = _rows(
        session, select(Invitation).where(Invitation.participant_id == pid).order_by(Invitation.id)
    )
    answer_ids = [a.id for inv in invitations for a in inv.answers]
    return {
        "participant": _person(participant),
        "consultations": [_invitation(session, inv) for inv in invitations],
        "messages_queued_or_sent": [
            _delivery(d)
            for d in _rows(
                session,
                select(Delivery)
                .where((Delivery.participant_id == pid) | (Delivery.chat_id == chat))
                .order_by(Delivery.id),
            )
        ],
        "dialogs_in_progress": [
            {"kind": s.kind, "step": s.step, "data": s.data, "updated_at": _iso(s.updated_at)}
            for s in _rows(session, select(DialogState).where(DialogState.chat_id == chat))
        ],
        "made_by_you": _made_by(session, tid, chat),
        "quoted_in_published_digests": [
            {"round_id": round_id, "code": quote.code, "quote": quote.text}
            for round_id, quote in quotes_of(session, [inv.id for inv in invitations])
        ],
        "activity": [
            {
                "at": _iso(e.at),
                "action": e.action,
                "by_you": e.actor_telegram_id == tid,
                "about": e.subject_type,
                "about_id": e.subject_id,
                "details": e.details,
            }
            for e in _rows(session, _events(pid, tid, answer_ids).order_by(AuditEvent.id))
        ],
    }


def _person(participant: Participant) -> dict[str, Any]:
    org = participant.organisation
    return {
        "telegram_user_id": participant.telegram_user_id,
        "chat_id": participant.chat_id,
        "display_name": participant.display_name,
        "role": participant.role.value,
        "status": participant.status.value,
        "organisation": org.name if org else None,
        "organisation_details": (
            {"kind": org.kind, "area": org.area, "size": org.size, "sector": org.sector}
            if org
            else None
        ),
        "group": participant.group_label,
        "answers_as": participant.answers_as,
        "profile": participant.profile,
        "joined_by_invite": participant.invite_id,
        "consent_at": _iso(participant.consent_at),
        "consent_notice_version": participant.consent_notice_version,
        "language": participant.language,
        "joined_at": _iso(participant.created_at),
        "updated_at": _iso(participant.updated_at),
    }


def _invitation(session: Session, inv: Invitation) -> dict[str, Any]:
    editing = session.get(Question, inv.editing_question_id) if inv.editing_question_id else None
    return {
        "consultation": inv.round.consultation.title,
        "round_id": inv.round_id,
        "channel": inv.channel,
        "status": inv.status.value,
        "segment": inv.segment,
        "organisation": _organisation_name(session, inv.organisation_id),
        "invited_at": _iso(inv.invited_at),
        "delivered_at": _iso(inv.delivered_at),
        "started_at": _iso(inv.started_at),
        "completed_at": _iso(inv.completed_at),
        "declined_at": _iso(inv.declined_at),
        "reminded_at": _iso(inv.reminded_at),
        "changing_answer_to": editing.key if editing else None,
        "question_card_message_id": inv.prompt_message_id,
        "answers": _answers(session, inv),
    }


def _organisation_name(session: Session, organisation_id: int | None) -> str | None:
    org = session.get(Organisation, organisation_id) if organisation_id else None
    return org.name if org else None


def _answers(session: Session, invitation: Invitation) -> list[dict[str, Any]]:
    by_question = {a.question_id: a for a in invitation.answers}
    reviewed = {
        r.answer_id: r
        for r in _rows(
            session,
            select(AnswerReview).where(
                AnswerReview.answer_id.in_([a.id for a in by_question.values()])
            ),
        )
    }
    return [
        {
            "question": q.text,
            "question_key": q.key,
            "answer": describe(q, AnswerData.of(answer)),
            "choices": sorted(c.option_key for c in answer.choices),
            "number": answer.number,
            "text": answer.text,
            "skipped": answer.skipped,
            # How the answer was coded, with the words of it each code rests on; a code by a
            # person (source "human") does not say who: that is someone else's id.
            "codes": [
                {
                    "code": c.code,
                    "source": c.source.value,
                    "evidence": c.evidence,
                    "doubtful": c.doubtful,
                    "coded_at": _iso(c.coded_at),
                }
                for c in sorted(answer.codes, key=lambda c: (c.code, c.source.value))
            ],
            "reviewed_at": _iso(reviewed[answer.id].reviewed_at) if answer.id in reviewed else None,
            "answered_at": _iso(answer.answered_at),
            "changed_at": _iso(answer.changed_at),
        }
        for q in invitation.round.consultation.questions
        if (answer := by_question.get(q.id)) is not None
    ]


def _delivery(d: Delivery) -> dict[str, Any]:
    payload = d.payload or {}
    return {
        "kind": d.kind,
        "status": d.status.value,
        "round_id": d.round_id,
        "key": d.dedupe_key,
        # What it says while it waits to be sent (a file's bytes by their size); a finished
        # delivery keeps nothing of it ({"purged": true}).
        "payload": _without_file_bytes(payload),
        "attempts": d.attempts,
        "error": d.error,
        "telegram_message_id": d.telegram_message_id,
        "created_at": _iso(d.created_at),
        "sent_at": _iso(d.sent_at),
    }


def _without_file_bytes(payload: dict[str, Any]) -> dict[str, Any]:
    out = dict(payload)
    for key in ("document", "photo"):
        media = out.get(key)
        if isinstance(media, dict) and "content_b64" in media:
            size = len(media["content_b64"]) * 3 // 4
            out[key] = {k: v for k, v in media.items() if k != "content_b64"} | {"bytes": size}
    return out


def _made_by(session: Session, tid: int, chat: int | None) -> dict[str, Any]:
    """What this person did as a coordinator or lead: links they made, rounds and series they
    planned, actions they recorded, codes and reviews they gave (of others' answers: the
    answer's id, never its words)."""
    return {
        "invites": [
            {
                "code": i.code,
                "organisation": i.organisation.name if i.organisation else None,
                "group": i.group_label,
                "role": i.role.value,
                "answers_as": i.answers_as,
                "max_uses": i.max_uses,
                "uses": i.uses,
                "expires_at": _iso(i.expires_at),
                "revoked_at": _iso(i.revoked_at),
                "created_at": _iso(i.created_at),
            }
            for i in _rows(
                session, select(Invite).where(Invite.created_by == tid).order_by(Invite.id)
            )
        ],
        "rounds": _rows(
            session, select(Round.id).where(Round.created_by == tid).order_by(Round.id)
        ),
        "rounds_progress_shown_here": [
            {"round_id": r.id, "message_id": r.progress_message_id}
            for r in _rows(session, select(Round).where(Round.progress_chat_id == chat))
        ]
        if chat is not None
        else [],
        "series": [
            {"id": s.id, "cron": s.cron, "active": s.active, "created_at": _iso(s.created_at)}
            for s in _rows(session, select(Schedule).where(Schedule.created_by == tid))
        ],
        "actions": [
            {
                "round_id": a.round_id,
                "code": a.barrier_code,
                "finding": a.finding,
                "action": a.action,
                "owner": a.owner,
                "due_on": _iso(a.due_on),
                "status": a.status.value,
                "created_at": _iso(a.created_at),
                "published_at": _iso(a.published_at),
            }
            for a in _rows(
                session, select(Action).where(Action.created_by == tid).order_by(Action.id)
            )
        ],
        "codes_given": [
            {"answer_id": c.answer_id, "code": c.code, "at": _iso(c.coded_at)}
            for c in _rows(session, select(AnswerCode).where(AnswerCode.coded_by == tid))
        ],
        "reviews_given": [
            {"answer_id": r.answer_id, "at": _iso(r.reviewed_at)}
            for r in _rows(session, select(AnswerReview).where(AnswerReview.reviewed_by == tid))
        ],
    }


def _events(pid: int, tid: int, answer_ids: list[int]) -> Select[tuple[AuditEvent]]:
    """Audit events by this person, about them, or about one of their answers."""
    return select(AuditEvent).where(
        (AuditEvent.actor_telegram_id == tid)
        | ((AuditEvent.subject_type == "participant") & (AuditEvent.subject_id == pid))
        | ((AuditEvent.subject_type == "answer") & AuditEvent.subject_id.in_(answer_ids))
    )


def mydata(session: Session, ctx: AppContext, participant: Participant) -> Reply:
    data = export(session, participant)
    content = json.dumps(data, ensure_ascii=False, indent=2).encode()
    answers = sum(len(c["answers"]) for c in data["consultations"])
    language = participant.language or ctx.settings.partnership.languages[0]
    text = ctx.renderer.render(
        T + "mydata.html", data=data, answers=answers, language_name=i18n.name_of(language)
    )
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
    """Erase everything stored about this person (EXPORTED shows what that is): the person,
    their invitations and answers with the answers' choices, codes (the coder's evidence is
    their words) and review rows, deliveries to them, their dialogs; their quotes leave the
    published releases and every digest not yet sent (re-rendered). The published figures stay
    as they were, so nothing can be learnt by comparing digests made before and after. Where
    they are the actor (invites, rounds, series, actions, codes and reviews they gave, audit
    events) the link to them goes and the partnership's record stays. Digests already sent to
    others cannot be recalled; their stored copies were purged once delivered
    (bot.outbox.payloads.PURGED).

    The caller runs storage.db.after_erasure once this has committed (SQLite's WAL)."""
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
    answers = (
        select(Answer.id)
        .join(Invitation, Invitation.id == Answer.invitation_id)
        .where(Invitation.participant_id == pid)
    )
    # Events about their answers (a coordinator's review: the codes of their words) keep
    # that something happened, not to what.
    session.execute(
        update(AuditEvent)
        .where(AuditEvent.subject_type == "answer", AuditEvent.subject_id.in_(answers))
        .values(subject_id=None, details={})
    )
    # The foreign keys cascade these from the invitation; said here, so that erasure does not
    # hang on a constraint's ON DELETE.
    for table in (AnswerReview, AnswerCode, AnswerChoice):
        session.execute(delete(table).where(table.answer_id.in_(answers)))
    session.execute(delete(Answer).where(Answer.id.in_(answers)))
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
