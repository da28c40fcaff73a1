"""Quote candidates: a dozen short coded free texts per code, chosen in SQL and scrubbed when a
round is published; the release shows two per code it shows. A text the scrubber holds back
(it named too many people or places, or a name it could not settle) is no candidate."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.coding.stored import MARKERS, answer_language, counts_for_answer
from bot.digests.figures import QuoteCandidate
from bot.digests.privacy import Scrubber
from storage.models import (
    Answer,
    AnswerCode,
    CodeSource,
    Invitation,
    Organisation,
    Participant,
    Question,
)

QUOTE_MAX = 220
QUOTES_PER_CODE = 12  # candidates kept per code; two are shown


def known_names(session: Session) -> list[str]:
    names = list(
        session.scalars(
            select(Participant.display_name).where(Participant.display_name.is_not(None))
        )
    )
    names += list(session.scalars(select(Organisation.name)))
    return [n for n in names if n]


def quote_candidates(session: Session, round_id: int, wanted: list[str]) -> list[QuoteCandidate]:
    """Per wanted code, up to QUOTES_PER_CODE coded free texts of 25 to 400 characters, scrubbed
    and cut to QUOTE_MAX: focused answers first (fewest codes that count), then those nearest a
    readable length. Chosen in SQL with window functions, so no text and no per-answer row is
    read into Python but the dozen per code. The codes that count: AUTO ones, or HUMAN once
    reviewed."""
    if not wanted:
        return []
    length = func.length(Answer.text)
    coded = (
        select(
            AnswerCode.answer_id,
            AnswerCode.code,
            length.label("length"),
            func.count().over(partition_by=AnswerCode.answer_id).label("codes"),
        )
        .join(Answer, Answer.id == AnswerCode.answer_id)
        .join(Invitation, Invitation.id == Answer.invitation_id)
        .join(Question, Question.id == Answer.question_id)
        .where(
            Invitation.round_id == round_id,
            Question.type == "text",
            Answer.text.is_not(None),
            AnswerCode.code.not_in(MARKERS),
            counts_for_answer([CodeSource.AUTO]),
        )
        .subquery("coded")
    )
    ranked = (
        select(
            coded.c.answer_id,
            coded.c.code,
            func.row_number()
            .over(
                partition_by=coded.c.code,
                order_by=(coded.c.codes, func.abs(coded.c.length - 110), coded.c.answer_id),
            )
            .label("rank"),
        )
        .where(coded.c.code.in_(wanted), coded.c.length.between(25, 400))
        .subquery("ranked")
    )
    scrubber = Scrubber(known_names(session))
    candidates: list[QuoteCandidate] = []
    # Quotes stay in the language they were written in, marked with it where shown.
    for code, text, invitation_id, language in session.execute(
        select(ranked.c.code, Answer.text, Answer.invitation_id, answer_language())
        .join(Answer, Answer.id == ranked.c.answer_id)
        .join(Invitation, Invitation.id == Answer.invitation_id)
        .outerjoin(Participant, Participant.id == Invitation.participant_id)
        .where(ranked.c.rank <= QUOTES_PER_CODE)
        .order_by(ranked.c.code, ranked.c.rank)
    ):
        clean = scrubber.scrub(text or "")
        if clean is None:
            continue  # held back: it named too much, or a name it could not settle
        if len(clean) > QUOTE_MAX:
            clean = clean[: QUOTE_MAX - 1].rsplit(" ", 1)[0] + "…"
        if len(clean) >= 20:
            candidates.append(QuoteCandidate(code, clean, int(invitation_id), language or None))
    return candidates


def pick_quotes(candidates: list[QuoteCandidate], codes: list[str]) -> list[QuoteCandidate]:
    """Up to two quotes per code, in the codes' order; a quote already shown under another code
    is a last resort."""
    by_code: dict[str, list[QuoteCandidate]] = {}
    for candidate in candidates:
        by_code.setdefault(candidate.code, []).append(candidate)
    picked: list[QuoteCandidate] = []
    used: set[str] = set()
    for code in codes:
        fresh: list[QuoteCandidate] = []
        reused: list[QuoteCandidate] = []
        seen: set[str] = set()
        for candidate in by_code.get(code, []):
            if candidate.text in seen:
                continue
            seen.add(candidate.text)
            (reused if candidate.text in used else fresh).append(candidate)
        chosen = (fresh + reused)[:2]
        used.update(c.text for c in chosen)
        picked.extend(chosen)
    return picked
