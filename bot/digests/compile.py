"""Compiles a Digest (plain data) for a round, or for a period across rounds, from the rounds'
published figures (bot.digests.published) through disclosure control (bot.digests.disclosure).

Compiling only reads. Callers first run `prepare`, in their own transaction: it codes free
texts stored without codes (imported answers, or after `digest --recode`) and publishes any
closed round not yet published.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.coding.codebook import Codebook, load_codebook
from bot.coding.stored import code_uncoded_answers
from bot.digests.actions import list_actions
from bot.digests.digest import Digest, Quote, Scope
from bot.digests.disclosure import RoundRelease, release_round
from bot.digests.figures import RoundFigures
from bot.digests.periods import release_period
from bot.digests.published import publish, released_figures, unpublished
from bot.digests.quotes import pick_quotes
from bot.kernel.config import Settings
from storage.models import Consultation, Organisation, Round


def prepare(
    session: Session, scope: Scope, codebook: Codebook, *, commit_pages: bool = False
) -> int:
    """Publish the scope's closed rounds (and its comparison rounds) not yet published, first
    coding their free texts stored without codes; returns texts coded. A published round's
    figures never change, so it needs neither (see published.republish for a new codebook).
    `commit_pages`: commit the coding a page at a time (see code_uncoded_answers), for a
    process beside the bot; the publishing is left to the caller's commit."""
    ids = [*scope.round_ids, *scope.previous]
    waiting = unpublished(session, ids)
    coded = (
        code_uncoded_answers(session, waiting, codebook, commit_pages=commit_pages)
        if waiting
        else 0
    )
    session.flush()
    publish(session, waiting, codebook)
    return coded


def compile_digest(
    session: Session,
    settings: Settings,
    scope: Scope,
    *,
    now: datetime,
    organisation_id: int | None = None,
    audience: str = "coordinator",
    codebook: Codebook | None = None,
) -> Digest:
    """The digest of `scope` as of `now` (the Clock's). `audience` "lead" hides other
    organisations' names; with `organisation_id` the digest adds that organisation's own
    detail. Reads only: run `prepare` first."""
    k = settings.privacy.k
    codebook = codebook or load_codebook(settings.paths.codebook)
    figures = released_figures(session, [*scope.round_ids, *scope.previous])
    names = {i: n for i, n in session.execute(select(Organisation.id, Organisation.name))}

    reader: dict[str, Any] = {
        "audience": audience,
        "organisation_names": names,
        "own_organisation": organisation_id,
    }

    def release(
        ids: tuple[int, ...],
        previous: RoundRelease | None = None,
        previous_label: str | None = None,
    ) -> RoundRelease:
        if not scope.period:  # one round, compared with the previous round as released
            return release_round(
                figures[ids[0]],
                k,
                codebook,
                **reader,
                previous=previous,
                previous_label=previous_label,
            )
        rounds = [release_round(figures[i], k, codebook, **reader) for i in ids]
        return release_period(
            rounds, k, codebook, **reader, previous=previous, previous_label=previous_label
        )

    previous = release(scope.previous) if scope.previous else None
    released = release(scope.round_ids, previous, scope.previous_label)
    return Digest(
        title=f"{settings.partnership.name}: what we heard",
        partnership=settings.partnership.name,
        scope=scope.label,
        round_ids=list(scope.round_ids),
        period_start=scope.start,
        period_end=scope.end,
        generated_at=now,
        k=k,
        audience=audience,
        participation=released.participation,
        questions=released.questions,
        barriers=released.barriers,
        quotes=_quotes(released.figures, released),
        actions=list_actions(session, list(scope.round_ids), codebook=codebook, today=now.date()),
        organisation=released.organisation,
        notes=released.notes,
        releasable=released.releasable,
        left_out=[i for i in scope.round_ids if figures[i].responded < k] if scope.period else [],
        versions=_versions(session, scope.round_ids),
    )


def _versions(session: Session, round_ids: tuple[int, ...]) -> list[str]:
    """Questions are matched by name across versions of a form, so a period compares like
    with like; the reader is told which version each round asked."""
    return [
        f"round {round_id}: {slug}, version {version}"
        for round_id, slug, version in session.execute(
            select(Round.id, Consultation.slug, Consultation.version)
            .join(Consultation, Consultation.id == Round.consultation_id)
            .where(Round.id.in_(round_ids))
            .order_by(Round.id)
        )
    ]


def _quotes(figures: RoundFigures, released: RoundRelease) -> list[Quote]:
    rows = released.barriers.rows + released.barriers.successes
    by_code = {r.code: r for r in rows}
    return [
        Quote(c.code, by_code[c.code].label, by_code[c.code].family, c.text, c.language)
        for c in pick_quotes(figures.quotes, [r.code for r in rows])
    ]
