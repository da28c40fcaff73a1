"""A participant's way through a consultation round. Where someone is is always derived from
the database (their invitation and answers), never held in memory.

Callback data (all checked against the database on every press, never trusted):
  p:go:<inv>  p:later:<inv>  p:no:<inv>     the round intro / reminder
  a:<inv>:<q>:<v>                            answer: option index, scale number, yes | no
  t:<inv>:<q>:<i>   d:<inv>:<q>              multi: toggle option i, Done
  s:<inv>:<q>                                skip an optional text question
  e:<inv>:<q>                                change an answer after finishing

The question being asked is `Invitation.editing_question_id` when set (a change after
finishing, or a multi-choice question whose ticks are being toggled), otherwise the first
question of the consultation without an answer row.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, func, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from bot.coding.coder import Codebook, code_text
from bot.digests.compile import auto_codes, codebook_for
from bot.kernel.people import find_participant
from bot.kernel.render import Renderer
from bot.kernel.reply import Button, OutgoingMessage, Reply, rows
from storage.models import (
    Answer,
    AnswerChoice,
    AnswerCode,
    CodeSource,
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

if TYPE_CHECKING:
    from bot.kernel.context import AppContext

log = logging.getLogger(__name__)

T = "messages/participant/"
YESNO = (("yes", "Yes"), ("no", "No"))
WAITING = (InvitationStatus.PENDING, InvitationStatus.DELIVERED, InvitationStatus.QUEUED)
ANSWER_PREFIXES = frozenset({"p", "a", "t", "d", "s", "e"})


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
        since_last=_since_last_time(session, invitation),
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


def _since_last_time(session: Session, invitation: Invitation, limit: int = 3) -> list[Any]:
    """'You said, we did' published since this person was last asked: closing the loop is
    what makes the next round worth answering."""
    from bot.feedback.actions import recent_feedback  # feedback renders digests; keep journey light

    previous = session.scalar(
        select(func.max(Invitation.invited_at)).where(
            Invitation.participant_id == invitation.participant_id,
            Invitation.id != invitation.id,
        )
    )
    if previous is None:
        return []
    return recent_feedback(session, invitation.participant_id, since=previous)[:limit]


def reminder_message(
    session: Session, renderer: Renderer, invitation: Invitation, *, partnership: str
) -> OutgoingMessage:
    """A gentle nudge before a round closes, with Continue / Not this time."""
    round_ = invitation.round
    answered = len(invitation.answers)
    text = renderer.render(
        T + "reminder.html",
        title=round_.consultation.title,
        partnership=partnership,
        answered=answered,
        total=len(round_.consultation.questions),
        closes_at=round_.closes_at,
    )
    return OutgoingMessage(
        text=text,
        buttons=rows(
            [
                Button("Continue", f"p:go:{invitation.id}"),
                Button("Not this time", f"p:no:{invitation.id}"),
            ]
        ),
    )


# --- where someone is -------------------------------------------------------------------


def _open_invitations(session: Session, participant: Participant) -> list[Invitation]:
    return list(
        session.scalars(
            select(Invitation)
            .join(Round, Invitation.round_id == Round.id)
            .where(Invitation.participant_id == participant.id, Round.status == RoundStatus.OPEN)
            .order_by(Invitation.invited_at, Invitation.id)
        )
    )


def active_invitation(session: Session, participant: Participant) -> Invitation | None:
    """The round this person is part-way through (or changing an answer in), if any."""
    for invitation in _open_invitations(session, participant):
        if invitation.status == InvitationStatus.STARTED or (
            invitation.status == InvitationStatus.COMPLETED
            and invitation.editing_question_id is not None
        ):
            return invitation
    return None


def next_invitation_for(session: Session, participant: Participant) -> Invitation | None:
    """The one invitation this person should see now: the round in progress, else the oldest
    waiting one in an open round. One round runs at a time; a round opened while another is in
    progress should be written QUEUED and is offered when this returns it."""
    active = active_invitation(session, participant)
    if active is not None:
        return active
    for invitation in _open_invitations(session, participant):
        if invitation.status in WAITING:
            return invitation
    return None


def current_question(invitation: Invitation) -> Question | None:
    questions = invitation.round.consultation.questions
    if invitation.editing_question_id is not None:
        for question in questions:
            if question.id == invitation.editing_question_id:
                return question
    answered = {answer.question_id for answer in invitation.answers}
    for question in questions:
        if question.id not in answered:
            return question
    return None


def answer_for(invitation: Invitation, question: Question) -> Answer | None:
    for answer in invitation.answers:
        if answer.question_id == question.id:
            return answer
    return None


# --- showing questions and answers -----------------------------------------------------


def _labels(question: Any) -> dict[str, str]:
    if question.type == "yesno" and not question.options:
        return dict(YESNO)
    return {str(o["id"]): str(o["label"]) for o in question.options}


def describe_answer(question: Question, answer: Answer | None) -> str:
    if answer is None:
        return ""
    return describe(
        question,
        skipped=answer.skipped,
        text=answer.text,
        number=answer.number,
        keys={c.option_key for c in answer.choices},
    )


def describe(
    question: Any, *, skipped: bool, text: str | None, number: float | None, keys: set[str]
) -> str:
    """An answer in words; `question` is a Question or a cached QuestionData."""
    if skipped:
        return "(skipped)"
    if question.type == "text":
        return text or ""
    if question.type == "scale":
        return "" if number is None else f"{number:g}"
    labels = _labels(question)
    return ", ".join(labels[k] for k in labels if k in keys)


def _question_buttons(question: Any, prefix: str, chosen: set[str]) -> list[list[Button]]:
    """The buttons under a prompt; `question` is a Question or a cached QuestionData."""
    buttons: list[list[Button]] = []
    if question.type == "single":
        buttons = [
            [Button(str(o["label"]), f"a:{prefix}:{i}")] for i, o in enumerate(question.options)
        ]
    elif question.type == "yesno":
        buttons = [[Button(label, f"a:{prefix}:{key}") for key, label in _labels(question).items()]]
    elif question.type == "scale":
        scale = question.scale or {}
        numbers = [
            Button(str(n), f"a:{prefix}:{n}")
            for n in range(int(scale.get("min", 1)), int(scale.get("max", 5)) + 1)
        ]
        # Phones show six buttons in a row comfortably; wider scales get two rows.
        buttons = (
            [numbers]
            if len(numbers) <= 6
            else [numbers[: len(numbers) // 2], numbers[len(numbers) // 2 :]]
        )
    elif question.type == "multi":
        buttons = [
            [Button(("✓ " if str(o["id"]) in chosen else "") + str(o["label"]), f"t:{prefix}:{i}")]
            for i, o in enumerate(question.options)
        ]
        buttons.append([Button("Done", f"d:{prefix}")])
    elif question.type == "text" and not question.required:
        buttons = [[Button("Skip", f"s:{prefix}")]]
    return buttons


def question_message(
    renderer: Renderer,
    invitation: Invitation,
    question: Question,
    *,
    previous: tuple[str, str] | None = None,
) -> OutgoingMessage:
    answer = answer_for(invitation, question)
    return prompt_message(
        renderer,
        invitation.round.consultation.questions,
        question,
        invitation.id,
        chosen={c.option_key for c in answer.choices} if answer else set(),
        editing=invitation.status == InvitationStatus.COMPLETED and answer is not None,
        current=describe_answer(question, answer),
        previous=previous,
    )


def prompt_message(
    renderer: Renderer,
    questions: Sequence[Any],
    question: Any,
    invitation_id: int,
    *,
    chosen: set[str] | frozenset[str] = frozenset(),
    editing: bool = False,
    current: str = "",
    previous: tuple[str, str] | None = None,
) -> OutgoingMessage:
    """One prompt with its buttons; questions are Question rows or cached QuestionData.
    `previous` (question text, answer in words) heads the card when it is edited in place
    from the question just answered to this one."""
    text = _prompt_text(
        renderer, questions, question, editing=editing, current=current, previous=previous
    )
    return _prompt(text, question, invitation_id, chosen)


def _prompt_text(
    renderer: Renderer,
    questions: Sequence[Any],
    question: Any,
    *,
    editing: bool = False,
    current: str = "",
    previous: tuple[str, str] | None = None,
) -> str:
    return renderer.render(
        T + "question.html",
        number=questions.index(question) + 1,
        total=len(questions),
        question=question,
        scale=question.scale or {},
        editing=editing,
        current=current,
        previous={"question": previous[0], "answer": previous[1]} if previous else None,
    )


def _prompt(
    text: str, question: Any, invitation_id: int, chosen: set[str] | frozenset[str] = frozenset()
) -> OutgoingMessage:
    """A prompt's text with the question's buttons, which carry the invitation's id."""
    buttons = _question_buttons(
        question,
        f"{invitation_id}:{question.id}",
        set(chosen) if question.type == "multi" else set(),
    )
    return OutgoingMessage(text=text, buttons=rows(*buttons))


