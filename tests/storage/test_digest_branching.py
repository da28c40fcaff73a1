"""Digests of a consultation that branches: each question's base is the people it was asked
("12 of the 20 asked"), someone never asked is never a "no", and a base that would show a
group the digest does not show is held back with the question (k = 3 here)."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from bot.coding.stored import codebook_for
from bot.consultations.catalogue import import_consultation
from bot.consultations.sets import load_consultation
from bot.digests.compile import compile_digest, prepare
from bot.digests.digest import Digest, QuestionSummary
from bot.digests.render import render_telegram
from bot.digests.scopes import quarter_scope, round_scope
from bot.kernel.config import Settings, load_settings
from bot.kernel.context import AppContext
from storage.db import session_scope
from storage.models import Consultation
from tests.conftest import Database
from tests.support.digest_fixtures import closed_round, respondent

BRANCHING = textwrap.dedent(
    """\
    id = "services-check"
    version = 2
    title = "Services check"
    intro = "A few questions."
    estimated_minutes = 2
    audience_hint = "everyone"

    [[questions]]
    id = "used"
    type = "yesno"
    text = "Did you use the service this month?"

    [[questions]]
    id = "rating"
    type = "scale"
    text = "How good was it?"
    scale = { min = 1, max = 5, min_label = "Poor", max_label = "Great" }
    relevant = "${used} = 'yes'"

    [[questions]]
    id = "why_low"
    type = "text"
    text = "What went wrong?"
    required = false
    relevant = "${rating} <= 2"

    [[questions]]
    id = "why_not"
    type = "single"
    text = "Why not?"
    options = [
      { id = "far", label = "Too far" },
      { id = "times", label = "Bad times" },
      { id = "other", label = "Something else" },
    ]
    relevant = "${used} = 'no'"

    [[questions]]
    id = "both"
    type = "text"
    text = "Anything else?"
    required = false
    relevant = "${used} = 'yes' and ${rating} >= 4"
    """
)

# used, rating, why_low, why_not, both
PEOPLE: list[dict[str, Any]] = [
    {"used": "yes", "rating": 1, "why_low": "Nobody called back"},
    {"used": "yes", "rating": 2, "why_low": "Long wait"},
    {"used": "yes", "rating": 2, "why_low": None},
    {"used": "yes", "rating": 5, "both": "Lovely staff"},
    {"used": "yes", "rating": 4, "both": None},
    {"used": "yes", "rating": 4, "both": "Fine"},
    {"used": "no", "why_not": "far"},
    {"used": "no", "why_not": "far"},
    {"used": "no", "why_not": "far"},
    {"used": "no", "why_not": "times"},
    {"used": "no", "why_not": "times"},
    {"used": "no", "why_not": "times"},
    {"used": "no"},  # stopped before "Why not?": asked it, never answered
]


@pytest.fixture
def k3(db: Database) -> Settings:
    return load_settings(
        None, database={"url": db.url}, partnership={"name": "Riverside"}, privacy={"k": 3}
    )


def _round(session: Session, tmp_path: Path, people: list[dict[str, Any]]) -> int:
    path = tmp_path / "services-check.toml"
    path.write_text(BRANCHING, encoding="utf-8")
    consultation, _ = import_consultation(session, load_consultation(path))
    round_ = closed_round(session, consultation)
    for i, given in enumerate(people):
        respondent(session, round_, 7000 + i, given, complete="why_not" in given or "both" in given)
    return round_.id


def _digest(session: Session, settings: Settings, round_id: int) -> Digest:
    scope = round_scope(session, round_id)
    prepare(session, scope, codebook_for(settings))
    return compile_digest(session, settings, scope, now=datetime.now(UTC))


def _by_key(digest: Digest) -> dict[str, QuestionSummary]:
    return {q.key: q for q in digest.questions}


def test_each_question_is_out_of_those_it_was_asked(
    db: Database, k3: Settings, tmp_path: Path
) -> None:
    with session_scope(db.sessions) as session:
        round_id = _round(session, tmp_path, PEOPLE)
        questions = _by_key(_digest(session, k3, round_id))
    assert (questions["used"].answered, questions["used"].asked) == (13, 13)
    # Asked of the six who used it: the six "no" are not counted as anything.
    assert (questions["rating"].answered, questions["rating"].asked) == (6, 6)
    assert questions["rating"].scale is not None and questions["rating"].scale.n == 6
    # Asked of the three who rated 1 or 2 (three on each side of the split may be shown at
    # k = 3), but only two answered: fewer than k, so held back for that reason alone.
    why_low = questions["why_low"]
    assert why_low.suppressed and not why_low.branch_withheld
    # Asked of the seven who said no, one of whom stopped before answering it.
    why_not = questions["why_not"]
    assert (why_not.answered, why_not.asked) == (6, 7)
    assert {c.key: c.count for c in why_not.choices} == {"far": 3, "times": 3, "other": 0}
    assert pytest.approx(why_not.choices[0].share) == 3 / 6


def test_a_condition_over_two_questions_is_not_shown(
    db: Database, k3: Settings, tmp_path: Path
) -> None:
    with session_scope(db.sessions) as session:
        round_id = _round(session, tmp_path, PEOPLE)
        digest = _digest(session, k3, round_id)
    both = _by_key(digest)["both"]
    # Three were asked (rated 4 or 5): showing it would cut "used it" by rating, which the
    # digest does not show, so the question is held back with a note saying why.
    assert both.suppressed and both.branch_withheld
    assert both.asked is None and both.answered is None
    assert any("asked only after certain earlier answers" in str(n) for n in digest.notes)


def test_a_base_made_of_held_back_options_is_not_shown(
    db: Database, k3: Settings, tmp_path: Path
) -> None:
    # Two said "no": that cell is held back, so "Why not?" (asked of exactly them) is too.
    people = [p for p in PEOPLE if p["used"] == "yes"] + PEOPLE[6:8]
    assert all(p["used"] == "no" for p in PEOPLE[6:8])
    with session_scope(db.sessions) as session:
        round_id = _round(session, tmp_path, people)
        questions = _by_key(_digest(session, k3, round_id))
    assert questions["why_not"].suppressed and questions["why_not"].branch_withheld


def test_the_digest_says_the_base_and_the_form_version(
    db: Database, k3: Settings, ctx: AppContext, tmp_path: Path
) -> None:
    with session_scope(db.sessions) as session:
        round_id = _round(session, tmp_path, PEOPLE)
        digest = _digest(session, k3, round_id)
        version = session.query(Consultation.version).scalar()
    text = "\n".join(render_telegram(digest, ctx.renderer))
    assert "6 of the 7 asked" in text
    assert f"Form: round {round_id}: services-check, version {version}" in text
    assert "asked only after certain earlier answers" in text


def test_a_quarter_compares_questions_by_name_across_versions(
    db: Database, k3: Settings, tmp_path: Path
) -> None:
    # Version 3 rewords "Why not?" and adds an option; its answers pool with version 2's by
    # the question's and options' names, and the digest says which version each round asked.
    v3 = (
        BRANCHING.replace("version = 2", "version = 3")
        .replace('text = "Why not?"', 'text = "What stopped you using it?"')
        .replace(
            '{ id = "other", label = "Something else" },',
            '{ id = "other", label = "Something else" },\n  { id = "cost", label = "Cost" },',
        )
    )
    with session_scope(db.sessions) as session:
        round_ids = []
        for version, text in ((2, BRANCHING), (3, v3)):
            path = tmp_path / f"v{version}.toml"
            path.write_text(text, encoding="utf-8")
            consultation, created = import_consultation(session, load_consultation(path))
            assert created and consultation.version == version
            round_ = closed_round(session, consultation, days_ago=0)
            for i, given in enumerate(PEOPLE):
                respondent(session, round_, 9000 + version * 100 + i, given)
            round_ids.append(round_.id)
        moment = datetime.now(UTC) + timedelta(seconds=1)
        scope = quarter_scope(session, k3, moment)
        prepare(session, scope, codebook_for(k3))
        digest = compile_digest(session, k3, scope, now=moment)
    assert set(digest.round_ids) == set(round_ids)
    why_not = _by_key(digest)["why_not"]
    assert why_not.text == "What stopped you using it?"  # the latest wording
    assert (why_not.answered, why_not.asked) == (12, 14)
    assert {c.key: c.count for c in why_not.choices} == {
        "far": 6,
        "times": 6,
        "other": 0,
        "cost": 0,
    }
    assert [str(v) for v in digest.versions] == [
        f"round {round_ids[0]}: services-check, version 2",
        f"round {round_ids[1]}: services-check, version 3",
    ]
