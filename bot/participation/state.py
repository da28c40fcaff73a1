"""Where a person is, read from the database as plain data: the one read of every press, typed
answer and /resume. Nothing here decides; bot.participation.decide does, over what this reads.

One Core statement (built once; SQLAlchemy caches its compilation) reads the person, their
invitations in open rounds (and the pressed one, whatever its round) and the answers so far of
the pressed one, of the one in progress and of those finished (their summary); a
consultation's questions are read once a process, their conditions parsed once with them.
Which questions apply (branching) is worked out here, in Python, over the answers read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import Connection, and_, bindparam, exists, or_, select

from bot.consultations.conditions import Condition, Value, parse
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
    relevant: str | None = None  # asked only when this condition holds (None: always)
    constraint_message: str | None = None  # said when a typed answer is too long
    # `relevant` parsed, once: questions are built once per process (the cache below).
    condition: Condition | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        condition = parse(self.relevant) if self.relevant else None
        object.__setattr__(self, "condition", condition)


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

    def value(self, question: QuestionData) -> Value:
        """The answer as a condition reads it (bot.consultations.conditions): an option key,
        the ticked keys, a number or the text; None when skipped."""
        if self.skipped:
            return None
        if question.type == "multi":
            return self.keys
        if question.type == "scale":
            return self.number
        if question.type == "text":
            return self.text
        return next(iter(self.keys), None)  # single, yes/no


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
    closing: str | None = None  # the set's closing words, said once after finishing

    @property
    def active(self) -> bool:
        """Part-way through, or changing an answer after finishing."""
        return self.round_open and (
            self.status == InvitationStatus.STARTED
            or (self.status == InvitationStatus.COMPLETED and self.editing_question_id is not None)
        )

    def question(self, question_id: int) -> QuestionData | None:
        return next((q for q in self.questions if q.id == question_id), None)

    # Cached on the instance (a decision asks several times; a changed invitation is a new
    # instance, made by replace()): the answers must not change once it is read.
    @cached_property
    def asked(self) -> tuple[QuestionData, ...]:
        """The questions that apply, in order: each whose condition holds on the answers to
        those before it that apply. An answer to a question that does not apply counts as
        not given (as in XLSForm), so a chain of conditions falls together."""
        if all(q.condition is None for q in self.questions):
            return self.questions  # a set that does not branch: every press, no values to read
        values: dict[str, Value] = {}
        asked = []
        for question in self.questions:
            if question.condition is not None and not question.condition.holds(values):
                continue
            asked.append(question)
            answer = self.answers.get(question.id)
            if answer is not None:
                values[question.key] = answer.value(question)
        return tuple(asked)

    @cached_property
    def _asked_ids(self) -> frozenset[int]:
        return frozenset(q.id for q in self.asked)

    def applies(self, question: QuestionData) -> bool:
        return question.condition is None or question.id in self._asked_ids

    def stale_answers(self) -> list[QuestionData]:
        """Questions with an answer that no longer apply (an earlier answer changed)."""
        return [q for q in self.questions if q.id in self.answers and not self.applies(q)]

    def current_question(self) -> QuestionData | None:
        """The question being asked: the one being changed or ticked, else the first that
        applies without an answer. A question whose condition is false is never asked."""
        if self.editing_question_id is not None:
            question = self.question(self.editing_question_id)
            if question is not None and self.applies(question):
                return question
        return next((q for q in self.asked if q.id not in self.answers), None)

    def place(self, question: QuestionData) -> tuple[int, int, bool]:
        """Where `question` is, for "2 of 6": its number among the questions asked, how many
        there are at most, and whether that is a most (a later question has a condition, so
        it may or may not be asked) rather than the count."""
        position = self.questions.index(question)
        before, later = self.questions[:position], self.questions[position + 1 :]
        number = sum(1 for q in before if self.applies(q)) + 1
        return number, number + len(later), any(q.condition is not None for q in later)

    def answered(self, question: QuestionData, answer: AnswerData) -> InvitationData:
        return replace(self, answers={**self.answers, question.id: answer})

    def without(self, questions: list[QuestionData]) -> InvitationData:
        gone = {q.id for q in questions}
        return replace(self, answers={k: a for k, a in self.answers.items() if k not in gone})


@dataclass(frozen=True)
class PersonState:
    """Everything a decision about one person's update may look at."""

    joined: bool  # agreed to the privacy notice
    stopped: bool
    # In open rounds (and the pressed one, whatever its round), oldest first.
    invitations: tuple[InvitationData, ...] = ()
    text_limit: int = 0  # the most characters a typed answer may have
    language: str | None = None  # the one they chose (None: not chosen, or not joined)

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
        _P.language,  # last, so the places above stay put
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
    select(*(_Q[f.name] for f in fields(QuestionData) if f.init))
    .where(_Q.consultation_id == bindparam("consultation"))
    .order_by(_Q.position)
)
_SPEC = select(_C.spec).where(_C.id == bindparam("consultation"))