def answered_message(
    renderer: Renderer, invitation: Invitation, question: Question
) -> OutgoingMessage:
    """The prompt as it stays in the chat once answered: the question and the choice."""
    return _answered(
        renderer,
        invitation.round.consultation.questions,
        question,
        describe_answer(question, answer_for(invitation, question)),
    )


def _answered(
    renderer: Renderer, questions: Sequence[Any], question: Any, described: str
) -> OutgoingMessage:
    text = renderer.render(
        T + "answered.html",
        number=questions.index(question) + 1,
        total=len(questions),
        question=question,
        answer=described,
    )
    return OutgoingMessage(text=text)


def summary_message(renderer: Renderer, invitation: Invitation) -> OutgoingMessage:
    questions = invitation.round.consultation.questions
    return _summary(
        renderer,
        invitation.id,
        invitation.round.consultation.title,
        invitation.round.closes_at,
        [(q, describe_answer(q, answer_for(invitation, q))) for q in questions],
    )


def _summary(
    renderer: Renderer,
    invitation_id: int,
    title: str,
    closes_at: datetime,
    items: list[tuple[Any, str]],
) -> OutgoingMessage:
    """Thanks, every answer in words, and a Change button per question."""
    text = renderer.render(T + "summary.html", title=title, items=items, closes_at=closes_at)
    buttons = [
        Button(f"Change {n}", f"e:{invitation_id}:{q.id}") for n, (q, _) in enumerate(items, 1)
    ]
    return OutgoingMessage(
        text=text, buttons=rows(*[buttons[i : i + 4] for i in range(0, len(buttons), 4)])
    )


