"""Compiles a Digest (plain data) for a round, or for a period across rounds, from the rounds'
published figures (bot.digests.published) through disclosure control (bot.digests.disclosure).

Compiling only reads. Callers first run `prepare`, in their own transaction: it codes free
texts stored without codes (imported answers, or after `digest --recode`) and publishes any
closed round not yet published.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.coding.codebook import Codebook
from bot.coding.codebook_file import load_codebook
from bot.coding.stored import code_uncoded_answers
from bot.digests.actions import list_actions
from bot.digests.digest import (
    Digest,
    InLanguages,
    QuestionSummary,
    Quote,
    Said,
    Scope,
    said,
)
from bot.digests.disclosure import RoundRelease, release_round
from bot.digests.figures import RoundFigures
from bot.digests.periods import release_period
from bot.digests.published import publish, released_figures, unpublished
from bot.digests.quotes import pick_quotes
from bot.digests.segments import segment_names
from bot.kernel.config import Settings
from bot.kernel.i18n import N_
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
    _in_languages(released.questions, _set_translations(session, scope.round_ids))
    return Digest(
        title=said(N_("{partnership}: what we heard"), partnership=settings.partnership.name),
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
        segment_names=segment_names(settings.paths.templates),
    )


Texts = Mapping[str, Mapping[str, str]]  # language -> text key -> text, as a set gives them


def _set_translations(session: Session, round_ids: tuple[int, ...]) -> dict[str, Texts]:
    """Each consultation set's translations (bot.consultations.sets), by slug, as its newest
    version in these rounds gives them."""
    found: dict[str, Texts] = {}
    for slug, spec in session.execute(
        select(Consultation.slug, Consultation.spec)
        .join(Round, Round.consultation_id == Consultation.id)
        .where(Round.id.in_(round_ids))
        .order_by(Consultation.version)
    ):
        found[slug] = (spec or {}).get("translations") or {}
    return found


def _in_languages(questions: list[QuestionSummary], sets: Mapping[str, Texts]) -> None:
    """Questions, options and scale labels with their sets' translations, so each reader
    reads them in theirs; options are counted by id, whatever language answered them."""

    def words(text: Any, key: str, translations: Texts) -> Any:
        found = {lang: texts[key] for lang, texts in translations.items() if texts.get(key)}
        return InLanguages.of(str(text), found) if found and isinstance(text, str) else text

    for q in questions:
        translations = sets.get(q.slug)
        if not translations:
            continue
        q.text = words(q.text, f"{q.key}.text", translations)
        for choice in [*q.choices, *([q.merged] if q.merged else [])]:
            choice.label = words(choice.label, f"{q.key}.o.{choice.key}", translations)
        if q.scale is not None:
            q.scale.min_label = words(q.scale.min_label, f"{q.key}.min_label", translations)
            q.scale.max_label = words(q.scale.max_label, f"{q.key}.max_label", translations)


def _versions(session: Session, round_ids: tuple[int, ...]) -> list[Said]:
    """Questions are matched by name across versions of a form, so a period compares like
    with like; the reader is told which version each round asked."""
    return [
        said(
            N_("round {round}: {slug}, version {version}"),
            round=round_id,
            slug=slug,
            version=version,
        )
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
