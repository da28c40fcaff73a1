"""Participation by language (issue 15): each invitation copies the person's language, the
digest breaks participation down by it under the same disclosure rules as every other
breakdown, only when a round's invitations have more than one language, and releases
published before the language dimension read as "not given"."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from bot.coding.stored import codebook_for
from bot.digests.compile import compile_digest, prepare
from bot.digests.digest import NOT_GIVEN, Digest, Dimension, Scope
from bot.digests.disclosure import MERGED_LABEL
from bot.digests.scopes import round_scope
from bot.kernel.config import Settings, load_settings
from storage.db import session_scope
from storage.models import Release, Round, utcnow
from tests.conftest import Database
from tests.support import factories
from tests.support.digest_fixtures import closed_round, respondent

K = 5
ANSWER = {"asked_when": "early", "equal_partner": 4}


@pytest.fixture
def k5(db: Database) -> Settings:
    return load_settings(None, database={"url": db.url}, privacy={"k": K})


def digest(session: Session, settings: Settings, scope: Scope) -> Digest:
    codebook = codebook_for(settings)
    prepare(session, scope, codebook)
    return compile_digest(session, settings, scope, now=utcnow(), codebook=codebook)


def a_round(
    session: Session, languages: list[str | None], *, first_user: int, days_ago: int = 1
) -> Round:
    """A closed round with one answering person per language given (None: not given)."""
    round_ = closed_round(session, factories.consultation(session), days_ago=days_ago)
    for i, language in enumerate(languages):
        respondent(session, round_, first_user + i, ANSWER, language=language)
    return round_


def by_language(d: Digest) -> Dimension | None:
    return next((dim for dim in d.participation.dimensions if dim.key == "language"), None)


def rows(dimension: Dimension) -> set[tuple[str, int, int | None]]:
    return {(r.label, r.invited, r.responded) for r in dimension.rows}


def test_participation_by_language_with_small_segments_merged(db: Database, k5: Settings) -> None:
    with session_scope(db.sessions) as session:
        round_ = a_round(session, ["en"] * 6 + ["cy"] * 7 + [None] * 2, first_user=100)
        d = digest(session, k5, round_scope(session, round_.id))
    language = by_language(d)
    assert language is not None and str(language.label) == "Language"
    # "Not given" (2) is under k: merged with the smallest other so neither can be had back.
    assert rows(language) == {("Cymraeg", 7, 7), (MERGED_LABEL, 8, 8)}
    assert d.participation.responded == 15


def test_no_breakdown_when_everyone_has_one_language(db: Database, k5: Settings) -> None:
    with session_scope(db.sessions) as session:
        english = a_round(session, ["en"] * 6, first_user=100, days_ago=2)
        unknown = a_round(session, [None] * 6, first_user=200)
        assert by_language(digest(session, k5, round_scope(session, english.id))) is None
        assert by_language(digest(session, k5, round_scope(session, unknown.id))) is None


def test_a_release_published_before_languages_reads_as_not_given(
    db: Database, k5: Settings
) -> None:
    """A release stored before the language dimension has six labels per atom and no language
    segment: its digest is the same, and a period counts its people as "not given"."""
    with session_scope(db.sessions) as session:
        old = a_round(session, ["en"] * 6, first_user=100, days_ago=3)
        new = a_round(session, ["en"] * 6 + ["cy"] * 5, first_user=200)
        before = digest(session, k5, round_scope(session, old.id))
        release = session.get(Release, old.id)
        assert release is not None
        figures = dict(release.figures)
        assert figures["segments"]["language"] == {"English": [6, 6, 6]}
        figures["segments"] = {k: v for k, v in figures["segments"].items() if k != "language"}
        figures["atoms"] = [[org, labels[:6], *cells] for org, labels, *cells in figures["atoms"]]
        release.figures = figures
    with session_scope(db.sessions) as session:
        again = digest(session, k5, round_scope(session, old.id))
        assert again.participation == before.participation
        quarter = digest(session, k5, Scope((old.id, new.id), "the quarter", period=True))
    language = by_language(quarter)
    assert language is not None
    assert rows(language) == {("English", 6, 6), ("Cymraeg", 5, 5), (NOT_GIVEN, 6, 6)}
    assert quarter.participation.responded == 17


def test_a_quarter_counts_a_round_of_one_language_under_it(db: Database, k5: Settings) -> None:
    """A round all in English shows no breakdown of its own, but keeps its language, so a
    quarter with a round in two languages counts its people as English, not "not given"."""
    with session_scope(db.sessions) as session:
        english = a_round(session, ["en"] * 6, first_user=100, days_ago=3)
        mixed = a_round(session, ["en"] * 5 + ["cy"] * 6, first_user=200)
        assert by_language(digest(session, k5, round_scope(session, english.id))) is None
        quarter = digest(session, k5, Scope((english.id, mixed.id), "the quarter", period=True))
        only_english = digest(
            session, k5, Scope((english.id,), "a quarter of one round", period=True)
        )
    language = by_language(quarter)
    assert language is not None
    assert rows(language) == {("English", 11, 11), ("Cymraeg", 6, 6)}
    assert by_language(only_english) is None
