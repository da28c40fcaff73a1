"""Participation by language (issue 15): each invitation copies the person's language, the
digest breaks participation down by it under the same disclosure rules as every other
breakdown, only when a round's invitations have more than one language, and releases
published before the language dimension read as "not given"; and one compiled digest reads in
each reader's language."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.coding.stored import codebook_for
from bot.digests.compile import compile_digest, prepare
from bot.digests.digest import NOT_GIVEN, Digest, Dimension, Scope
from bot.digests.disclosure import MERGED_LABEL
from bot.digests.render import chart_pngs, render_html, render_markdown, render_telegram
from bot.digests.scopes import round_scope
from bot.feedback.actions import publish_feedback
from bot.kernel import i18n
from bot.kernel.config import Settings, load_settings
from bot.kernel.render import Renderer
from storage.db import session_scope
from storage.models import (
    Action,
    ActionStatus,
    AnswerCode,
    AnswerReview,
    CodeSource,
    Delivery,
    Participant,
    Release,
    Round,
    utcnow,
)
from tests.conftest import Database
from tests.support import factories
from tests.support.digest_fixtures import closed_round, question, respondent

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


ENGLISH_QUOTE = (
    "Funding is always short term and confirmed late, so we cannot plan (ring 07700 900123)"
)
WELSH_QUOTE = "Mae'r cyllid bob amser yn fyr dymor ac yn cyrraedd yn rhy hwyr i gynllunio"


def test_one_compiled_digest_reads_in_each_language(db: Database, k5: Settings) -> None:
    """Compiled once, in no language: rendered for a Welsh reader its headings, segment labels,
    notes and charts are Welsh, for an English reader English, with the same figures. Quotes
    keep their words, marked with their language where it is not the reader's."""
    with session_scope(db.sessions) as session:
        round_ = closed_round(session, factories.consultation(session))
        obstacle = question(round_.consultation, "biggest_obstacle")
        for i, language in enumerate(["en"] * 6 + ["cy"] * 6):
            text = ENGLISH_QUOTE if language == "en" else WELSH_QUOTE
            given = {"partnership_barriers": ["funding", "red_tape"] if i else ["funding"]}
            invitation = respondent(
                session, round_, 100 + i, {**given, "biggest_obstacle": text}, language=language
            )
            if i == 6:  # a coordinator coded one Welsh text by hand (/review): funding
                answer = next(a for a in invitation.answers if a.question_id == obstacle.id)
                session.add(
                    AnswerCode(answer_id=answer.id, code="ext.funding", source=CodeSource.HUMAN)
                )
                session.add(AnswerReview(answer_id=answer.id))
        session.flush()
        d = digest(session, k5, round_scope(session, round_.id))
    renderer = Renderer(k5.paths.templates, zone=k5.zone, languages=("en", "cy"))
    said: dict[str, str] = {}
    charts: dict[str, dict[str, bytes]] = {}
    cache: dict[str, bytes | None] = {}
    for language in ("cy", "en"):
        with i18n.speaking(language):
            said[language] = "\n".join(render_telegram(d, renderer))
            said[language + ".md"] = render_markdown(d, renderer)
            said[language + ".html"] = render_html(d, renderer, charts=False)
            charts[language] = chart_pngs(d, cache)
    welsh, english = said["cy"], said["en"]

    assert "<b>Ffigurau allweddol</b>" in welsh and "<b>Key figures</b>" in english
    assert "Atebodd <b>12</b> o'r 12 o bobl a wahoddwyd (100%)" in welsh
    assert "<b>12</b> of 12 people invited answered (100%)" in english
    assert "<i>Iaith</i>: Cymraeg 6 o 6 (100%); English 6 o 6 (100%)" in welsh
    assert "<i>Language</i>: Cymraeg 6 of 6 (100%); English 6 of 6 (100%)" in english
    assert "<i>Yn ateb fel</i>: Sefydliad 12 o 12 (100%)" in welsh
    # The privacy note of a barrier held back (red tape: named by all but one), said in each.
    assert (
        "Dydy rhwystrau a ffactorau llwyddiant a enwyd gan lai na 5 o bobl (neu gan bawb ond "
        "ychydig) ddim yn cael eu dangos." in welsh
    )
    assert "Barriers and success factors named by fewer than 5 people" in english
    # The five Welsh texts nobody has coded yet, in each reader's words.
    assert "5 o atebion ysgrifenedig mewn iaith heb gliwiau yn aros i gael eu codio" in welsh
    assert "5 written answers in a language without cues await coding" in english
    # A quote in the reader's language is not marked; one in another is, with its name.
    assert "“Mae&#39;r cyllid bob amser yn fyr dymor" in welsh
    assert "[Cymraeg]" not in welsh and "[English]" in welsh
    assert "[Cymraeg]" in english and "[English]" not in english
    # What the scrubber took out is said in the reader's language; the words around it are not.
    assert "so we cannot plan (ring [rhif ffôn wedi&#39;i dynnu])" in welsh
    assert "so we cannot plan (ring [phone removed])" in english
    assert "## Ffigurau allweddol" in said["cy.md"] and "## Key figures" in said["en.md"]
    assert '<html lang="cy">' in said["cy.html"] and '<html lang="en">' in said["en.html"]
    # A chart's words are in the reader's language too: drawn once per language.
    assert set(charts["cy"]) == set(charts["en"]) == {"barriers", "response"}
    assert charts["cy"]["barriers"] != charts["en"]["barriers"]
    # The compiled digest itself is in no language: it says itself in the one spoken.
    with i18n.speaking("cy"):
        assert str(d.title).endswith(": beth glywson ni")
    with i18n.speaking("en"):
        assert "what we heard" in str(d.title)


def test_you_said_we_did_goes_to_each_person_in_their_language(db: Database, k5: Settings) -> None:
    """The "You said, we did" message is rendered once per language of those who took part,
    with the set's own title in theirs."""
    renderer = Renderer(k5.paths.templates, zone=k5.zone, languages=("en", "cy"))
    with session_scope(db.sessions) as session:
        round_ = closed_round(session, factories.consultation(session))
        for i, language in enumerate(["cy", "en", None]):
            respondent(session, round_, 300 + i, ANSWER, language=language)
        session.add(
            Action(
                round_id=round_.id,
                finding="Partners ask too late",
                action="Ask before plans are set",
                owner="Council VCS team",
                status=ActionStatus.DONE,
            )
        )
        session.flush()
        publish_feedback(
            session, renderer, round_.id, partnership="Riverside Partnership", now=utcnow()
        )
        sent = {
            person.language: delivery.payload["text"]
            for delivery, person in session.execute(
                select(Delivery, Participant).join(
                    Participant, Participant.id == Delivery.participant_id
                )
            )
        }
    assert "<b>Dywedoch chi, fe wnaethon ni</b>" in sent["cy"]
    assert 'Diolch am ateb "Pa mor dda ydyn ni&#39;n gweithio gyda chi?"' in sent["cy"]
    assert "<b>Fe wnaethon ni:</b> Ask before plans are set" in sent["cy"]
    assert "<b>You said, we did</b>" in sent["en"] and "<b>We did:</b>" in sent["en"]
    assert sent[None] == sent["en"], "no language chosen: the deployment's"
