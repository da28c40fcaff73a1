"""Consultation sets in the database: importing validated files as versioned rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.consultations.sets import ConsultationSet, consultation_digest_hash
from bot.consultations.sets import Question as QuestionSpec
from storage.models import Consultation, Question


def import_consultation(
    session: Session, spec: ConsultationSet, source: Path | None = None
) -> tuple[Consultation, bool]:
    """Store `spec` unless the same content is there already. Returns (row, created).

    A changed file becomes a new row rather than an update, so answers to earlier rounds
    keep pointing at the questions that were actually asked.
    """
    content_hash = consultation_digest_hash(spec)
    existing = session.scalar(
        select(Consultation).where(
            Consultation.slug == spec.id, Consultation.content_hash == content_hash
        )
    )
    if existing is not None:
        return existing, False
    for older in session.scalars(
        select(Consultation).where(Consultation.slug == spec.id, Consultation.retired.is_(False))
    ):
        older.retired = True
    consultation = Consultation(
        slug=spec.id,
        version=spec.version,
        title=spec.title,
        intro=spec.intro,
        estimated_minutes=spec.estimated_minutes,
        content_hash=content_hash,
        spec=spec.to_dict(),
        source_path=str(source) if source else None,
    )
    for position, question in enumerate(spec.questions):
        consultation.questions.append(Question(**question_columns(position, question)))
    session.add(consultation)
    session.flush()
    return consultation, True


def question_columns(position: int, question: QuestionSpec) -> dict[str, Any]:
    """A question of a set as the columns of its Question row (a preview plays these too)."""
    return {
        "key": question.id,
        "position": position,
        "type": question.type.value,
        "text": question.text,
        "help": question.help,
        "required": question.required,
        "options": [option.model_dump() for option in question.options or []],
        "scale": question.scale.model_dump() if question.scale else None,
        "max_length": question.max_length,
        "coding": {
            "codes": list(question.codes),
            "codes_when": question.codes_when,
            "codes_at_most": question.codes_at_most,
        },
        "relevant": question.relevant,
        "constraint_message": question.constraint_message,
    }


def current_consultations(session: Session) -> list[Consultation]:
    """The newest version of every set, by title."""
    return list(
        session.scalars(
            select(Consultation).where(Consultation.retired.is_(False)).order_by(Consultation.title)
        )
    )


def consultation_by_slug(session: Session, slug: str) -> Consultation | None:
    return session.scalar(
        select(Consultation)
        .where(Consultation.slug == slug, Consultation.retired.is_(False))
        .order_by(Consultation.id.desc())
    )
