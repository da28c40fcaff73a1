"""The attacker (tests/support/attacker.py) against everything one role can obtain: each round's
digest, the quarter's, a lead's own-organisation view, the answers file, /round N, and all of
these again after someone's /forget. Random small populations (hypothesis), then the seven
cases recovered below k on the old code, by name. It must find nothing."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.coding.stored import codebook_for
from bot.digests.answers_csv import write_csv
from bot.digests.compile import compile_digest, prepare
from bot.digests.digest import NOT_GIVEN, Barriers, Digest, Participation, Scope
from bot.digests.scopes import round_scope
from bot.digests.segments import CHANNEL_LABELS
from bot.kernel.config import Settings, load_settings
from bot.kernel.context import AppContext
from bot.participation.mydata import forget
from bot.rounds.watching import get_round, round_stats
from storage.db import session_scope
from storage.models import CHAT, Base, Invitation, InvitationStatus, Participant, Round
from tests.conftest import Database
from tests.support import factories
from tests.support.attacker import Attacker, Person, Question
from tests.support.digest_fixtures import answer, closed_round, question, respondent

K = 5
QUESTIONS = [  # as in the shipped partnership-health-check set
    Question("asked_when", "single", ["early", "partway", "late", "not_asked", "not_sure"]),
    Question("equal_partner", "scale", [1, 2, 3, 4, 5]),
    Question(
        "partnership_barriers",
        "multi",
        [
            "no_feedback",
            "meetings",
            "not_told",
            "contracts",
            "funding",
            "red_tape",
            "jargon",
            "none",
        ],
    ),
    Question(
        "own_barriers", "multi", ["capacity", "finance", "premises", "skills", "leadership", "none"]
    ),
]
CODES = [
    "ext.engagement",
    "ext.funding",
    "ext.red_tape",
    "ext.contracts",
    "int.capacity",
    "int.finance",
]
AREAS = ["north", "south", "east", "west", "centre", "rural"]


@dataclass
class Someone:
    """One generated invitation: who, and what they answered (None: invited, no answer)."""

    org: int | None  # index into the scenario's organisations; None: a service user
    area: str
    answers: dict[str, Any] | None
    completed: bool
    # Not "chat": a submission gathered elsewhere and imported (anonymous, answered, finished,
    # nothing known of who gave it).
    channel: str = CHAT
    language: str | None = None  # the person's language (None: not given)


LANGUAGE_LABELS = {"en": "English", "cy": "Cymraeg", None: NOT_GIVEN}


def codes_of(answers: dict[str, Any]) -> set[str]:
    """The codes the shipped set's options and rules carry (as digest_fixtures stores them)."""
    codes: set[str] = set()
    if answers.get("asked_when") == "late":
        codes.add("ext.engagement")
    scale = answers.get("equal_partner")
    if scale is not None and scale <= 2:
        codes.add("ext.engagement")
    for option in answers.get("partnership_barriers") or ():
        codes.add(f"ext.{option}")
    for option in answers.get("own_barriers") or ():
        codes.add(f"int.{option}")
    return codes


answer_values = st.fixed_dictionaries(
    {
        "asked_when": st.sampled_from(["early", "late", "not_sure", None]),
        "equal_partner": st.sampled_from([1, 2, 3, 4, 5, None]),
        "partnership_barriers": st.one_of(
            st.none(), st.sets(st.sampled_from(["funding", "red_tape", "contracts"]), min_size=1)
        ),
        "own_barriers": st.one_of(
            st.none(), st.sets(st.sampled_from(["capacity", "finance"]), min_size=1)
        ),
    }
)


@st.composite
def scenarios(draw: st.DrawFn) -> list[list[Someone]]:
    """Two or three rounds of 1 to 30 invitations, people in up to 6 areas, two
    organisations (with their own areas) and service users, each in English, Welsh or a
    language not given, and submissions imported from KoboToolbox or paper (about one in
    five)."""
    areas = AREAS[: draw(st.integers(1, 6))]
    rounds = []
    for _ in range(draw(st.integers(2, 3))):
        size = draw(st.integers(1, 30))
        people = []
        for _ in range(size):
            channel = draw(st.sampled_from([CHAT, CHAT, CHAT, "kobo", "paper"]))
            if channel != CHAT:
                people.append(Someone(None, "", draw(answer_values), True, channel))
                continue
            org = draw(st.sampled_from([0, 1, None]))
            area = areas[org % len(areas)] if org is not None else draw(st.sampled_from(areas))
            answered = draw(st.booleans()) or draw(st.booleans())
            answers = draw(answer_values) if answered else None
            language = draw(st.sampled_from(["en", "en", "cy", None]))
            people.append(Someone(org, area, answers, draw(st.booleans()), language=language))
        rounds.append(people)
    return rounds


