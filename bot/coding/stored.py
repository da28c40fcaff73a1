"""Codes as stored: which codebook the deployment uses, the coder's AUTO rows for an answer, the
catch-up coding of answers stored without them, and which stored codes count.

An answer's codes are its OPTION and AUTO rows, unless a human reviewed it: then only its HUMAN
rows count (``counts_for_answer``).

A free text is coded only with the cues of its writer's language (``Codebook.in_language``),
never guessed from the text: as it is stored in the chat, the language the person is spoken to
as they type it (``coded_as_stored``); in the catch-up, their language as copied into their
invitation when they were asked, else their language now (``answer_language``). A text in a
language the codebook has no cues for gets an UNCODED marker and waits in /review for a
coordinator; the digest says how many wait (``awaiting_coding``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, insert, or_, select
from sqlalchemy.orm import Session

from bot.coding.codebook import Codebook
from bot.coding.codebook_file import load_codebook
from bot.coding.coder import code_text, code_texts
from bot.coding.rules import Coding
from bot.kernel.config import Settings
from bot.kernel.context import Loaded
from storage.models import (
    Answer,
    AnswerCode,
    AnswerReview,
    CodeSource,
    Invitation,
    Participant,
    Question,
)

# An AUTO row with this code marks "the coder read this answer and found nothing", so a later
# digest does not code it again. It is never counted or shown.
NO_CODE = "-"
# An AUTO row with this code marks "written in a language the codebook has no cues for": the
# coder did not read it; it waits in /review for a coordinator. Never counted or shown either.
UNCODED = "?"
MARKERS = (NO_CODE, UNCODED)
CODING_PAGE = 2000


def codebook_for(settings: Settings, loaded: Loaded | None = None) -> Codebook:
    """The codebook from settings, loaded once per process when `loaded` (ctx.loaded) is given."""
    if loaded is None:
        return load_codebook(settings.paths.codebook)
    return loaded.get(load_codebook, settings.paths.codebook)


def auto_codes(coding: Coding) -> list[tuple[str, dict[str, Any]]]:
    """The AUTO rows for one coded answer, as (code, {evidence, doubtful}); a NO_CODE marker
    when the coder found nothing, so the answer is known to be coded."""
    evidence: dict[str, str] = {}
    for ev in coding.evidence:
        if not ev.negated and ev.code not in evidence:
            evidence[ev.code] = ev.words[:300]
    return [
        (code, {"evidence": evidence.get(code), "doubtful": coding.doubtful})
        for code in coding.codes or (NO_CODE,)
    ]


def answer_language() -> ColumnElement[str | None]:
    """The language an answer was given in (a query joining Invitation and, outer, Participant):
    the one copied into the invitation when the person was asked (bot.participation.profile
    .segment_of), else the person's language now (invitations made before it was copied);
    None: not given."""
    copied = func.nullif(Invitation.segment["language"].as_string(), "")
    return func.coalesce(copied, Participant.language)


def _not_read(codebook: Codebook) -> ColumnElement[bool]:
    """The answer's language is one the codebook has no cues for (see Codebook.reads)."""
    given = answer_language()
    language = func.lower(given)
    return and_(
        given.is_not(None),
        given != "",
        *(
            and_(
                language != own,
                ~language.like(f"{own}-%"),
                ~language.like(f"{own}\\_%", escape="\\"),
            )
            for own in codebook.languages
        ),
    )


def coded_as_stored(
    text: str, spoken: str | None, recorded: str | None, codebook: Codebook
) -> list[tuple[str, dict[str, Any]]]:
    """The AUTO rows of a free text as it is stored in the chat: coded with the cues of
    `spoken`, the language the person is spoken to as they type it (rules and model in the
    codebook's own, rules in a further one with cues). The UNCODED marker, for a coordinator,
    when the codebook has no cues in it, so a Welsh text is never coded with English cues; and
    when it has none in `recorded`, the answer's language as the catch-up reads it
    (``answer_language``: they switched language since they were asked), so the next digest
    does not set aside what was coded here."""
    book = codebook.in_language(spoken)
    if book is None or not codebook.reads(recorded):
        return [(UNCODED, {"evidence": None, "doubtful": False})]
    return auto_codes(code_text(text, book))


