"""The digest compiler against hand-counted rounds (k = 3 here, so the numbers stay small)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.coding.codebook_file import load_codebook
from bot.coding.stored import code_uncoded_answers, codebook_for, effective_codes
from bot.digests.compile import compile_digest, prepare
from bot.digests.digest import Digest, DigestError
from bot.digests.disclosure import MERGED_LABEL
from bot.digests.scopes import quarter_scope, round_scope
from bot.kernel.config import Settings, load_settings
from storage.db import session_scope
from storage.models import (
    AnswerCode,
    AnswerReview,
    CodeSource,
    Round,
)
from tests.conftest import Database
from tests.support import factories
from tests.support.digest_fixtures import answer, closed_round, question, respondent

CODEBOOK = load_codebook()

# (asked_when, equal_partner, partnership_barriers, own_barriers) per respondent; see the
# counts hand-worked in test_barriers_are_counted_per_respondent.
ANSWERS = [
    ("A", "late", 1, ["funding", "red_tape"], ["capacity"]),
    ("A", "late", 2, ["funding"], ["capacity", "finance"]),
    ("A", "late", 2, ["funding", "not_told"], ["capacity"]),
    ("A", "late", 3, ["none"], ["none"]),
    ("B", "early", 4, ["funding"], ["capacity"]),
    ("B", "early", 5, ["red_tape"], ["none"]),
    ("B", "early", 5, ["red_tape"], ["finance"]),
    ("C", "not_sure", 3, ["none"], ["none"]),
]


@pytest.fixture
def k3(db: Database) -> Settings:
    return load_settings(
        None,
        database={"url": db.url},
        partnership={"name": "Riverside Partnership"},
        privacy={"k": 3},
    )


@dataclass
class World:
    round_id: int
    orgs: dict[str, int]


def build(session: Session, *, with_text: bool = True) -> World:
    orgs = {
        "A": factories.organisation(
            session, "Alder Food Bank", area="North", size="small", kind="charity", sector="food"
        ),
        "B": factories.organisation(
            session,
            "Birchwood Youth",
            area="South",
            size="large",
            kind="community group",
            sector="youth",
        ),
        "C": factories.organisation(
            session,
            "Cedar Faith Circle",
            area="East",
            size="micro",
            kind="faith group",
            sector="faith",
        ),
        "D": factories.organisation(
            session, "Dogwood Carers", area="West", size="small", kind="charity", sector="care"
        ),
    }
    consultation = factories.consultation(session)
    round_ = closed_round(session, consultation)
    for i, (org, asked, scale, partnership, own) in enumerate(ANSWERS):
        o = orgs[org]
        respondent(
            session,
            round_,
            5000 + i,
            {
                "asked_when": asked,
                "equal_partner": scale,
                "partnership_barriers": partnership,
                "own_barriers": own,
            },
            organisation=o,
            profile={"area": o.area, "size": o.size},
        )
    for i in range(2):  # invited, never answered
        o = orgs["A"]
        respondent(
            session, round_, 6000 + i, {}, organisation=o, profile={"area": o.area, "size": o.size}
        )
    return World(round_.id, {key: o.id for key, o in orgs.items()})


def digest(session: Session, settings: Settings, round_id: int, **kw: object) -> Digest:
    """As the bot's callers do: catch up on answers stored without codes, then compile."""
    scope = round_scope(session, round_id)
    prepare(session, scope, codebook_for(settings))
    return compile_digest(session, settings, scope, now=datetime.now(UTC), **kw)  # type: ignore[arg-type]


