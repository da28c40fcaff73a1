"""Coordinators' review of barrier coding: uncoded or doubtful free-text answers one at a time,
with the machine's suggestion ticked. A human's codes (HUMAN rows plus an AnswerReview) override
the machine's from then on. The dialog lives in DialogState, so any process can carry it on;
callback data names the answer and a code index, and both are checked against that state.
A stale or forged button raises DialogError, and nothing changes."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Select, delete, exists, func, select
from sqlalchemy.orm import Session

from bot.coding.codebook import Codebook
from bot.coding.stored import MARKERS, UNCODED, code_uncoded_answers
from bot.kernel import dialogs
from bot.kernel.audit import record
from bot.kernel.dialogs import DialogError
from bot.kernel.render import Renderer
from bot.kernel.reply import OutgoingMessage, Reply
from storage.models import (
    Answer,
    AnswerCode,
    AnswerReview,
    CodeSource,
    DialogState,
    Invitation,
    Question,
    Round,
    RoundStatus,
)

KIND = "review"
PREFIX = "rv"
# rv:t:<answer>:<code index> ticks or unticks a code; rv:s:<answer> saves, rv:k:<answer> skips.
PRESS = re.compile(r"rv:([tsk]):([0-9]{1,9})(?::([0-9]{1,3}))?")


@dataclass
class Reviewer:
    """Whose review this is, and how to speak."""

    chat_id: int
    codebook: Codebook
    renderer: Renderer

    def refuse(self, reason: str) -> DialogError:
        return DialogError(self.renderer.render("messages/review/refused.html", reason=reason))


@dataclass
class ReviewView:
    """One answer under review, as templates/digest/review.html shows it."""

    answer_id: int
    question: str
    text: str
    suggested: list[str]
    selected: list[str]
    evidence: list[tuple[str, str]]  # (code, words)
    doubtful: bool
    remaining: int
    # Written in a language the codebook has no cues for: the coder did not read it.
    uncoded: bool = False


def _queue(skipped: list[int]) -> Select[tuple[int]]:
    """Written answers no one has reviewed that the coder was unsure of, found no code in, or
    could not read (a language it has no cues for)."""
    flagged = exists().where(
        AnswerCode.answer_id == Answer.id,
        AnswerCode.source == CodeSource.AUTO,
        (AnswerCode.doubtful.is_(True)) | (AnswerCode.code.in_(MARKERS)),
    )
    queue = (
        select(Answer.id)
        .join(Question, Question.id == Answer.question_id)
        .where(
            Question.type == "text",
            Answer.skipped.is_(False),
            Answer.text.is_not(None),
            ~exists().where(AnswerReview.answer_id == Answer.id),
            flagged,
        )
    )
    return queue.where(Answer.id.not_in(skipped)) if skipped else queue


def _view(session: Session, answer_id: int, selected: list[str], remaining: int) -> ReviewView:
    answer = session.get(Answer, answer_id)
    assert answer is not None
    auto = list(
        session.scalars(
            select(AnswerCode).where(
                AnswerCode.answer_id == answer_id, AnswerCode.source == CodeSource.AUTO
            )
        )
    )
    suggested = sorted(c.code for c in auto if c.code not in MARKERS)
    return ReviewView(
        answer_id=answer_id,
        question=answer.question.text,
        text=answer.text or "",
        suggested=suggested,
        selected=selected,
        evidence=[(c.code, c.evidence) for c in auto if c.evidence and c.code not in MARKERS],
        doubtful=any(c.doubtful for c in auto),
        remaining=remaining,
        uncoded=any(c.code == UNCODED for c in auto),
    )


def next_item(
    session: Session, codebook: Codebook, chat_id: int, *, skipped: list[int] | None = None
) -> ReviewView | None:
    """Pick the next answer to review (doubtful ones first) and remember it for this chat."""
    skipped = list(skipped or [])
    rounds = list(
        session.scalars(
            select(Round.id).where(Round.status.in_([RoundStatus.OPEN, RoundStatus.CLOSED]))
        )
    )
    if rounds:
        code_uncoded_answers(session, rounds, codebook)
        session.flush()
    doubtful_first = exists().where(
        AnswerCode.answer_id == Answer.id,
        AnswerCode.source == CodeSource.AUTO,
        AnswerCode.doubtful.is_(True),
    )
    answer_id = session.scalar(
        _queue(skipped)
        .join(Invitation, Invitation.id == Answer.invitation_id)
        .order_by(doubtful_first.desc(), Answer.id)
        .limit(1)
    )
    state = dialogs.dialog_state(session, chat_id, KIND)
    if answer_id is None:
        if state is not None:
            session.delete(state)
        return None
    remaining = int(
        session.scalar(select(func.count()).select_from(_queue(skipped).subquery())) or 0
    )
    view = _view(session, answer_id, [], remaining)
    view.selected = list(view.suggested)
    data = {"answer_id": answer_id, "codes": view.selected, "skipped": skipped[-200:]}
    if state is None:
        session.add(DialogState(chat_id=chat_id, kind=KIND, step="answer", data=data))
    else:
        state.step = "answer"
        state.data = data
    session.flush()
    return view


def _current(session: Session, r: Reviewer, answer_id: int) -> DialogState:
    state = dialogs.dialog_state(session, r.chat_id, KIND)
    if state is None or state.data.get("answer_id") != answer_id:
        raise r.refuse("moved_on")
    if session.get(AnswerReview, answer_id) is not None:
        # Not deleted here: a refusal rolls its transaction back. The next /review moves on.
        raise r.refuse("reviewed")
    return state


def toggle(session: Session, r: Reviewer, answer_id: int, index: int) -> ReviewView:
    codebook = r.codebook
    state = _current(session, r, answer_id)
    if not 0 <= index < len(codebook.codes):
        raise r.refuse("invalid")
    code = codebook.codes[index].code
    codes = list(state.data.get("codes", []))
    codes = [c for c in codes if c != code] if code in codes else sorted([*codes, code])
    state.data = {**state.data, "codes": codes}
    return _view(session, answer_id, codes, 0)


def save(session: Session, r: Reviewer, answer_id: int, *, actor: int | None) -> ReviewView | None:
    """Keep the ticked codes as the human coding (even none), then move to the next answer."""
    codebook = r.codebook
    state = _current(session, r, answer_id)
    codes = [c for c in state.data.get("codes", []) if c in codebook]
    session.execute(
        delete(AnswerCode).where(
            AnswerCode.answer_id == answer_id, AnswerCode.source == CodeSource.HUMAN
        )
    )
    for code in codes:
        session.add(
            AnswerCode(answer_id=answer_id, code=code, source=CodeSource.HUMAN, coded_by=actor)
        )
    session.add(AnswerReview(answer_id=answer_id, reviewed_by=actor))
    record(
        session,
        "coding.review",
        actor=actor,
        subject=("answer", answer_id),
        details={"codes": codes},
    )
    session.flush()
    return next_item(session, codebook, r.chat_id, skipped=list(state.data.get("skipped", [])))


def skip(session: Session, r: Reviewer, answer_id: int) -> ReviewView | None:
    state = _current(session, r, answer_id)
    skipped = [*state.data.get("skipped", []), answer_id]
    return next_item(session, r.codebook, r.chat_id, skipped=skipped)


def start(session: Session, r: Reviewer) -> Reply:
    """/review: the next answer to check, as a new message."""
    return Reply().say(_message(r, next_item(session, r.codebook, r.chat_id)))


def press(session: Session, r: Reviewer, data: str, *, actor: int) -> Reply:
    """A ``rv:...`` button: tick or untick a code, save, or skip; the message shows what next."""
    action, answer_id, index = _parse(r, data)
    if action == "t":
        assert index is not None
        view: ReviewView | None = toggle(session, r, answer_id, index)
    elif action == "s":
        view = save(session, r, answer_id, actor=actor)
    else:
        view = skip(session, r, answer_id)
    toast = r.renderer.render("messages/review/saved.txt") if action == "s" else None
    return Reply(edit=_message(r, view), toast=toast)


def _message(r: Reviewer, view: ReviewView | None) -> OutgoingMessage:
    if view is None:
        return OutgoingMessage(r.renderer.render("messages/review/done.html"))
    codebook, renderer = r.codebook, r.renderer
    labels = {c.code: c.label for c in codebook.codes}
    text = renderer.render(
        "digest/review.html",
        view=view,
        labels=labels,
        families={c.code: c.family for c in codebook.codes},
    )
    answer = view.answer_id
    buttons = [
        dialogs.button(
            renderer,
            "review_code",
            f"{PREFIX}:t:{answer}:{index}",
            ticked=code.code in view.selected,
            code_label=code.label,
        )
        for index, code in enumerate(codebook.codes)
    ]
    grid = [tuple(buttons[i : i + 2]) for i in range(0, len(buttons), 2)]
    grid.append(
        (
            dialogs.button(renderer, "review_save", f"{PREFIX}:s:{answer}"),
            dialogs.button(renderer, "review_skip", f"{PREFIX}:k:{answer}"),
        )
    )
    return OutgoingMessage(text=text, buttons=tuple(grid))


def _parse(r: Reviewer, data: str) -> tuple[str, int, int | None]:
    """'rv:t:12:3' -> ('t', 12, 3), 'rv:s:12' -> ('s', 12, None); DialogError on anything else."""
    press = PRESS.fullmatch(data)
    if press is None or (press[1] == "t") != (press[3] is not None):
        raise r.refuse("invalid")
    return press[1], int(press[2]), int(press[3]) if press[3] is not None else None