def set_aside_unread(session: Session, round_ids: Sequence[int], codebook: Codebook) -> int:
    """Replace the coder's rows on unreviewed texts in a language the codebook has no cues for
    with the UNCODED marker: texts coded before the codebook lost that language's cues, or
    before the chat coded each text in its writer's language (``coded_as_stored``). Returns
    how many were set aside."""
    has_marker = exists().where(
        AnswerCode.answer_id == Answer.id,
        AnswerCode.source == CodeSource.AUTO,
        AnswerCode.code == UNCODED,
    )
    ids = list(
        session.scalars(
            select(Answer.id)
            .join(Invitation, Invitation.id == Answer.invitation_id)
            .outerjoin(Participant, Participant.id == Invitation.participant_id)
            .join(Question, Question.id == Answer.question_id)
            .where(
                Invitation.round_id.in_(list(round_ids)),
                Question.type == "text",
                exists().where(
                    AnswerCode.answer_id == Answer.id, AnswerCode.source == CodeSource.AUTO
                ),
                ~has_marker,
                ~exists().where(AnswerReview.answer_id == Answer.id),
                _not_read(codebook),
            )
        )
    )
    if not ids:
        return 0
    session.execute(
        delete(AnswerCode).where(
            AnswerCode.answer_id.in_(ids), AnswerCode.source == CodeSource.AUTO
        )
    )
    session.execute(
        insert(AnswerCode),
        [{"answer_id": i, "code": UNCODED, "source": CodeSource.AUTO} for i in ids],
    )
    return len(ids)


def code_uncoded_answers(
    session: Session, round_ids: Sequence[int], codebook: Codebook, *, commit_pages: bool = False
) -> int:
    """Run the coder over free-text answers that have no AUTO codes yet and no human review,
    storing AUTO rows (or a NO_CODE marker), a page at a time. Returns how many were coded.

    Texts given in the chat are coded when stored (bot.participation.journey); this catches up
    on imported answers, and on those whose codes `forget_auto_codes` dropped.

    `commit_pages`: commit the session after each page, for a process beside the bot (the
    CLI). On SQLite a write holds the one write lock until its commit, and every update the
    bot takes writes (it is marked processed): coding 24,000 texts in one transaction held
    the lock for seconds and /help waited 3.2 s. A page is coded before its rows are written,
    so the lock is held only while one page's rows go in. Each page is whole: a run cut short
    leaves the rest uncoded, for the next run.

    A text in a language the codebook has no cues for gets the UNCODED marker instead (and is
    not counted as coded); one the chat coded as it was stored is set aside so (see
    set_aside_unread)."""
    set_aside_unread(session, round_ids, codebook)
    coded = 0
    last = 0
    has_auto = exists().where(
        AnswerCode.answer_id == Answer.id, AnswerCode.source == CodeSource.AUTO
    )
    reviewed = exists().where(AnswerReview.answer_id == Answer.id)
    while True:
        page = session.execute(
            select(Answer.id, Answer.text, answer_language())
            .join(Invitation, Invitation.id == Answer.invitation_id)
            .outerjoin(Participant, Participant.id == Invitation.participant_id)
            .join(Question, Question.id == Answer.question_id)
            .where(
                Invitation.round_id.in_(round_ids),
                Question.type == "text",
                Answer.skipped.is_(False),
                Answer.text.is_not(None),
                Answer.id > last,
                ~has_auto,
                ~reviewed,
            )
            .order_by(Answer.id)
            .limit(CODING_PAGE)
        ).all()
        if not page:
            return coded
        rows: list[dict[str, Any]] = []
        # Each language with cues is coded with its own (in one batch: the model's part is
        # vectorised); the rest get the UNCODED marker.
        by_language: dict[str, tuple[Codebook, list[tuple[int, str]]]] = {}
        for answer_id, text, language in page:
            book = codebook.in_language(language)
            if book is None:
                rows.append({"answer_id": answer_id, "code": UNCODED, "source": CodeSource.AUTO})
            else:
                by_language.setdefault(book.language, (book, []))[1].append((answer_id, text or ""))
        for book, readable in by_language.values():
            codings = code_texts([text for _, text in readable], book)
            for (answer_id, _), coding in zip(readable, codings, strict=True):
                rows.extend(
                    {"answer_id": answer_id, "code": code, "source": CodeSource.AUTO, **fields}
                    for code, fields in auto_codes(coding)
                )
            coded += len(readable)
        session.execute(insert(AnswerCode), rows)
        if commit_pages:
            session.commit()
        last = page[-1][0]


