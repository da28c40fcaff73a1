"""Quotes: up to two short, scrubbed free texts per code shown (a code under k has no row, so
no quote), chosen in SQL."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.coding.stored import NO_CODE, counts_for_answer
from bot.digests.digest import Barriers, Quote
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


def known_names(session: Session) -> list[str]:
    names = list(
        session.scalars(
            select(Participant.display_name).where(Participant.display_name.is_not(None))
        )
    )
    names += list(session.scalars(select(Organisation.name)))
    return [n for n in names if n]


def pick_quotes(session: Session, ids: list[int], barriers: Barriers) -> list[Quote]:
    """Up to two short quotes per code shown (a code under k has no row, so no quote)."""
    rows = barriers.rows + barriers.successes
    if not rows:
        return []
    scrubber = Scrubber(known_names(session))
    chosen = _quote_candidates(session, ids, sorted({row.code for row in rows}))
    quotes: list[Quote] = []
    used: set[str] = set()  # a quote already shown under another code is a last resort
    for row in rows:
        candidates = chosen.get(row.code, [])
        fresh: list[str] = []
        reused: list[str] = []
        for text in candidates:
            clean = scrubber(text or "")
            if len(clean) > QUOTE_MAX:
                clean = clean[: QUOTE_MAX - 1].rsplit(" ", 1)[0] + "…"
            if len(clean) < 20 or clean in fresh or clean in reused:
                continue
            (reused if clean in used else fresh).append(clean)
        picked = (fresh + reused)[:2]
        used.update(picked)
        quotes.extend(Quote(row.code, row.label, row.family, q) for q in picked)
    return quotes


QUOTES_PER_CODE = 12  # candidates read per code; two are shown


def _quote_candidates(
    session: Session, ids: list[int], wanted: list[str]
) -> dict[str, list[str | None]]:
    """Per wanted code, up to QUOTES_PER_CODE coded free texts of 25 to 400
    characters: focused answers first (fewest codes that count), then those nearest a readable
    length. Chosen in SQL with window functions, so no text and no per-answer row is read into
    Python but the dozen per code. The codes that count: AUTO ones, or HUMAN once reviewed."""
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
            Invitation.round_id.in_(ids),
            Question.type == "text",
            Answer.text.is_not(None),
            AnswerCode.code != NO_CODE,
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
                order_by=(
                    coded.c.codes,
                    func.abs(coded.c.length - 110),
                    coded.c.answer_id,
                ),
            )
            .label("rank"),
        )
        .where(coded.c.code.in_(wanted), coded.c.length.between(25, 400))
        .subquery("ranked")
    )
    chosen: dict[str, list[str | None]] = defaultdict(list)
    for code, text in session.execute(
        select(ranked.c.code, Answer.text)
        .join(Answer, Answer.id == ranked.c.answer_id)
        .where(ranked.c.rank <= QUOTES_PER_CODE)
        .order_by(ranked.c.code, ranked.c.rank)
    ):
        chosen[code].append(text)
    return chosen