def test_participation_counts_and_reach_gaps(db: Database, k3: Settings) -> None:
    with session_scope(db.sessions) as session:
        world = build(session)
        d = digest(session, k3, world.round_id)
    p = d.participation
    assert (p.invited, p.responded, p.completed) == (10, 8, 8)
    assert p.rate == pytest.approx(0.8)
    area = next(dim for dim in p.dimensions if dim.key == "area")
    by_label = {row.label: row for row in area.rows}
    assert by_label["North"].invited == 6 and by_label["North"].responded == 4
    # East (1 invited) is under k: merged with the next smallest (South, 3) so it cannot be
    # worked out by subtraction.
    assert "East" not in by_label and "South" not in by_label
    assert by_label[MERGED_LABEL].invited == 4 and by_label[MERGED_LABEL].responded == 4
    kind = {row.label: row for row in next(d for d in p.dimensions if d.key == "kind").rows}
    assert kind["charity"].invited == 6
    # Registered organisations with few or no responses are named for coordinators only.
    assert p.organisations_without == ["Cedar Faith Circle", "Dogwood Carers"]
    assert p.organisations_few == 2


def test_question_counts_shares_and_scale(db: Database, k3: Settings) -> None:
    with session_scope(db.sessions) as session:
        world = build(session)
        d = digest(session, k3, world.round_id)
    q = {s.key: s for s in d.questions}
    asked = q["asked_when"]
    assert asked.answered == 8
    assert [(c.key, c.count) for c in asked.choices if c.count] == [("late", 4)]
    # not_sure (1) is under k; early (3) joins it so "not_sure" cannot be derived.
    assert asked.merged is not None and asked.merged.count == 4
    assert asked.merged.share == pytest.approx(0.5)
    barriers = q["partnership_barriers"]
    counts = {c.key: c.count for c in barriers.choices}
    assert counts["funding"] == 4 and counts["red_tape"] == 3 and counts["contracts"] == 0
    assert "not_told" not in counts and "none" not in counts
    # A multi-choice option is a yes/no property of each person: not_told (1) and none (2)
    # are held back, and no "merged" count is given (people may be in both).
    assert barriers.merged is None and barriers.merged_hidden
    scale = q["equal_partner"].scale
    values = [a[2] for a in ANSWERS]
    assert scale is not None and scale.n == 8
    assert scale.mean == pytest.approx(statistics.mean(values))
    assert scale.sd == pytest.approx(statistics.stdev(values))
    # The lowest (1, given by one person) and highest (5, by two) are each under k: not shown.
    assert (scale.min, scale.max) == (None, None)


def test_barriers_are_counted_per_respondent(db: Database, k3: Settings) -> None:
    with session_scope(db.sessions) as session:
        world = build(session)
        d = digest(session, k3, world.round_id)
    b = d.barriers
    assert b.base == 8
    rows = {r.code: r.respondents for r in b.rows}
    # engagement: late (1-4) and scale <= 2 (1-3) -> 4 people; funding: 1,2,3,5; red tape:
    # 1,6,7; capacity: 1,2,3,5. information (3) and finance (2,7) are under k: merged.
    assert rows == {"ext.engagement": 4, "ext.funding": 4, "ext.red_tape": 3, "int.capacity": 4}
    assert b.hidden_codes == 2  # information and finance, with no count of any kind
    assert str(b.rows[0].label) == "How the partnership engages the sector"
    assert b.rows[0].share == pytest.approx(0.5)


