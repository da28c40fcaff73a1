"""Per question, true counts: answered and skipped, people per option, and how many gave each
number on a scale (a histogram, so means, spreads and the rule on lowest and highest values
can all be worked out exactly, for a round or summed over a period)."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.digests.figures import QuestionFigures
from bot.digests.segments import flag
from storage.models import Answer, AnswerChoice, Consultation, Invitation, Question


def question_counts(session: Session, round_id: int) -> list[QuestionFigures]:
    """One entry per question asked in the round, in the order asked."""
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
    summaries: list[QuestionFigures] = []
    for question, title, slug in session.execute(
        select(Question, Consultation.title, Consultation.slug)
        .join(Consultation, Consultation.id == Question.consultation_id)
        .where(Question.id.in_(list(stats)))
        .order_by(Question.consultation_id, Question.position)
    ).all():
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
            )
        )
    return summaries


def option_labels(question: Question) -> dict[str, str]:
    if question.type == "yesno":
        return {"yes": "Yes", "no": "No"}
    return {str(o["id"]): str(o.get("label", o["id"])) for o in question.options or []}