# --- storing answers ---------------------------------------------------------------------


def _codes(question: Any, keys: list[str], number: float | None) -> set[str]:
    codes: set[str] = set()
    for option in question.options:
        if str(option["id"]) in keys:
            codes.update(option.get("codes") or [])
    coding = question.coding or {}
    rule_codes = coding.get("codes") or []
    if question.type == "yesno" and coding.get("codes_when") in keys:
        codes.update(rule_codes)
    limit = coding.get("codes_at_most")
    if question.type == "scale" and limit is not None and number is not None and number <= limit:
        codes.update(rule_codes)
    return codes


def store_answer(
    session: Session,
    invitation: Invitation,
    question: Question,
    *,
    now: datetime,
    keys: list[str] | None = None,
    number: float | None = None,
    text: str | None = None,
    skipped: bool = False,
    codebook: Codebook | None = None,
) -> Answer:
    """Write (or overwrite) one answer with its choices and option codes, right away, so a
    half-finished consultation still counts. With `codebook`, a free text is coded now (AUTO
    rows, or the NO_CODE marker), replacing the coder's earlier rows; HUMAN rows stay."""
    answer = answer_for(invitation, question)
    if answer is None:
        answer = Answer(invitation=invitation, question=question, answered_at=now)
        session.add(answer)
    else:
        answer.changed_at = now
    answer.number = number
    answer.text = text
    answer.skipped = skipped
    answer.choices = [AnswerChoice(option_key=k) for k in keys or []]
    # Option-carried codes follow the answer; the coder's and coordinators' codes are theirs.
    recode = codebook is not None and question.type == "text"
    replaced = {CodeSource.OPTION, CodeSource.AUTO} if recode else {CodeSource.OPTION}
    kept = [c for c in answer.codes if c.source not in replaced]
    answer.codes = kept + [
        AnswerCode(code=code, source=CodeSource.OPTION, coded_at=now)
        for code in sorted(_codes(question, keys or [], number))
    ]
    if recode and text and not skipped:
        assert codebook is not None
        answer.codes += [
            AnswerCode(code=code, source=CodeSource.AUTO, coded_at=now, **fields)
            for code, fields in auto_codes(code_text(text, codebook))
        ]
    if invitation.status != InvitationStatus.COMPLETED:
        invitation.status = InvitationStatus.STARTED
        invitation.started_at = invitation.started_at or now
    session.flush()
    return answer


# --- presses ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Press:
    kind: str
    invitation_id: int
    question_id: int | None = None
    value: str | None = None


MAX_ID = 2**31 - 1  # row ids are 32-bit; a forged longer number must not reach the database


def _id(text: str) -> int:
    value = int(text)
    if not 0 < value <= MAX_ID:
        raise ValueError(text)
    return value


def parse_press(data: str) -> Press | None:
    """Parse callback data of this module, or None if it is malformed."""
    parts = data.split(":")
    try:
        if parts[0] == "p" and len(parts) == 3 and parts[1] in {"go", "later", "no"}:
            return Press(parts[1], _id(parts[2]))
        if parts[0] in {"a", "t"} and len(parts) == 4:
            return Press(parts[0], _id(parts[1]), _id(parts[2]), parts[3])
        if parts[0] in {"d", "s", "e"} and len(parts) == 3:
            return Press(parts[0], _id(parts[1]), _id(parts[2]))
    except ValueError:
        return None
    return None


