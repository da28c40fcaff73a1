"""The anonymised CSV honours k: no segment value and no free text drawn from fewer than k
people survives, counted by hand below (k = 5)."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from typing import Any

import pytest
from sqlalchemy import select

from bot.digests.digest import Scope
from bot.digests.privacy import MERGED_LABEL
from bot.digests.render import write_csv
from bot.digests.scopes import round_scope
from bot.kernel.config import Settings
from bot.kernel.context import AppContext
from storage.db import session_scope
from storage.models import InvitationStatus, Participant
from tests.support import factories
from tests.support.digest_fixtures import answer, closed_round, question, respondent

FORMULA = "=SUM(A1:A9) is what we are owed"

# Who answered round 1 (hand count, k = 5):
#   group  people  answering as   area       text
#   A      6       organisation   North      "Alpha"   (one of them a formula)
#   B      2       organisation   East       "Bravo"
#   C      5       service_user   @North     "Charlie" (a value a spreadsheet would run)
#   D      3       service_user   South      "Delta"
#   E      1       organisation   (none)     "Echo"
# Areas: North 6, @North 5 are kept; none 1 + East 2 + South 3 = 6 merge into one cell of 6.
# Answering as: organisation 9, service_user 8, both kept.
# Rows then read (organisation, North) 6, (service_user, @North) 5: texts shown;
# (organisation, merged) B + E = 3 and (service_user, merged) D = 3: texts held back.
GROUPS: list[tuple[str, int, str, str | None]] = [
    ("Alpha", 6, "organisation", "North"),
    ("Bravo", 2, "organisation", "East"),
    ("Charlie", 5, "service_user", "@North"),
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
        write_csv(session, settings, scope, buffer)
    return list(csv.DictReader(io.StringIO(buffer.getvalue())))


def test_segment_values_under_k_are_merged(
    ctx: AppContext, settings: Settings, rounds: tuple[int, int]
) -> None:
    rows = _csv(ctx, settings, rounds[0])
    assert {r["area"] for r in rows} == {"North", "'@North", MERGED_LABEL}
    assert {r["answering_as"] for r in rows} == {"organisation", "service_user"}
    people: dict[tuple[str, str], set[str]] = defaultdict(set)
    for r in rows:
        people[("area", r["area"])].add(r["respondent"])
        people[("as", r["answering_as"])].add(r["respondent"])
    assert {key: len(v) for key, v in people.items()} == {
        ("area", "North"): 6,
        ("area", "'@North"): 5,
        ("area", MERGED_LABEL): 6,
        ("as", "organisation"): 9,
        ("as", "service_user"): 8,
    }
    assert "East" not in str(rows) and "South" not in str(rows)


def test_free_text_is_held_back_in_groups_under_k(
    ctx: AppContext, settings: Settings, rounds: tuple[int, int]
) -> None:
    rows = [r for r in _csv(ctx, settings, rounds[0]) if r["question"] == "biggest_obstacle"]
    assert len(rows) == 17
    shown = {r["text"].split(" ")[0] for r in rows if r["text"]}
    assert shown == {"Alpha", "Charlie", "'=SUM(A1:A9)"}
    held = [r for r in rows if r["note"]]
    assert len(held) == 6 and all(r["text"] == "" for r in held)  # Bravo 2, Delta 3, Echo 1
    assert all("fewer than 5 people" in r["note"] for r in held)
    text = str(rows)
    for word in ("Bravo", "Delta", "Echo"):
        assert word not in text
    # Every text shown sits in a group of at least k respondents.
    groups: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    for r in rows:
        groups[(r["round"], r["answering_as"], r["area"])].add(r["respondent"])
    for r in rows:
        if r["text"]:
            assert len(groups[(r["round"], r["answering_as"], r["area"])]) >= 5
    # Other columns carry no note; a choice answer is never "held back".
    others = [r for r in _csv(ctx, settings, rounds[0]) if r["question"] != "biggest_obstacle"]
    assert others and not any(r["note"] for r in others)


def test_a_small_round_in_a_longer_scope_keeps_its_texts_back(
    ctx: AppContext, settings: Settings, rounds: tuple[int, int]
) -> None:
    # North holds 6 people across both rounds, but only 2 of them answered round 2: the round
    # column would single them out, so their texts are held back.
    rows = _csv(ctx, settings, Scope(rounds, "both rounds"))
    second = [r for r in rows if r["round"] == str(rounds[1])]
    assert len(second) == 2 and {r["area"] for r in second} == {"North"}
    assert all(r["text"] == "" and r["note"] for r in second)
    assert "Again said" not in str(rows)
    assert {r["area"] for r in rows} == {"North", "'@North", MERGED_LABEL}


def test_formulas_stay_neutralised(
    ctx: AppContext, settings: Settings, rounds: tuple[int, int]
) -> None:
    buffer = io.StringIO()
    with session_scope(ctx.sessions) as session:
        write_csv(session, settings, round_scope(session, rounds[0]), buffer)
    for row in csv.reader(io.StringIO(buffer.getvalue())):
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert "'@North" in buffer.getvalue() and "'=SUM(A1:A9)" in buffer.getvalue()


def test_fewer_than_k_respondents_in_all_shows_no_text_and_no_value(
    ctx: AppContext, settings: Settings
) -> None:
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
    rows = _csv(ctx, settings, round_id)
    assert len(rows) == 4
    assert {(r["answering_as"], r["area"], r["text"]) for r in rows} == {
        (MERGED_LABEL, MERGED_LABEL, "")
    }