def forget_auto_codes(session: Session, round_ids: Sequence[int]) -> None:
    """Drop the coder's rows on unreviewed answers of these rounds (`digest --recode`, after the
    codebook changed), so the catch-up pass codes them again with the codebook now."""
    reviewed = exists().where(AnswerReview.answer_id == AnswerCode.answer_id)
    answers = (
        select(Answer.id)
        .join(Invitation, Invitation.id == Answer.invitation_id)
        .where(Invitation.round_id.in_(list(round_ids)))
    )
    session.execute(
        delete(AnswerCode).where(
            AnswerCode.source == CodeSource.AUTO, AnswerCode.answer_id.in_(answers), ~reviewed
        )
    )


def counts_for_answer(
    machine: Sequence[CodeSource] = (CodeSource.OPTION, CodeSource.AUTO),
) -> ColumnElement[bool]:
    """Whether an answer_codes row counts: one of the `machine` sources on an answer no human
    reviewed, or HUMAN on one they did.

    Written as IN / NOT IN the reviewed answers (answer_reviews.answer_id is a primary key,
    never NULL, so NOT IN means what NOT EXISTS does): PostgreSQL then hashes the reviews once
    and probes that per code row, where a correlated EXISTS either side of an OR ran a subplan
    for every one of a hundred thousand rows; SQLite looks each up by primary key either way."""
    reviewed = select(AnswerReview.answer_id)
    return or_(
        and_(AnswerCode.source.in_(list(machine)), AnswerCode.answer_id.not_in(reviewed)),
        and_(AnswerCode.source == CodeSource.HUMAN, AnswerCode.answer_id.in_(reviewed)),
    )


def effective_codes(round_ids: Sequence[int]) -> Any:
    """A subquery (answer_id, invitation_id, code) of the codes that count, per the rules above."""
    return (
        select(AnswerCode.answer_id, Answer.invitation_id, AnswerCode.code)
        .join(Answer, Answer.id == AnswerCode.answer_id)
        .join(Invitation, Invitation.id == Answer.invitation_id)
        .where(
            Invitation.round_id.in_(round_ids),
            AnswerCode.code.not_in(MARKERS),
            counts_for_answer(),
        )
        .subquery("effective")
    )


def awaiting_coding(session: Session, round_ids: Sequence[int]) -> int:
    """Free-text answers of these rounds that wait for a coordinator to code them: written in
    a language the codebook has no cues for (UNCODED), and not yet reviewed."""
    return int(
        session.scalar(
            select(func.count(func.distinct(AnswerCode.answer_id)))
            .join(Answer, Answer.id == AnswerCode.answer_id)
            .join(Invitation, Invitation.id == Answer.invitation_id)
            .where(
                Invitation.round_id.in_(list(round_ids)),
                AnswerCode.source == CodeSource.AUTO,
                AnswerCode.code == UNCODED,
                ~exists().where(AnswerReview.answer_id == Answer.id),
            )
        )
        or 0
    )