class Refused(Exception):
    """A press that changes nothing; `template` says why, kindly."""

    def __init__(self, template: str, reason: str, *, toast: bool = False) -> None:
        super().__init__(reason)
        self.template = template
        self.toast = toast


def handle_press(session: Session, ctx: AppContext, user_id: int, data: str) -> Reply:
    renderer = ctx.renderer
    try:
        return _handle_press(session, ctx, user_id, data)
    except Refused as refused:
        log.warning("refused press %r from %s: %s", data[:64], user_id, refused)
        text = renderer.render(T + refused.template)
        return Reply(toast=text) if refused.toast else Reply(toast=text).say(text)


_PRESS_LOADS = (
    joinedload(Invitation.round)
    .joinedload(Round.consultation)
    .selectinload(Consultation.questions),
    selectinload(Invitation.answers),
)


def _checked(
    session: Session, user_id: int, press: Press
) -> tuple[Participant, Invitation, Question | None]:
    participant = find_participant(session, user_id)
    # Everything a press reads, in three statements instead of a lazy load each (round,
    # consultation, its questions, the answers so far): ORM statements, not SQL, are what a
    # press costs, and presses are the bot's busiest path.
    invitation = session.get(Invitation, press.invitation_id, options=_PRESS_LOADS)
    if participant is None or invitation is None or invitation.participant_id != participant.id:
        raise Refused("bad_button.html", "invitation not this person's")
    if invitation.round.status != RoundStatus.OPEN:
        raise Refused("round_closed.html", f"round {invitation.round_id} not open")
    question = None
    if press.question_id is not None:
        question = session.get(Question, press.question_id)
        if question is None or question.consultation_id != invitation.round.consultation_id:
            raise Refused("bad_button.html", "question not in this round")
    return participant, invitation, question


def _parse_value(question: Question, value: str | None) -> tuple[list[str], float | None]:
    if value is None:
        raise Refused("bad_button.html", "no value")
    if question.type == "single":
        if value.isdigit() and int(value) < len(question.options):
            return [str(question.options[int(value)]["id"])], None
    elif question.type == "yesno":
        if value in _labels(question):
            return [value], None
    elif question.type == "scale":
        scale = question.scale or {}
        if value.lstrip("-").isdigit() and scale.get("min", 1) <= int(value) <= scale.get("max", 5):
            return [], float(value)
    raise Refused("bad_button.html", f"value {value!r} not valid for a {question.type} question")


# --- the fast path for the usual presses -----------------------------------------------------
#
# Most presses are Start now on a round's intro, or a plain answer (single, yes/no, scale) to
# the question being asked, the last one included. Those are decided from three or four Core
# statements and a per-process copy of the consultation's questions (a consultation is an
# immutable, versioned row). Anything else (refusals, a second open round for the person,
# changes after finishing, multi and text questions) falls back to the ORM path below, which
# decides the same way; the fast path returns None before writing anything in that case.


@dataclass(frozen=True)
class QuestionData:
    """A question as plain data, with the attributes the templates and helpers read."""

    id: int
    key: str
    type: str
    text: str
    help: str | None
    required: bool
    options: list[Any]
    scale: dict[str, Any] | None
    coding: dict[str, Any]


@dataclass
class _Version:
    """One version of a consultation as the fast path keeps it for the life of the process:
    its questions, and its cards' texts as rendered so far. Outside the ORM path a card's
    text depends only on its question and on the button answer shown above it, a small set,
    and rendering it was the largest part of a press after the database's."""

    questions: tuple[QuestionData, ...]
    cards: dict[tuple[int, tuple[str, str] | None], str] = field(default_factory=dict)
    answered: dict[tuple[int, str], str] = field(default_factory=dict)

    def card(
        self,
        renderer: Renderer,
        question: QuestionData,
        invitation_id: int,
        previous: tuple[str, str] | None = None,
    ) -> OutgoingMessage:
        """prompt_message, with the text rendered once."""
        text = self.cards.get((question.id, previous))
        if text is None:
            text = _prompt_text(renderer, self.questions, question, previous=previous)
            self.cards[(question.id, previous)] = text
        return _prompt(text, question, invitation_id)

    def answered_card(
        self, renderer: Renderer, question: QuestionData, described: str
    ) -> OutgoingMessage:
        """_answered, with the text rendered once."""
        text = self.answered.get((question.id, described))
        if text is None:
            text = _answered(renderer, self.questions, question, described).text
            self.answered[(question.id, described)] = text
        return OutgoingMessage(text=text)


