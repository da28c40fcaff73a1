"""The anonymised CSV honours k: no segment value and no free text drawn from fewer than k
people survives, counted by hand below (k = 5)."""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from typing import Any

import pytest
from sqlalchemy import select

from bot.coding.stored import codebook_for
from bot.digests.answers_csv import write_csv
from bot.digests.compile import prepare
from bot.digests.digest import Scope
from bot.digests.disclosure import MERGED_LABEL
from bot.digests.scopes import round_scope
from bot.kernel.config import Settings
from bot.kernel.context import AppContext
from bot.participation.mydata import forget
from storage.db import session_scope
from storage.models import InvitationStatus, Participant
from tests.support import factories
from tests.support.digest_fixtures import answer, closed_round, question, respondent

FORMULA = "=SUM(A1:A9) is what we are owed"

# Who answered round 1 (hand count, k = 5):
#   group  people  answering as   area       text
#   A      6       organisation   North      "Alpha"   (one of them a formula)
#   B      2       organisation   East       "Bravo"
#   C      5       service_user   @North     "Cedar"   (a value a spreadsheet would run)
#   D      3       service_user   South      "Delta"
#   E      1       organisation   (none)     "Echo"
# Areas: North 6, @North 5 are kept; none 1 + East 2 + South 3 = 6 merge into one cell of 6.
# Answering as: organisation 9, service_user 8, both kept.
# Rows then read (organisation, North) 6, (service_user, @North) 5: texts shown;
# (organisation, merged) B + E = 3 and (service_user, merged) D = 3: texts held back.
GROUPS: list[tuple[str, int, str, str | None]] = [
    ("Alpha", 6, "organisation", "North"),
    ("Bravo", 2, "organisation", "East"),
    ("Cedar", 5, "service_user", "@North"),  # not "Charlie": a name, and so scrubbed
    ("Delta", 3, "service_user", "South"),
    ("Echo", 1, "organisation", None),
]


@pytest.fixture
def rounds(ctx: AppContext) -> tuple[int, int]:
    """Round 1 as above; round 2: two of group A answer again (a quarter holds both)."""
    with session_scope(ctx.sessions) as session:
        consultation = factories.consultation(session)
        first = closed_round(session, consultation, days_ago=20)
        second = closed_round(session, consultation, days_ago=2)
        user = 7000
        for word, count, answers_as, area in GROUPS:
            for i in range(count):
                text = FORMULA if (word, i) == ("Alpha", 0) else f"{word} says item {i}"
                profile: dict[str, Any] = {"area": area} if area else {}
                respondent(
                    session,
                    first,
                    user,
                    {"biggest_obstacle": text, "asked_when": "late"},
                    profile=profile,
                    answers_as=answers_as,
                )
                user += 1
        for person in session.scalars(select(Participant).order_by(Participant.id).limit(2)):
            invitation = factories.invitation(
                session, second, person, status=InvitationStatus.COMPLETED
            )
            answer(session, invitation, question(consultation, "biggest_obstacle"), "Again said")
        return first.id, second.id


def _csv(ctx: AppContext, settings: Settings, scope: Scope | int) -> list[dict[str, str]]:
    buffer = io.StringIO()
    with session_scope(ctx.sessions) as session:
        if isinstance(scope, int):
            scope = round_scope(session, scope)
        prepare(session, scope, codebook_for(settings))  # publishes, as every caller does
        write_csv(session, settings.privacy.k, scope, codebook_for(settings), buffer)
    return list(csv.DictReader(io.StringIO(buffer.getvalue())))


def test_segments_are_generalised_until_every_combination_holds_k(
    ctx: AppContext, settings: Settings, rounds: tuple[int, int]
) -> None:
    # The digest shows North 6, @North 5 and "Other (merged)" 6 (East, South, none). Set against
    # answering as, (organisation, Other) holds B + E = 3 and (service user, Other) D = 3: under
    # k, so the least held values are merged further (North, then @North): every cell of the
    # area column ends "Other (merged)", and answering as keeps both values (9 and 8).
    rows = _csv(ctx, settings, rounds[0])
    assert {r["area"] for r in rows} == {MERGED_LABEL}
    people: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        people[r["answering_as"]].add(r["respondent"])
    assert {key: len(v) for key, v in people.items()} == {
        "An organisation": 9,
        "A service user": 8,
    }
    combos = Counter(
        (r["round"], r["answering_as"], r["area"], r["organisation_type"], r["organisation_size"])
        for r in {r["respondent"]: r for r in rows}.values()
    )
    assert min(combos.values()) >= 5
    assert "East" not in str(rows) and "South" not in str(rows)