@dataclass(frozen=True)
class Asking:
    """What a consultation asks, as one person's journey reads it, in their language."""

    questions: tuple[QuestionData, ...]
    closing: str | None  # said once after the summary, when they finish
    title: str | None = None  # translated (None: the set's own)
    untranslated: bool = False  # not in their language: the set's own is said instead


def texts_in(spec: Mapping[str, Any] | None, language: str) -> tuple[dict[str, str], bool]:
    """A set's texts in `language` by key (bot.consultations.sets' `translatable`), and
    whether it lacks that language: then ({}, True), and its own language is said."""
    spec = spec or {}
    if language == spec.get("language", "en"):
        return {}, False
    texts = (spec.get("translations") or {}).get(language)
    return (dict(texts), False) if texts else ({}, True)


def translated(question: QuestionData, texts: Mapping[str, str]) -> QuestionData:
    """`question` in the language of `texts`; options keep their ids, so answers pool."""
    if not texts:
        return question
    key = question.key
    options = [
        {**o, "label": texts.get(f"{key}.o.{o['id']}", o["label"])} for o in question.options
    ]
    scale = question.scale
    if scale is not None:
        scale = {
            **scale,
            **{k: texts[f"{key}.{k}"] for k in ("min_label", "max_label") if f"{key}.{k}" in texts},
        }
    return replace(
        question,
        text=texts.get(f"{key}.text", question.text),
        help=texts.get(f"{key}.help", question.help),
        options=options,
        scale=scale,
    )


# A consultation's questions (conditions parsed) by (consultation id, content hash, language): a
# consultation row never changes (a changed file is imported as a new row), so its questions
# are read once per process: bench/press_cost.py 327 -> 182 us CPU per press with this cache
# (no statement for them, and their JSON columns decoded once, not on every press).
QuestionsCache = dict[tuple[int, str, str], Asking]


def read_state(
    connection: Connection,
    user_id: int,
    questions: QuestionsCache,
    *,
    target: int | None = None,
    text_limit: int = 0,
    language: str = "en",
) -> PersonState:
    """The person with Telegram id `user_id`, their invitations in open rounds and `target`
    (if it is theirs), with the questions and answers of `target`, of the one in progress and
    of those finished. The consultations' texts are in their stored language, else in
    `language` (Telegram's, or the deployment's default)."""
    rows = _PERSON.all(connection, {"user": user_id, "target": target})
    if not rows:
        return PersonState(joined=False, stopped=False)
    consent_at, status = rows[0][1:3]
    chosen = rows[0][18]
    speaks = chosen or language
    invitations: dict[int, InvitationData] = {}
    answers: dict[int, dict[int, AnswerData]] = {}
    for row in rows:
        invitation_id = row[3]
        if invitation_id is None:
            break  # none in an open round, none pressed
        if invitation_id not in invitations:
            round_open = row[7] == RoundStatus.OPEN
            asking = _asking(connection, questions, *row[10:12], speaks) if round_open else _NOTHING
            invitations[invitation_id] = InvitationData(
                *row[3:7],
                round_open,
                row[8],
                asking.title or row[9],
                row[10],
                questions=asking.questions,
                answers=answers.setdefault(invitation_id, {}),
                closing=asking.closing,
            )
        question_id, answer_id, skipped, text, number, key = row[12:18]
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
        language=chosen,
    )


_NOTHING = Asking((), None)


def _asking(
    connection: Connection,
    cache: QuestionsCache,
    consultation_id: int,
    content_hash: str,
    language: str,
) -> Asking:
    key = (consultation_id, content_hash, language)
    found = cache.get(key)
    if found is None:
        at = {"consultation": consultation_id}
        questions = tuple(QuestionData(*row) for row in connection.execute(_QUESTIONS, at))
        spec = connection.execute(_SPEC, at).scalar_one() or {}
        texts, untranslated = texts_in(spec, language)
        found = cache[key] = Asking(
            tuple(translated(q, texts) for q in questions),
            texts.get("closing", spec.get("closing")),
            texts.get("title"),
            untranslated,
        )
    return found