def _version(
    connection: Connection, ctx: AppContext, consultation_id: int, content_hash: str
) -> _Version:
    cache = ctx.loaded.get(dict[tuple[int, str], _Version])  # one per process
    key = (consultation_id, content_hash)
    version = cache.get(key)
    if version is None:
        q = Question.__table__.c
        questions = tuple(
            QuestionData(*row)
            for row in connection.execute(
                select(
                    q.id, q.key, q.type, q.text, q.help, q.required, q.options, q.scale, q.coding
                )
                .where(q.consultation_id == consultation_id)
                .order_by(q.position)
            )
        )
        version = cache[key] = _Version(questions)
    return version


_INV, _ROUND, _CONS, _PART = (
    Invitation.__table__.c,
    Round.__table__.c,
    Consultation.__table__.c,
    Participant.__table__.c,
)
_ANS, _CHOICE = Answer.__table__.c, AnswerChoice.__table__.c
# The fast path's statements are built once, with bind parameters: building a statement per
# press (coercing arguments, computing its cache key) costs as much as running it.
# One query for everything a press needs: the invitation, its round and consultation, the
# person, and the answers so far (one row per answer and choice; a row of NULLs for them when
# there is none yet).
_FAST_PRESS = Prepared(
    select(
        _PART.telegram_user_id,
        _PART.status,
        _INV.participant_id,
        _INV.status,
        _INV.editing_question_id,
        _ROUND.status,
        _ROUND.consultation_id,
        _ROUND.closes_at,
        _CONS.content_hash,
        _CONS.title,
        _ANS.question_id,
        _ANS.skipped,
        _ANS.text,
        _ANS.number,
        _CHOICE.option_key,
    )
    .select_from(Invitation.__table__)
    .join(Round.__table__, _ROUND.id == _INV.round_id)
    .join(Consultation.__table__, _CONS.id == _ROUND.consultation_id)
    .join(Participant.__table__, _PART.id == _INV.participant_id)
    .outerjoin(Answer.__table__, _ANS.invitation_id == _INV.id)
    .outerjoin(AnswerChoice.__table__, _CHOICE.answer_id == _ANS.id)
    .where(_INV.id == bindparam("invitation"))
)
# Another invitation of this person's in an open round that is waiting, in progress or being
# changed: then what comes next is the ORM path's decision.
_OTHERS_OPEN = Prepared(
    select(_INV.id)
    .join(Round.__table__, _ROUND.id == _INV.round_id)
    .where(
        _INV.participant_id == bindparam("person"),
        _INV.id != bindparam("invitation"),
        _ROUND.status == RoundStatus.OPEN,
        # Not in_(): its list is expanded per execution, which a Prepared statement skips.
        or_(
            *(_INV.status == status for status in (*WAITING, InvitationStatus.STARTED)),
            _INV.editing_question_id.is_not(None),
        ),
    )
    .limit(1)
)
_START = Prepared(
    Invitation.__table__.update()
    .where(_INV.id == bindparam("invitation"))
    .values(
        status=InvitationStatus.STARTED,
        started_at=func.coalesce(_INV.started_at, bindparam("now")),
        delivered_at=func.coalesce(_INV.delivered_at, bindparam("now")),
    )
)
_COMPLETE = Prepared(
    Invitation.__table__.update()
    .where(_INV.id == bindparam("invitation"))
    .values(status=InvitationStatus.COMPLETED, completed_at=bindparam("now"))
)
_INSERT_ANSWER = Prepared(
    Answer.__table__.insert()
    .values(
        invitation_id=bindparam("invitation"),
        question_id=bindparam("question"),
        answered_at=bindparam("now"),
        number=bindparam("number"),
        text=None,
        skipped=False,
    )
    .returning(_ANS.id)
)
_INSERT_CHOICE = Prepared(
    AnswerChoice.__table__.insert().values(
        answer_id=bindparam("answer_id"), option_key=bindparam("option_key")
    )
)
_INSERT_CODE = Prepared(
    AnswerCode.__table__.insert().values(
        answer_id=bindparam("answer_id"),
        code=bindparam("code"),
        source=bindparam("source"),
        coded_at=bindparam("coded_at"),
        doubtful=False,
    )
)


_REMEMBER_CARD = Prepared(
    Invitation.__table__.update()
    .where(_INV.id == bindparam("invitation"))
    .values(prompt_message_id=bindparam("message_id"))
)