def test_human_codes_count_and_published_figures_never_change(db: Database, k3: Settings) -> None:
    with session_scope(db.sessions) as session:
        world = build(session)
        round_ = session.get(Round, world.round_id)
        assert round_ is not None
        q = question(round_.consultation, "biggest_obstacle")
        texts = [
            "We never hear back about what happened to our views",
            "Funding is always short term and confirmed late",
            "Our volunteers have no time for meetings in the day",
        ]
        invitations = sorted(round_.invitations, key=lambda i: i.id)[:3]
        rows = [answer(session, inv, q, text) for inv, text in zip(invitations, texts, strict=True)]
        scope = round_scope(session, world.round_id)
        with pytest.raises(DigestError):
            compile_digest(session, k3, scope, now=datetime.now(UTC))  # reads: nothing published
        auto_query = select(AnswerCode.code).where(
            AnswerCode.answer_id.in_([r.id for r in rows]), AnswerCode.source == CodeSource.AUTO
        )
        assert not session.scalars(auto_query).all(), "compiling a digest only reads"
        # The coder's catch-up pass, then a coordinator settles the second answer as
        # leadership only and the third as no code at all, before the round is published.
        code_uncoded_answers(session, [world.round_id], codebook_for(k3))
        assert session.scalars(auto_query).all()
        session.add(
            AnswerCode(answer_id=rows[1].id, code="int.leadership", source=CodeSource.HUMAN)
        )
        session.add_all([AnswerReview(answer_id=rows[1].id), AnswerReview(answer_id=rows[2].id)])
        session.flush()
        eff = effective_codes([world.round_id])
        counted = session.execute(
            select(eff.c.answer_id, eff.c.code).where(eff.c.answer_id.in_([rows[1].id, rows[2].id]))
        ).all()
        assert counted == [(rows[1].id, "int.leadership")]
        before = digest(session, k3, world.round_id)
        # Published: a later review changes no figure of the round (nothing to compare).
        session.add(AnswerCode(answer_id=rows[0].id, code="int.capacity", source=CodeSource.HUMAN))
        session.add(AnswerReview(answer_id=rows[0].id))
        session.flush()
        after = digest(session, k3, world.round_id)
    assert before.barriers == after.barriers and before.questions == after.questions


def test_change_against_previous_round(db: Database, k3: Settings) -> None:
    with session_scope(db.sessions) as session:
        consultation = factories.consultation(session)
        old = closed_round(session, consultation, days_ago=40)
        for i in range(4):
            respondent(session, old, 7000 + i, {"partnership_barriers": ["funding"]})
        for i in range(3):
            respondent(session, old, 7100 + i, {"partnership_barriers": ["none"]})
        new = closed_round(session, consultation, days_ago=1)
        for i in range(3):
            respondent(session, new, 7200 + i, {"partnership_barriers": ["funding"]})
        for i in range(3):
            respondent(session, new, 7300 + i, {"partnership_barriers": ["red_tape"]})
        d = digest(session, k3, new.id)
    assert str(d.barriers.compared_with) == f"round {old.id}"
    rows = {r.code: r for r in d.barriers.rows}
    assert rows["ext.funding"].change == pytest.approx(0.5 - 4 / 7)
    assert rows["ext.red_tape"].change == pytest.approx(0.5)  # named by nobody before


def test_quarter_digest_spans_rounds(db: Database, k3: Settings) -> None:
    with session_scope(db.sessions) as session:
        consultation = factories.consultation(session)
        rounds = [closed_round(session, consultation, days_ago=d) for d in (0, 0)]
        for n, r in enumerate(rounds):
            for i in range(3):
                respondent(session, r, 8000 + n * 10 + i, {"partnership_barriers": ["funding"]})
        latest = max(r.closed_at for r in rounds if r.closed_at) + timedelta(seconds=1)
        scope = quarter_scope(session, k3, latest)
        prepare(session, scope, codebook_for(k3))
        d = compile_digest(session, k3, scope, now=latest)
    assert set(d.round_ids) == {r.id for r in rounds}
    assert d.participation.responded == 6
    assert {r.code: r.respondents for r in d.barriers.rows} == {"ext.funding": 6}


def test_lead_sees_own_organisation_not_other_names(db: Database, k3: Settings) -> None:
    with session_scope(db.sessions) as session:
        world = build(session)
        d = digest(session, k3, world.round_id, organisation_id=world.orgs["A"], audience="lead")
    assert d.participation.organisations_without == []
    assert d.organisation is not None and d.organisation.name == "Alder Food Bank"
    assert d.organisation.invited == 6 and d.organisation.responded == 4
    own = {r.code: r.respondents for r in d.organisation.barriers}
    # Funding and capacity were named by 3 of their 4: the one who did not would be given
    # away, so only engagement (all 4) is shown.
    assert own == {"ext.engagement": 4}