def wipe(session: Session) -> None:
    for table in reversed(Base.metadata.sorted_tables):
        session.execute(delete(table))


def build(
    session: Session, rounds: list[list[Someone]]
) -> tuple[list[Person], list[int], list[int]]:
    """Store the scenario as the journey stores answers; return the attacker's view of every
    invitation, the round ids and the organisations' ids."""
    consultation = factories.consultation(session)
    orgs = [
        factories.organisation(session, "Alder Trust", area=None, kind="charity"),
        factories.organisation(session, "Birch Group", area=None, kind="community group"),
    ]
    people: list[Person] = []
    ids: list[int] = []
    user = 10_000
    for n, invited in enumerate(rounds):
        round_ = closed_round(session, consultation, days_ago=len(rounds) - n)
        ids.append(round_.id)
        for someone in invited:
            user += 1
            org = orgs[someone.org] if someone.org is not None else None
            answers = {
                k: (sorted(v) if isinstance(v, set) else v)
                for k, v in (someone.answers or {}).items()
            }
            if someone.channel != CHAT:
                people.append(imported(session, round_, user, someone.channel, answers))
                continue
            invitation = respondent(
                session,
                round_,
                user,
                answers,
                organisation=org,
                profile={"area": someone.area},
                complete=someone.completed,
                answers_as="organisation" if org is not None else "service_user",
                language=someone.language,
            )
            labels = {
                "area": someone.area,
                "answers_as": "An organisation" if org is not None else "A service user",
                "kind": (org.kind or "Not given") if org is not None else "Not given",
                "channel": "Chat",
                "language": LANGUAGE_LABELS[someone.language],
            }
            given = someone.answers is not None
            people.append(
                Person(
                    invitation.id,
                    round_.id,
                    labels,
                    org.id if org is not None else None,
                    responded=given,
                    completed=given and someone.completed,
                    answers={k: (set(v) if isinstance(v, list) else v) for k, v in answers.items()},
                    codes=codes_of(answers),
                )
            )
    return people, ids, [o.id for o in orgs]


def imported(
    session: Session, round_: Round, number: int, channel: str, answers: dict[str, Any]
) -> Person:
    """A submission imported into the round (as bot.participation.imported stores one), and
    the attacker's view of it: nothing but its channel."""
    invitation = Invitation(
        round=round_,
        participant_id=None,
        status=InvitationStatus.COMPLETED,
        segment={},
        channel=channel,
        submission_key=f"uuid:{number}",
        completed_at=round_.opens_at,
    )
    session.add(invitation)
    session.flush()
    for key, value in answers.items():
        answer(session, invitation, question(round_.consultation, key), value)
    labels = {"area": NOT_GIVEN, "answers_as": NOT_GIVEN, "kind": NOT_GIVEN}
    labels["channel"] = CHANNEL_LABELS[channel]
    labels["language"] = NOT_GIVEN
    return Person(
        invitation.id,
        round_.id,
        labels,
        None,
        responded=True,
        completed=True,
        answers={k: (set(v) if isinstance(v, list) else v) for k, v in answers.items()},
        codes=codes_of(answers),
    )


def obtain(
    ctx: AppContext, settings: Settings, attacker: Attacker, ids: list[int], lead_of: int | None
) -> None:
    """Everything the role can obtain now: each round's digest, the quarter's, the answers
    files (coordinators), /round N (coordinators)."""
    audience = "lead" if lead_of is not None else "coordinator"
    codebook = codebook_for(settings)
    with session_scope(ctx.sessions) as session:
        scopes = [round_scope(session, i) for i in ids]
        quarter = Scope(tuple(ids), "the quarter", period=True)
        for scope in [*scopes, quarter]:
            prepare(session, scope, codebook)
            d = compile_digest(
                session,
                settings,
                scope,
                now=ctx.clock.now(),
                organisation_id=lead_of,
                audience=audience,
                codebook=codebook,
            )
            attacker.read_digest(d, lead_of)
            if lead_of is None:
                buffer = io.StringIO()
                write_csv(session, settings.privacy.k, scope, codebook, buffer)
                attacker.read_csv(buffer.getvalue())
        if lead_of is None:
            for i in ids:
                stats = round_stats(session, get_round(session, i), settings.privacy.k)
                attacker.read_digest(_as_digest(i, stats.participation, ctx))


def _as_digest(round_id: int, participation: Participation, ctx: AppContext) -> Digest:
    """/round N's figures about people, in the shape the attacker reads."""
    nothing = Barriers(None, [], [], 0, None)
    now = ctx.clock.now()
    return Digest(
        "", "", "", [round_id], None, None, now, K, "", participation, [], nothing, [], []
    )