def remember_card(connection: Connection, invitation_id: int, message_id: int) -> None:
    """Note which chat message is the invitation's prompt card (after it was sent)."""
    _REMEMBER_CARD.run(connection, {"invitation": invitation_id, "message_id": message_id})


def _others_open(connection: Any, participant_id: int, invitation_id: int) -> bool:
    found = _OTHERS_OPEN.scalar(connection, {"person": participant_id, "invitation": invitation_id})
    return found is not None


def fast_press(connection: Connection, ctx: AppContext, user_id: int, data: str) -> Reply | None:
    """Decide Start now or a plain button answer in Core statements on `connection`, or return
    None (having written nothing) when the press needs the full path."""
    press = parse_press(data)
    if press is None or press.kind not in ("go", "a"):
        return None
    at = {"invitation": press.invitation_id}
    rows = _FAST_PRESS.all(connection, at)
    if not rows:
        return None
    owner, standing, person, status, editing, round_status, consultation_id = rows[0][:7]
    closes_at, digest, title = rows[0][7:10]
    if owner != user_id or editing is not None or round_status != RoundStatus.OPEN:
        return None
    if standing == ParticipantStatus.STOPPED:
        return None  # the full path says how to come back
    version = _version(connection, ctx, consultation_id, digest)
    questions = version.questions
    so_far: dict[int, dict[str, Any]] = {}
    for question_id, skipped, text, number, key in (row[10:] for row in rows):
        if question_id is None:
            continue  # no answer yet
        entry = so_far.setdefault(
            question_id, {"skipped": skipped, "text": text, "number": number, "keys": set()}
        )
        if key is not None:
            entry["keys"].add(key)
    waiting = [q for q in questions if q.id not in so_far]
    if not waiting:
        return None
    now = ctx.clock.now()
    if press.kind == "go":
        if status not in (*WAITING, InvitationStatus.STARTED):
            return None
        if _others_open(connection, person, press.invitation_id):
            return None  # one round at a time: the full path explains
        _START.run(connection, {**at, "now": now})
        return Reply(toast="").card(
            press.invitation_id, version.card(ctx.renderer, waiting[0], press.invitation_id)
        )
    question = waiting[0]
    if status != InvitationStatus.STARTED or question.id != press.question_id:
        return None
    if question.type not in ("single", "yesno", "scale"):
        return None
    try:
        keys, number = _parse_value(question, press.value)  # type: ignore[arg-type]
    except Refused:
        return None
    last = len(waiting) == 1
    if last and _others_open(connection, person, press.invitation_id):
        return None  # finishing offers the next round: the full path does that
    _insert_answer(connection, press.invitation_id, question, keys, number, now)
    described = describe(question, skipped=False, text=None, number=number, keys=set(keys))
    if not last:
        # The card moves on to the next question in place: one edit, no new message.
        following = version.card(
            ctx.renderer, waiting[1], press.invitation_id, previous=(question.text, described)
        )
        return Reply(toast="", edit=following)
    out = Reply(toast="", edit=version.answered_card(ctx.renderer, question, described))
    _COMPLETE.run(connection, {**at, "now": now})
    so_far[question.id] = {"skipped": False, "text": None, "number": number, "keys": set(keys)}
    items = [(q, describe(q, **so_far[q.id]) if q.id in so_far else "") for q in questions]
    return out.say(_summary(ctx.renderer, press.invitation_id, title, closes_at, items))


def _insert_answer(
    connection: Any,
    invitation_id: int,
    question: QuestionData,
    keys: list[str],
    number: float | None,
    now: datetime,
) -> None:
    """A new button answer with its choices and option codes, as store_answer writes it."""
    answer_id = _INSERT_ANSWER.scalar(
        connection,
        {"invitation": invitation_id, "question": question.id, "now": now, "number": number},
    )
    if keys:
        _INSERT_CHOICE.run(connection, [{"answer_id": answer_id, "option_key": k} for k in keys])
    codes = sorted(_codes(question, keys, number))  # type: ignore[arg-type]
    if codes:
        _INSERT_CODE.run(
            connection,
            [
                {"answer_id": answer_id, "code": c, "source": CodeSource.OPTION, "coded_at": now}
                for c in codes
            ],
        )


