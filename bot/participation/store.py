"""The one write of a decision's effects (bot.participation.decide), in Core statements on the
caller's connection and transaction, built once (building one costs about as much as running
it)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from bot.coding.codebook import Codebook
from bot.coding.stored import answer_language, coded_as_stored
from bot.participation.decide import DropAnswer, Effect, SaveAnswer, SetEditing, SetStatus
from storage.models import (
    Answer,
    AnswerChoice,
    AnswerCode,
    AnswerReview,
    AuditEvent,
    CodeSource,
    Invitation,
    InvitationStatus,
    Participant,
)
from storage.prepared import Prepared

_A, _I = Answer.__table__.c, Invitation.__table__.c
_CH, _CODE = AnswerChoice.__table__.c, AnswerCode.__table__.c

# The statements of a button answer are Prepared (storage.prepared), as is the read in
# bot.participation.state: bench/press_cost.py 296 -> 180 us CPU per press with them, 39% less.
_NEW_ANSWER = Prepared(
    insert(Answer.__table__)
    .values(
        invitation_id=bindparam("invitation"),
        question_id=bindparam("question"),
        answered_at=bindparam("at"),
        number=bindparam("number"),
        text=bindparam("text"),
        skipped=bindparam("skipped"),
    )
    .returning(_A.id)
)
# Stored again: ticks before Done, or a confirmed answer given again. changed_at is set only
# when a confirmed answer now says something else (SaveAnswer.changed), so /mydata shows as
# changed only what was.
_RESTORED_ANSWER = (
    update(Answer.__table__)
    .where(_A.id == bindparam("answer"))
    .values(number=bindparam("number"), text=bindparam("text"), skipped=bindparam("skipped"))
)
_CHANGED_ANSWER = _RESTORED_ANSWER.values(changed_at=bindparam("at"))
_FORGET_CHOICES = delete(AnswerChoice.__table__).where(_CH.answer_id == bindparam("answer"))
_FORGET_CODES = delete(AnswerCode.__table__).where(
    _CODE.answer_id == bindparam("answer"), _CODE.source.in_(bindparam("sources", expanding=True))
)
_CHOICE = Prepared(
    insert(AnswerChoice.__table__).values(
        answer_id=bindparam("answer_id"), option_key=bindparam("option_key")
    )
)
_CODES = Prepared(
    insert(AnswerCode.__table__).values(
        answer_id=bindparam("answer_id"),
        code=bindparam("code"),
        source=bindparam("source"),
        evidence=bindparam("evidence"),
        doubtful=bindparam("doubtful"),
        coded_at=bindparam("coded_at"),
    )
)

# The language the catch-up coder reads an invitation's answers in (bot.coding.stored): read
# only when a free text is stored, not on a press.
_RECORDED_LANGUAGE = (
    select(answer_language())
    .select_from(Invitation)
    .outerjoin(Participant, Participant.id == Invitation.participant_id)
    .where(Invitation.id == bindparam("invitation"))
)

# An answer that no longer applies goes with everything hanging on it; said here rather than
# left to ON DELETE CASCADE, as erasure does (bot.participation.mydata). Audit events about
# it keep that something happened, not to what.
_DROP = (
    *(
        delete(t.__table__).where(t.__table__.c.answer_id == bindparam("answer"))
        for t in (AnswerReview, AnswerCode, AnswerChoice)
    ),
    update(AuditEvent.__table__)
    .where(
        AuditEvent.__table__.c.subject_type == "answer",
        AuditEvent.__table__.c.subject_id == bindparam("answer"),
    )
    .values(subject_id=None, details={}),
    delete(Answer.__table__).where(_A.id == bindparam("answer")),
)

_NOW = bindparam("at")
# What each status sets beside itself: when it was taken (started and delivered kept if set).
_STATUS_MOMENTS = {
    InvitationStatus.STARTED: {
        "started_at": func.coalesce(_I.started_at, _NOW),
        "delivered_at": func.coalesce(_I.delivered_at, _NOW),
    },
    InvitationStatus.DELIVERED: {"delivered_at": func.coalesce(_I.delivered_at, _NOW)},
    InvitationStatus.COMPLETED: {"completed_at": _NOW},
    InvitationStatus.DECLINED: {"declined_at": _NOW},
    InvitationStatus.QUEUED: {},
}
_SET_STATUS = {
    status: Prepared(
        update(Invitation.__table__)
        .where(_I.id == bindparam("invitation"))
        .values(status=status, **moments)
    )
    for status, moments in _STATUS_MOMENTS.items()
}
_SET_EDITING = (
    update(Invitation.__table__)
    .where(_I.id == bindparam("invitation"))
    .values(editing_question_id=bindparam("question"))
)


def write(
    connection: Connection,
    effects: Iterable[Effect],
    codebook: Callable[[], Codebook],
    *,
    language: str | None,
) -> None:
    """Apply `effects` in order; `codebook` is asked for only when a free text is stored, and
    codes it in `language`, the one the person is spoken to (i18n.current(); None only where
    nothing is coded as it is stored)."""
    for effect in effects:
        if isinstance(effect, SaveAnswer):
            _save(connection, effect, codebook, language)
        elif isinstance(effect, DropAnswer):
            for statement in _DROP:
                connection.execute(statement, {"answer": effect.answer_id})
        elif isinstance(effect, SetStatus):
            at = {"invitation": effect.invitation_id, "at": effect.at}
            _SET_STATUS[effect.status].run(connection, at)
        else:
            assert isinstance(effect, SetEditing)
            at = {"invitation": effect.invitation_id, "question": effect.question_id}
            connection.execute(_SET_EDITING, at)


def _save(
    connection: Connection,
    save: SaveAnswer,
    codebook: Callable[[], Codebook],
    language: str | None,
) -> None:
    """Write (or overwrite) one answer right away, so a half-finished consultation still
    counts. Options' codes follow the answer; the coder's are replaced when a free text is
    (re)coded, in the writer's `language` (a text in one the codebook has no cues for is
    marked UNCODED, for a coordinator); coordinators' (HUMAN) codes stay."""
    values = {"at": save.at, "number": save.number, "text": save.text, "skipped": save.skipped}
    answer_id = save.answer_id
    if answer_id is None:
        at = {"invitation": save.invitation_id, "question": save.question_id, **values}
        answer_id = _NEW_ANSWER.scalar(connection, at)
    else:
        overwrite = _CHANGED_ANSWER if save.changed else _RESTORED_ANSWER
        connection.execute(overwrite, {"answer": answer_id, **values})
        connection.execute(_FORGET_CHOICES, {"answer": answer_id})
        replaced = [CodeSource.OPTION] + ([CodeSource.AUTO] if save.recode else [])
        connection.execute(_FORGET_CODES, {"answer": answer_id, "sources": replaced})
    if save.keys:
        _CHOICE.run(connection, [{"answer_id": answer_id, "option_key": k} for k in save.keys])
    codes = [
        {"code": code, "source": CodeSource.OPTION, "evidence": None, "doubtful": False}
        for code in save.codes
    ]
    if save.recode and save.text and not save.skipped:
        # Coded as it is stored (a few ms), so a digest never has to code a backlog.
        at = {"invitation": save.invitation_id}
        recorded = connection.execute(_RECORDED_LANGUAGE, at).scalar()
        coded = coded_as_stored(save.text, language, recorded, codebook())
        codes += [{"code": code, "source": CodeSource.AUTO, **fields} for code, fields in coded]
    if codes:
        _CODES.run(connection, [{"answer_id": answer_id, "coded_at": save.at, **c} for c in codes])