def attack(
    ctx: AppContext, settings: Settings, rounds: list[list[Someone]], forget_index: int, lead: bool
) -> list[Any]:
    with session_scope(ctx.sessions) as session:
        wipe(session)
    with session_scope(ctx.sessions) as session:
        people, ids, orgs = build(session, rounds)
    attacker = Attacker(people, QUESTIONS, CODES, K)
    lead_of = orgs[0] if lead else None
    obtain(ctx, settings, attacker, ids, lead_of)
    responded = [p for p in people if p.responded and p.labels["channel"] == "Chat"]
    if responded:
        gone = responded[forget_index % len(responded)]
        with session_scope(ctx.sessions) as session:
            user = session.scalar(
                select(Participant.telegram_user_id)
                .join(Invitation, Invitation.participant_id == Participant.id)
                .where(Invitation.id == gone.invitation_id)
            )
            assert user is not None
            forget(session, ctx, user)
        obtain(ctx, settings, attacker, ids, lead_of)
    found = attacker.findings()
    for finding in found[:1]:  # what a failure prints: how the figures add up to it
        print(finding, *attacker.explain(finding), sep="\n  ")
    return found


@pytest.fixture
def k5(db: Database) -> Iterator[Settings]:
    yield load_settings(None, database={"url": db.url}, privacy={"k": K})


