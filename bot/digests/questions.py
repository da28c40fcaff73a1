"""Per question, true counts: asked, answered and skipped, people per option, and how many gave
each number on a scale (a histogram, so means, spreads and the rule on lowest and highest
values can all be worked out exactly, for a round or summed over a period).

Asked: the respondents a question applied to. A question with a condition (branching) applied
to those whose answers to the questions it reads met it, worked out here from those answers,
so a person who was never asked is never counted as a "no"."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.consultations.conditions import Value, parse
from bot.digests.figures import QuestionFigures
from bot.digests.segments import flag
from storage.models import Answer, AnswerChoice, Consultation, Invitation, Question


def question_counts(session: Session, round_id: int, responded: int) -> list[QuestionFigures]:
    """One entry per question asked in the round, in the order asked; `responded` is the
    round's respondents as bot.digests.segments counted them (the base of a question asked
    of everyone)."""
    stats = {
        qid: (int(total), int(answered or 0))
        for qid, total, answered in session.execute(
            select(Answer.question_id, func.count(), flag(Answer.skipped.is_(False)))
            .join(Invitation, Invitation.id == Answer.invitation_id)
            .where(Invitation.round_id == round_id)
            .group_by(Answer.question_id)
        )
    }
    choices: dict[int, dict[str, int]] = defaultdict(dict)
    for qid, key, n in session.execute(
        select(Answer.question_id, AnswerChoice.option_key, func.count())
        .join(Answer, Answer.id == AnswerChoice.answer_id)
        .join(Invitation, Invitation.id == Answer.invitation_id)
        .where(Invitation.round_id == round_id, Answer.skipped.is_(False))
        .group_by(Answer.question_id, AnswerChoice.option_key)
    ):
        choices[qid][key] = int(n)
    values: dict[int, dict[str, int]] = defaultdict(dict)
    for qid, number, n in session.execute(
        select(Answer.question_id, Answer.number, func.count())
        .join(Invitation, Invitation.id == Answer.invitation_id)
        .where(
            Invitation.round_id == round_id,
            Answer.skipped.is_(False),
            Answer.number.is_not(None),
        )
        .group_by(Answer.question_id, Answer.number)
    ):
        values[qid][f"{float(number):g}"] = int(n)
    rows = session.execute(
        select(Question, Consultation.title, Consultation.slug)
        .join(Consultation, Consultation.id == Question.consultation_id)
        .where(Question.id.in_(list(stats)))
        .order_by(Question.consultation_id, Question.position)
    ).all()
    asked = _asked(session, round_id, [question for question, _, _ in rows], responded)
    summaries: list[QuestionFigures] = []
    for question, title, slug in rows:
        total, answered = stats[question.id]
        spec = question.scale or {}
        summaries.append(
            QuestionFigures(
                key=question.key,
                text=question.text,
                type=question.type,
                consultation=title,
                slug=slug,
                options=list(option_labels(question).items()),
                answered=answered,
                skipped=total - answered,
                choices=choices.get(question.id, {}),
                values=values.get(question.id, {}),
                min_label=spec.get("min_label"),
                max_label=spec.get("max_label"),
                asked=asked[question.id],
                condition=question.relevant,
            )
        )
    return summaries


def _asked(
    session: Session, round_id: int, questions: list[Question], responded: int
) -> dict[int, int]:
    """Question id -> respondents it applied to (`responded`: everyone who took part)."""
    out = {q.id: responded for q in questions}
    conditional = [q for q in questions if q.relevant]
    if not conditional:
        return out
    respondents = set(
        session.scalars(
            select(Answer.invitation_id)
            .distinct()
            .join(Invitation, Invitation.id == Answer.invitation_id)
            .where(Invitation.round_id == round_id)
        )
    )
    # Every question's questions are in the same consultation (a round asks one set).
    by_key = {q.key: q for q in questions}
    read = {name for q in conditional for name in parse(q.relevant or "").names()}
    values = _values(session, round_id, [by_key[k] for k in read if k in by_key])
    for question in conditional:
        condition = parse(question.relevant or "")
        out[question.id] = sum(1 for i in respondents if condition.holds(values.get(i, {})))
    return out


def _values(
    session: Session, round_id: int, questions: Iterable[Question]
) -> dict[int, dict[str, Value]]:
    """Invitation id -> question key -> answer, as a condition reads it, for `questions`."""
    keys = {q.id: (q.key, q.type) for q in questions}
    out: dict[int, dict[str, Value]] = defaultdict(dict)
    if not keys:
        return out
    for invitation_id, question_id, number, text, skipped, option in session.execute(
        select(
            Answer.invitation_id,
            Answer.question_id,
            Answer.number,
            Answer.text,
            Answer.skipped,
            AnswerChoice.option_key,
        )
        .join(Invitation, Invitation.id == Answer.invitation_id)
        .outerjoin(AnswerChoice, AnswerChoice.answer_id == Answer.id)
        .where(Invitation.round_id == round_id, Answer.question_id.in_(list(keys)))
    ):
        key, kind = keys[question_id]
        given = out[invitation_id]
        if skipped:
            given[key] = None
        elif kind == "multi":
            ticked = given.get(key)
            before = ticked if isinstance(ticked, frozenset) else frozenset()
            given[key] = before | ({option} if option else set())
        elif kind == "scale":
            given[key] = None if number is None else float(number)
        elif kind == "text":
            given[key] = text
        else:
            given[key] = option
    return out


def option_labels(question: Question) -> dict[str, str]:
    if question.type == "yesno":
        return {"yes": "Yes", "no": "No"}
    return {str(o["id"]): str(o.get("label", o["id"])) for o in question.options or []}
