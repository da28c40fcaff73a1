"""Per question: how many answered or skipped, choice counts (small ones merged under k) and
scale statistics, counted in SQL."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from bot.digests.digest import ChoiceCount, QuestionSummary, ScaleStats
from bot.digests.privacy import MERGED_LABEL, merge_small
from bot.digests.segments import flag
from storage.models import Answer, AnswerChoice, Consultation, Invitation, Question


def questions(session: Session, ids: list[int], k: int, notes: list[str]) -> list[QuestionSummary]:
    """One summary per question asked in the rounds, in the order they were asked."""
    stats = _stats(session, ids)
    choice_counts = _choice_counts(session, ids)
    summaries: list[QuestionSummary] = []
    hidden_any = False
    for question, title in session.execute(
        select(Question, Consultation.title)
        .join(Consultation, Consultation.id == Question.consultation_id)
        .where(Question.id.in_(list(stats)))
        .order_by(Question.consultation_id, Question.position)
    ).all():
        total, n_answered, n, mean, mean_sq, lo, hi = stats[question.id]
        n_answered = int(n_answered or 0)
        summary = QuestionSummary(
            key=question.key,
            text=question.text,
            type=question.type,
            answered=n_answered,
            skipped=int(total) - n_answered,
            consultation=title,
        )
        summaries.append(summary)
        if n_answered < k:
            summary.suppressed = True
            hidden_any = True
        elif question.type in ("single", "multi", "yesno"):
            counts = choice_counts.get(question.id, {})
            hidden_any |= _choices(session, ids, k, question, summary, counts)
        elif question.type == "scale" and n:
            summary.scale = _scale(question, int(n), float(mean), float(mean_sq), lo, hi)
    if hidden_any:
        notes.append(
            f"Questions answered by fewer than {k} people, and answer options chosen by fewer "
            f'than {k}, are merged into "{MERGED_LABEL}" or not shown.'
        )
    return summaries


def _stats(session: Session, ids: list[int]) -> dict[int, Any]:
    """Per question: answers, answered (not skipped), and count, mean, mean of squares, min and
    max of the numbers given, in one GROUP BY (a number counts when the answer is not skipped)."""
    number = case((Answer.skipped.is_(False), Answer.number))
    return {
        qid: row
        for qid, *row in session.execute(
            select(
                Answer.question_id,
                func.count(),
                flag(Answer.skipped.is_(False)),
                func.count(number),
                func.avg(number),
                func.avg(number * number),
                func.min(number),
                func.max(number),
            )
            .join(Invitation, Invitation.id == Answer.invitation_id)
            .where(Invitation.round_id.in_(ids))
            .group_by(Answer.question_id)
        )
    }


def _choice_counts(session: Session, ids: list[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for qid, key, n in session.execute(
        select(Answer.question_id, AnswerChoice.option_key, func.count())
        .join(Answer, Answer.id == AnswerChoice.answer_id)
        .join(Invitation, Invitation.id == Answer.invitation_id)
        .where(Invitation.round_id.in_(ids), Answer.skipped.is_(False))
        .group_by(Answer.question_id, AnswerChoice.option_key)
    ):
        counts[qid][key] = int(n)
    return counts


def _choices(
    session: Session,
    ids: list[int],
    k: int,
    question: Question,
    summary: QuestionSummary,
    counts: dict[str, int],
) -> bool:
    """Fill in the summary's choices, merging those under k; True when some could not be shown."""
    n_answered = summary.answered
    cells = [
        ChoiceCount(key, label, counts.get(key, 0), counts.get(key, 0) / n_answered)
        for key, label in _option_labels(question).items()
    ]
    merged = merge_small(cells, lambda c: c.count, k, complementary=question.type != "multi")
    summary.choices = sorted(merged.kept, key=lambda c: -c.count)
    if merged.merged and question.type == "multi":
        merged.merged_count = _distinct_choosers(
            session, ids, question.id, [c.key for c in merged.merged]
        )
        merged.suppressed = merged.merged_count < k
    if not merged.merged:
        return False
    if merged.suppressed:
        summary.merged_hidden = True
        return True
    summary.merged = ChoiceCount(
        "other", MERGED_LABEL, merged.merged_count, merged.merged_count / n_answered
    )
    return False


def _scale(question: Question, n: int, mean: float, mean_sq: float, lo: Any, hi: Any) -> ScaleStats:
    variance = max(mean_sq - mean * mean, 0.0) * (n / (n - 1) if n > 1 else 0.0)
    spec = question.scale or {}
    return ScaleStats(
        n=n,
        mean=mean,
        sd=math.sqrt(variance),
        min=float(lo),
        max=float(hi),
        min_label=spec.get("min_label"),
        max_label=spec.get("max_label"),
    )


def _distinct_choosers(session: Session, ids: list[int], question_id: int, keys: list[str]) -> int:
    return int(
        session.scalar(
            select(func.count(func.distinct(Answer.id)))
            .join(AnswerChoice, AnswerChoice.answer_id == Answer.id)
            .join(Invitation, Invitation.id == Answer.invitation_id)
            .where(
                Invitation.round_id.in_(ids),
                Answer.question_id == question_id,
                Answer.skipped.is_(False),
                AnswerChoice.option_key.in_(keys),
            )
        )
        or 0
    )


def _option_labels(question: Question) -> dict[str, str]:
    if question.type == "yesno":
        return {"yes": "Yes", "no": "No"}
    return {str(o["id"]): str(o.get("label", o["id"])) for o in question.options or []}
