"""Where a person is, read from the database as plain data: the one read of every press, typed
answer and /resume. Nothing here decides; bot.participation.decide does, over what this reads.

One Core statement (built once; SQLAlchemy caches its compilation) reads the person, their
invitations in open rounds (and the pressed one, whatever its round) and the answers so far of
the pressed one, of the one in progress and of those finished (their summary); a
consultation's questions are read once a process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, exists, or_, select

from storage.models import (
    Answer,
    AnswerChoice,
    Consultation,
    Invitation,
    InvitationStatus,
    Participant,
    ParticipantStatus,
    Question,
    Round,
    RoundStatus,
)
from storage.prepared import Prepared

WAITING = (InvitationStatus.PENDING, InvitationStatus.DELIVERED, InvitationStatus.QUEUED)


@dataclass(frozen=True)
class QuestionData:
    """A question as plain data, with the attributes the templates read."""

    id: int
    key: str
    type: str
    text: str
    help: str | None
    required: bool
    options: list[Any]
    scale: dict[str, Any] | None
    max_length: int | None
    coding: dict[str, Any]


@dataclass(frozen=True)
class AnswerData:
    answer_id: int | None  # None: decided in this update, not stored yet
    skipped: bool = False
    text: str | None = None
    number: float | None = None
    keys: frozenset[str] = frozenset()

    @classmethod
    def of(cls, answer: Answer) -> AnswerData:
        keys = frozenset(c.option_key for c in answer.choices)
        return cls(answer.id, answer.skipped, answer.text, answer.number, keys)


@dataclass(frozen=True)
class InvitationData:
    """One invitation of the person's: where its round is and, when read, its answers."""

    id: int
    status: InvitationStatus
    editing_question_id: int | None
    prompt_message_id: int | None
    round_open: bool
    closes_at: datetime
    title: str
    consultation_id: int
    questions: tuple[QuestionData, ...] = ()  # read for the pressed and the active invitation
    answers: Mapping[int, AnswerData] = field(default_factory=dict)  # by question id

    @property
    def active(self) -> bool:
        """Part-way through, or changing an answer after finishing."""
        return self.round_open and (
            self.status == InvitationStatus.STARTED
            or (self.status == InvitationStatus.COMPLETED and self.editing_question_id is not None)
        )

    def question(self, question_id: int) -> QuestionData | None:
        return next((q for q in self.questions if q.id == question_id), None)

    def current_question(self) -> QuestionData | None:
        """The question being asked: the one being changed or ticked, else the first without
        an answer."""
        if self.editing_question_id is not None:
            question = self.question(self.editing_question_id)
            if question is not None:
                return question
        return next((q for q in self.questions if q.id not in self.answers), None)

    def answered(self, question: QuestionData, answer: AnswerData) -> InvitationData:
        return replace(self, answers={**self.answers, question.id: answer})


@dataclass(frozen=True)
class PersonState:
    """Everything a decision about one person's update may look at."""

    joined: bool  # agreed to the privacy notice
    stopped: bool
    # In open rounds (and the pressed one, whatever its round), oldest first.
    invitations: tuple[InvitationData, ...] = ()
    text_limit: int = 0  # the most characters a typed answer may have

    def invitation(self, invitation_id: int) -> InvitationData | None:
        return next((i for i in self.invitations if i.id == invitation_id), None)

    def active(self) -> InvitationData | None:
        return next((i for i in self.invitations if i.active), None)

    def finished(self) -> InvitationData | None:
        """The latest round they finished that is still open (its answers can change)."""
        done = [i for i in self.invitations if i.round_open]
        return next((i for i in reversed(done) if i.status == InvitationStatus.COMPLETED), None)

    def next_invitation(self) -> InvitationData | None:
        """The one this person should see now: the round in progress, else the oldest waiting
        one. One round runs at a time; one opened meanwhile waits (QUEUED) until this offers it."""
        waiting = (i for i in self.invitations if i.round_open and i.status in WAITING)
        return self.active() or next(waiting, None)


_P, _I, _R, _C = (t.__table__.c for t in (Participant, Invitation, Round, Consultation))
_Q, _A, _CH = (t.__table__.c for t in (Question, Answer, AnswerChoice))
_OPEN = Round.__table__.alias("open_round")