@settings(
    # A dozen in every run; set CONSULTBOT_ATTACKER_EXAMPLES=500 for a long search.
    max_examples=int(os.environ.get("CONSULTBOT_ATTACKER_EXAMPLES", "12")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rounds=scenarios(), forget_index=st.integers(0, 1000), lead=st.booleans())
def test_the_attacker_finds_nothing(
    ctx: AppContext, k5: Settings, rounds: list[list[Someone]], forget_index: int, lead: bool
) -> None:
    findings = attack(ctx, k5, rounds, forget_index, lead)
    assert not findings, findings[:5]


# --------------------------------------------------------------------------- the seven cases
# Each was recovered below k (k = 5) on the code before disclosure control; each is now a
# scenario the attacker must find nothing in, with the figure that gave it away checked too.

ANSWER = {"asked_when": "late", "equal_partner": 3, "partnership_barriers": ["funding"]}


def someone(area: str = "north", org: int | None = None, **answers: Any) -> Someone:
    return Someone(org, area, {**ANSWER, **answers}, True)


def nobody(area: str = "north", org: int | None = None) -> Someone:
    return Someone(org, area, None, False)


def digest_of(ctx: AppContext, settings: Settings, scope: Scope, **kw: Any) -> Digest:
    with session_scope(ctx.sessions) as session:
        prepare(session, scope, codebook_for(settings))
        return compile_digest(session, settings, scope, now=ctx.clock.now(), **kw)


def round_ids(ctx: AppContext) -> list[int]:
    with session_scope(ctx.sessions) as session:
        return sorted(session.scalars(select(Round.id)))


def test_case_1_subtraction_in_one_table(ctx: AppContext, k5: Settings) -> None:
    """7 of 10 answered; north 5 of 5, so south's 2 followed by subtraction."""
    first = [someone("north") for _ in range(5)] + [someone("south") for _ in range(2)]
    first += [nobody("south") for _ in range(3)]
    filler = [someone("north") for _ in range(6)]
    assert not attack(ctx, k5, [first, filler], 0, False)
    d = digest_of(ctx, k5, Scope((round_ids(ctx)[0],), "round"))
    area = {
        r.label: r.responded
        for r in next(x for x in d.participation.dimensions if x.key == "area").rows
    }
    assert d.participation.responded == 7
    assert area["south"] is None and area["north"] is None  # south under k; north with it


def test_case_2_round_against_period(ctx: AppContext, k5: Settings) -> None:
    """Round 2 had one respondent: the quarter less round 1 gave their answers."""
    first = [someone(partnership_barriers=["funding"]) for _ in range(7)]
    second = [someone(equal_partner=2, partnership_barriers=["funding", "red_tape"])]
    assert not attack(ctx, k5, [first, second], 0, False)
    ids = round_ids(ctx)
    quarter = digest_of(ctx, k5, Scope(tuple(ids), "quarter", period=True))
    alone = digest_of(ctx, k5, Scope((ids[0],), "round"))
    assert quarter.left_out == [ids[1]]
    assert quarter.participation.responded == alone.participation.responded == 7


def test_case_3_before_and_after_forget(ctx: AppContext, k5: Settings) -> None:
    """A digest recomputed after a /forget, set against the one sent before, gave the erased
    person's answers: now the published figures never change."""
    people = [someone(partnership_barriers=["funding"]) for _ in range(6)]
    people += [someone(equal_partner=1, partnership_barriers=["red_tape"]) for _ in range(6)]
    assert not attack(ctx, k5, [people, [someone() for _ in range(5)]], 3, False)
    # attack() ran the /forget; the digest made now is the one made before it.
    ids = round_ids(ctx)
    after = digest_of(ctx, k5, Scope((ids[0],), "round"))
    assert after.participation.responded == 12
    assert {r.code: r.respondents for r in after.barriers.rows}["ext.funding"] == 6


def test_case_4_a_leads_organisation_against_the_partnership(ctx: AppContext, k5: Settings) -> None:
    """The partnership's 7 against the lead's own 5: the other organisation's 2 followed."""
    people = [someone("north", org=0) for _ in range(5)]
    people += [someone("north", org=1, partnership_barriers=["red_tape"]) for _ in range(2)]
    assert not attack(ctx, k5, [people, [someone() for _ in range(5)]], 0, True)
    with session_scope(ctx.sessions) as session:
        org = session.scalar(
            select(Invitation.organisation_id)
            .where(Invitation.organisation_id.is_not(None))
            .order_by(Invitation.id)
        )
    d = digest_of(
        ctx, k5, Scope((round_ids(ctx)[0],), "round"), organisation_id=org, audience="lead"
    )
    assert (
        d.organisation is not None
        and d.organisation.responded is None
        and d.organisation.suppressed
    )
    assert d.participation.organisations_few == 1 and d.participation.organisations_without == []


def test_case_5_order_statistics(ctx: AppContext, k5: Settings) -> None:
    """ "Lowest 1" for a scale when two people gave 1."""
    people = [someone(equal_partner=1) for _ in range(2)] + [
        someone(equal_partner=4) for _ in range(8)
    ]
    assert not attack(ctx, k5, [people, [someone() for _ in range(5)]], 0, False)
    d = digest_of(ctx, k5, Scope((round_ids(ctx)[0],), "round"))
    scale = next(q for q in d.questions if q.key == "equal_partner").scale
    assert scale is not None and scale.min is None and scale.max == 4 and scale.n == 10


def test_case_6_the_answers_file_of_a_round_of_one(ctx: AppContext, k5: Settings) -> None:
    """The CSV of a one-respondent round gave their choices, number and codes."""
    assert not attack(ctx, k5, [[someone()], [someone() for _ in range(6)]], 0, False)
    buffer = io.StringIO()
    with session_scope(ctx.sessions) as session:
        scope = round_scope(session, round_ids(ctx)[0])
        result = write_csv(session, K, scope, codebook_for(k5), buffer)
    assert result.rows == 0 and buffer.getvalue().count("\n") == 1  # the header alone


def test_case_7_round_n(ctx: AppContext, k5: Settings) -> None:
    """/round N printed "south: 2 of 5 completed" and "1 of 1 completed"."""
    first = [someone("north") for _ in range(6)] + [someone("south") for _ in range(2)]
    first += [nobody("south") for _ in range(3)] + [someone("east")]
    assert not attack(ctx, k5, [first, [someone() for _ in range(5)]], 0, False)
    with session_scope(ctx.sessions) as session:
        stats = round_stats(session, get_round(session, round_ids(ctx)[0]), K)
    rows = {
        r.label: r for r in next(d for d in stats.participation.dimensions if d.key == "area").rows
    }
    assert all(r.completed is None or r.completed == 0 or r.completed >= K for r in rows.values())
    assert "east" not in rows  # one invited: merged


def test_a_quarter_shows_no_zero_for_fewer_than_k_of_a_leads_organisation(
    ctx: AppContext, k5: Settings
) -> None:
    """Found by the attacker: the lead's organisation had one person invited in the quarter's
    one releasable round, who did not answer; that round held the organisation's figure back,
    and the quarter showed it as 0."""
    first = [someone("north", org=0) for _ in range(2)] + [nobody("north", 0) for _ in range(4)]
    second = [someone("north", org=1) for _ in range(4)] + [nobody("north", 1) for _ in range(3)]
    second += [nobody("north", org=0), someone("north")]
    assert not attack(ctx, k5, [first, second], 0, True)
    with session_scope(ctx.sessions) as session:
        org = session.scalar(
            select(Invitation.organisation_id)
            .where(Invitation.organisation_id.is_not(None))
            .order_by(Invitation.id)
        )
    ids = round_ids(ctx)
    quarter = digest_of(
        ctx, k5, Scope(tuple(ids), "quarter", period=True), organisation_id=org, audience="lead"
    )
    assert quarter.left_out == [ids[0]]
    assert quarter.organisation is not None and quarter.organisation.responded is None