def _handle_press(session: Session, ctx: AppContext, user_id: int, data: str) -> Reply:
    press = parse_press(data)
    if press is None:
        raise Refused("bad_button.html", "malformed")
    participant, invitation, question = _checked(session, user_id, press)
    now = ctx.clock.now()
    renderer = ctx.renderer
    if press.kind == "go":
        return _start(session, ctx, participant, invitation)
    if press.kind == "later":
        return Reply().say(renderer.render(T + "later.html"))
    if press.kind == "no":
        if invitation.status in (*WAITING, InvitationStatus.STARTED):
            invitation.status = InvitationStatus.DECLINED
            invitation.declined_at = now
            invitation.editing_question_id = None
        out = Reply().say(renderer.render(T + "declined.html"))
        return _offer_next(session, ctx, participant, out, after=invitation)
    assert question is not None
    if press.kind == "e":
        if invitation.status != InvitationStatus.COMPLETED:
            raise Refused("already_saved.html", "change before finishing", toast=True)
        invitation.editing_question_id = question.id
        prompt = question_message(renderer, invitation, question)
        return Reply(toast="").card(invitation.id, prompt)
    if invitation.status not in (InvitationStatus.STARTED, InvitationStatus.COMPLETED):
        raise Refused("already_saved.html", f"invitation is {invitation.status}", toast=True)
    current = current_question(invitation)
    if current is None or current.id != question.id:
        # A second tap on a prompt already answered: idempotent, says so, changes nothing.
        raise Refused("already_saved.html", "not the question being asked", toast=True)
    if press.kind == "a":
        if question.type not in ("single", "yesno", "scale"):
            raise Refused("bad_button.html", "answer press on a non-button question")
        keys, number = _parse_value(question, press.value)
        store_answer(session, invitation, question, now=now, keys=keys, number=number)
        return _advance(session, ctx, participant, invitation, question)
    if press.kind == "s":
        if question.type != "text" or question.required:
            raise Refused("bad_button.html", "skip on a required question")
        store_answer(
            session,
            invitation,
            question,
            now=now,
            skipped=True,
            codebook=codebook_for(ctx.settings, ctx.loaded),
        )
        return _advance(session, ctx, participant, invitation, question)
    if question.type != "multi":
        raise Refused("bad_button.html", "toggle on a non-multi question")
    if press.kind == "t":
        value = press.value or ""
        if not value.isdigit() or int(value) >= len(question.options):
            raise Refused("bad_button.html", "no such option")
        option = question.options[int(value)]
        answer = answer_for(invitation, question)
        chosen = [c.option_key for c in answer.choices] if answer else []
        exclusive = {str(o["id"]) for o in question.options if o.get("exclusive")}
        key = str(option["id"])
        if key in chosen:
            chosen.remove(key)
        elif key in exclusive:
            chosen = [key]  # "None of these" clears the others
        else:
            chosen = [k for k in chosen if k not in exclusive] + [key]
        store_answer(session, invitation, question, now=now, keys=chosen)
        # The ticks are stored as they are given; the question stays current until Done.
        invitation.editing_question_id = question.id
        return Reply(toast="", edit=question_message(renderer, invitation, question))
    # Done
    answer = answer_for(invitation, question)
    if answer is None or not answer.choices:
        raise Refused("pick_one.html", "done with nothing ticked", toast=True)
    return _advance(session, ctx, participant, invitation, question)


def _start(
    session: Session, ctx: AppContext, participant: Participant, invitation: Invitation
) -> Reply:
    renderer = ctx.renderer
    if invitation.status == InvitationStatus.COMPLETED:
        return Reply(toast="").say(summary_message(renderer, invitation))
    active = active_invitation(session, participant)
    if active is not None and active.id != invitation.id:
        # One round at a time: finish (or decline) the one in progress first.
        out = Reply(toast="").say(renderer.render(T + "one_at_a_time.html"))
        question = current_question(active)
        if question is not None:
            out.card(active.id, question_message(renderer, active, question))
        if invitation.status in (InvitationStatus.PENDING, InvitationStatus.DELIVERED):
            invitation.status = InvitationStatus.QUEUED
        return out
    now = ctx.clock.now()
    invitation.status = InvitationStatus.STARTED
    invitation.started_at = invitation.started_at or now
    invitation.delivered_at = invitation.delivered_at or now
    question = current_question(invitation)
    if question is None:
        return _finish(session, ctx, participant, invitation, Reply(toast=""))
    return Reply(toast="").card(invitation.id, question_message(renderer, invitation, question))