# One statement for everything but the questions: the person; their invitations that are
# pressed or in an open round, with round and consultation; and the answers (one row per
# answer and choice) of the pressed one, of any in progress and of any finished (for its
# summary). Flat outer joins: a nested one made SQLite scan every invitation.
# Prepared (run on the driver's cursor, storage.prepared), like the writes of an answer in
# bot.participation.store: bench/press_cost.py 296 -> 180 us CPU per press with them, 39% less.
_PERSON = Prepared(
    select(
        *(_P[c] for c in ("id", "consent_at", "status")),
        *(_I[c] for c in ("id", "status", "editing_question_id", "prompt_message_id")),
        *(_R.status, _R.closes_at, _C.title, _C.id, _C.content_hash),
        *(_A[c] for c in ("question_id", "id", "skipped", "text", "number")),
        _CH.option_key,
    )
    .select_from(Participant.__table__)
    .outerjoin(
        Invitation.__table__,
        and_(
            _I.participant_id == _P.id,
            or_(
                _I.id == bindparam("target"),
                exists().where(_OPEN.c.id == _I.round_id, _OPEN.c.status == RoundStatus.OPEN),
            ),
        ),
    )
    .outerjoin(Round.__table__, _R.id == _I.round_id)
    .outerjoin(Consultation.__table__, _C.id == _R.consultation_id)
    .outerjoin(
        Answer.__table__,
        and_(
            _A.invitation_id == _I.id,
            or_(
                _I.id == bindparam("target"),
                _I.status == InvitationStatus.STARTED,
                _I.status == InvitationStatus.COMPLETED,
                _I.editing_question_id.is_not(None),
            ),
        ),
    )
    .outerjoin(AnswerChoice.__table__, _CH.answer_id == _A.id)
    .where(_P.telegram_user_id == bindparam("user"))
    .order_by(_I.invited_at, _I.id)
)
_QUESTIONS = (
    select(*(_Q[f.name] for f in fields(QuestionData)))
    .where(_Q.consultation_id == bindparam("consultation"))
    .order_by(_Q.position)
)

# A consultation's questions by (consultation id, content hash): a consultation row never
# changes (a changed file is imported as a new row), so its questions are read once per
# process: bench/press_cost.py 327 -> 182 us CPU per press with this cache (no statement for
# them, and their JSON columns decoded once, not on every press).
QuestionsCache = dict[tuple[int, str], tuple[QuestionData, ...]]


def read_state(
    connection: Connection,
    user_id: int,
    questions: QuestionsCache,
    *,
    target: int | None = None,
    text_limit: int = 0,
) -> PersonState:
    """The person with Telegram id `user_id`, their invitations in open rounds and `target`
    (if it is theirs), with the questions and answers of `target`, of the one in progress and
    of those finished."""
    rows = _PERSON.all(connection, {"user": user_id, "target": target})
    if not rows:
        return PersonState(joined=False, stopped=False)
    consent_at, status = rows[0][1:3]
    invitations: dict[int, InvitationData] = {}
    answers: dict[int, dict[int, AnswerData]] = {}
    for row in rows:
        invitation_id = row[3]
        if invitation_id is None:
            break  # none in an open round, none pressed
        if invitation_id not in invitations:
            round_open = row[7] == RoundStatus.OPEN
            invitations[invitation_id] = InvitationData(
                *row[3:7],
                round_open,
                *row[8:11],
                questions=_questions(connection, questions, *row[10:12]) if round_open else (),
                answers=answers.setdefault(invitation_id, {}),
            )
        question_id, answer_id, skipped, text, number, key = row[12:]
        if answer_id is not None:
            so_far = answers[invitation_id]
            known = so_far.get(question_id)
            keys = (known.keys if known else frozenset()) | ({key} if key is not None else set())
            so_far[question_id] = AnswerData(answer_id, skipped, text, number, frozenset(keys))
    return PersonState(
        joined=consent_at is not None,
        stopped=status == ParticipantStatus.STOPPED,
        invitations=tuple(invitations.values()),
        text_limit=text_limit,
    )


def _questions(
    connection: Connection, cache: QuestionsCache, consultation_id: int, content_hash: str
) -> tuple[QuestionData, ...]:
    key = (consultation_id, content_hash)
    found = cache.get(key)
    if found is None:
        rows = connection.execute(_QUESTIONS, {"consultation": consultation_id})
        found = cache[key] = tuple(QuestionData(*row) for row in rows)
    return found