def test_texts_are_scrubbed_and_shown_in_groups_of_k(
    ctx: AppContext, settings: Settings, rounds: tuple[int, int]
) -> None:
    rows = [r for r in _csv(ctx, settings, rounds[0]) if r["question"] == "biggest_obstacle"]
    assert len(rows) == 17
    shown = {r["text"].split(" ")[0] for r in rows if r["text"]}
    assert shown == {"Alpha", "Bravo", "Cedar", "Delta", "Echo", "'=SUM(A1:A9)"}


def test_rounds_under_k_are_left_out_of_a_longer_scope(
    ctx: AppContext, settings: Settings, rounds: tuple[int, int]
) -> None:
    # Round 2 had two respondents: its own digest shows only who took part, so the file
    # leaves it out entirely.
    _csv(ctx, settings, rounds[0])
    buffer = io.StringIO()
    with session_scope(ctx.sessions) as session:
        prepare(session, Scope(rounds, "both"), codebook_for(settings))
        result = write_csv(
            session, settings.privacy.k, Scope(rounds, "both"), codebook_for(settings), buffer
        )
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    assert {r["round"] for r in rows} == {str(rounds[0])}
    assert result.left_out == {rounds[1]: "fewer than 5 people answered"}
    assert "Again said" not in buffer.getvalue()


def test_a_round_someone_left_is_no_longer_exported(
    ctx: AppContext, settings: Settings, rounds: tuple[int, int]
) -> None:
    before = _csv(ctx, settings, rounds[0])
    with session_scope(ctx.sessions) as session:
        person = session.scalars(select(Participant).order_by(Participant.id)).first()
        assert person is not None
        forget(session, ctx, person.telegram_user_id)
    after = _csv(ctx, settings, rounds[0])
    assert before and after == []  # a new file set against the old one would show their rows


def test_formulas_stay_neutralised(
    ctx: AppContext, settings: Settings, rounds: tuple[int, int]
) -> None:
    _csv(ctx, settings, rounds[0])
    buffer = io.StringIO()
    with session_scope(ctx.sessions) as session:
        write_csv(
            session,
            settings.privacy.k,
            round_scope(session, rounds[0]),
            codebook_for(settings),
            buffer,
        )
    for row in csv.reader(io.StringIO(buffer.getvalue())):
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert "'=SUM(A1:A9)" in buffer.getvalue()


def test_options_and_numbers_show_only_what_the_digest_shows(
    ctx: AppContext, settings: Settings
) -> None:
    # 12 people: asked_when late 7, early 3, not_sure 2 (early and not_sure merge: "other");
    # equal_partner 3 for eleven people and 1 for one: a value under k, so no number at all.
    with session_scope(ctx.sessions) as session:
        round_ = closed_round(session, factories.consultation(session))
        for i in range(12):
            asked = "late" if i < 7 else ("early" if i < 10 else "not_sure")
            respondent(
                session,
                round_,
                7200 + i,
                {"asked_when": asked, "equal_partner": 1 if i == 0 else 3},
            )
        round_id = round_.id
    rows = _csv(ctx, settings, round_id)
    asked = Counter(r["choices"] for r in rows if r["question"] == "asked_when")
    assert asked == {"late": 7, "other": 5}
    scale = [r for r in rows if r["question"] == "equal_partner"]
    assert len(scale) == 12 and all(r["number"] == "" and r["note"] for r in scale)


def test_fewer_than_k_respondents_gives_an_empty_file(ctx: AppContext, settings: Settings) -> None:
    with session_scope(ctx.sessions) as session:
        round_ = closed_round(session, factories.consultation(session))
        for i in range(4):
            respondent(
                session,
                round_,
                7100 + i,
                {"biggest_obstacle": f"Only four of us, item {i}"},
                profile={"area": "North"},
            )
        round_id = round_.id
    assert _csv(ctx, settings, round_id) == []