def _advance(
    session: Session,
    ctx: AppContext,
    participant: Participant,
    invitation: Invitation,
    answered: Question,
    *,
    typed: bool = False,
) -> Reply:
    """After an answer: the card moves on to the next question in place, or shows the answer
    and the summary follows. A typed answer sits below the card, so the card only loses its
    buttons and the next question comes as a new card under what they typed."""
    renderer = ctx.renderer
    invitation.editing_question_id = None
    out = Reply(toast="", edit=answered_message(renderer, invitation, answered))
    if typed:
        out.edit_message_id = invitation.prompt_message_id
    if invitation.status == InvitationStatus.COMPLETED:
        return out.say(summary_message(renderer, invitation))
    question = current_question(invitation)
    if question is None:
        return _finish(session, ctx, participant, invitation, out)
    if typed:
        return out.card(invitation.id, question_message(renderer, invitation, question))
    said = describe_answer(answered, answer_for(invitation, answered))
    out.edit = question_message(renderer, invitation, question, previous=(answered.text, said))
    return out


def _finish(
    session: Session,
    ctx: AppContext,
    participant: Participant,
    invitation: Invitation,
    out: Reply,
) -> Reply:
    invitation.status = InvitationStatus.COMPLETED
    invitation.completed_at = ctx.clock.now()
    out.say(summary_message(ctx.renderer, invitation))
    return _offer_next(session, ctx, participant, out, after=invitation)


def _offer_next(
    session: Session,
    ctx: AppContext,
    participant: Participant,
    out: Reply,
    *,
    after: Invitation,
) -> Reply:
    session.flush()
    following = next_invitation_for(session, participant)
    if following is None or following.id == after.id:
        return out
    if following.status in WAITING:
        following.status = InvitationStatus.DELIVERED
        following.delivered_at = following.delivered_at or ctx.clock.now()
    out.say(
        invitation_message(
            session, ctx.renderer, following, partnership=ctx.settings.partnership.name
        )
    )
    return out


# --- typed messages ------------------------------------------------------------------------


def handle_text(session: Session, ctx: AppContext, participant: Participant, text: str) -> Reply:
    """Free text from a participant: the answer to a text question, or a nudge back to the
    question (or round) that is waiting."""
    renderer = ctx.renderer
    invitation = active_invitation(session, participant)
    if invitation is None:
        return resume(session, ctx, participant, typed=True)
    question = current_question(invitation)
    if question is None:
        return resume(session, ctx, participant, typed=True)
    if question.type != "text":
        return (
            Reply()
            .say(renderer.render(T + "use_buttons.html"))
            .card(invitation.id, question_message(renderer, invitation, question))
        )
    limit = min(
        question.max_length or ctx.settings.privacy.max_text_length,
        ctx.settings.privacy.max_text_length,
    )
    if len(text) > limit:
        # Never truncate silently and never keep a half: nothing is stored until it fits.
        return Reply().say(renderer.render(T + "too_long.html", limit=limit, length=len(text)))
    if not text.strip():
        return Reply().card(invitation.id, question_message(renderer, invitation, question))
    # Coded as it is stored (a few ms), so a digest never has to code a backlog.
    codebook = codebook_for(ctx.settings, ctx.loaded)
    store_answer(session, invitation, question, now=ctx.clock.now(), text=text, codebook=codebook)
    return _advance(session, ctx, participant, invitation, question, typed=True)


def handle_other(session: Session, ctx: AppContext, participant: Participant, kind: str) -> Reply:
    """A sticker, photo, voice note or location: kindly say what is expected instead."""
    renderer = ctx.renderer
    invitation = active_invitation(session, participant)
    question = current_question(invitation) if invitation else None
    out = Reply().say(
        renderer.render(
            T + "not_text.html", kind=kind, expecting=question.type if question else None
        )
    )
    if invitation is not None and question is not None:
        out.card(invitation.id, question_message(renderer, invitation, question))
    return out


def resume(
    session: Session, ctx: AppContext, participant: Participant, *, typed: bool = False
) -> Reply:
    """Carry on where they left off, or offer the round that is waiting."""
    renderer = ctx.renderer
    invitation = next_invitation_for(session, participant)
    if invitation is None:
        return Reply().say(renderer.render(T + "nothing_waiting.html", typed=typed))
    if invitation.status in WAITING or invitation.status == InvitationStatus.DECLINED:
        if invitation.status in WAITING:
            invitation.status = InvitationStatus.DELIVERED
            invitation.delivered_at = invitation.delivered_at or ctx.clock.now()
        return Reply().say(
            invitation_message(
                session, renderer, invitation, partnership=ctx.settings.partnership.name
            )
        )
    question = current_question(invitation)
    if question is None:
        return Reply().say(summary_message(renderer, invitation))
    return Reply().card(invitation.id, question_message(renderer, invitation, question))


def answers_summary(invitation: Invitation) -> list[dict[str, Any]]:
    return [
        {"question": q.text, "answer": describe_answer(q, answer_for(invitation, q))}
        for q in invitation.round.consultation.questions
        if answer_for(invitation, q) is not None
    ]
