"""One meaning of "area" (issue 13, item 15): the person's own answer to the profile's area
question; for a member of an organisation who gave none, the organisation's. Targeting
(`--where area=...` and the /schedule dialog), the dialog's "By area" step, `rounds show` and
the digest all count the same people in each area.

An organisation's area is its first member's answer. It used to win when targeting, so
`--where area=north` asked the organisation's members who said South and missed those of
another organisation who said North, and the dialog offered only the areas organisations had."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from bot.consultations.profile import load_profile_questions
from bot.kernel.config import REPO_ROOT
from bot.kernel.context import AppContext
from bot.rounds.events import run_due_events
from bot.rounds.services import round_services
from storage.db import SessionFactory, session_scope
from storage.models import Invitation, InvitationStatus, Participant, Round, utcnow
from tests.conftest import Database
from tests.support import factories
from tests.support.cli_run import consultbot
from tests.support.digest_fixtures import answer, question
from tests.support.harness import BotHarness

COORDINATOR = 900  # an admin in the test settings
AREAS = ("centre", "east", "north", "south", "west")
TEMPLATES = REPO_ROOT / "templates"


def population(sessions: SessionFactory, harness: BotHarness | None = None) -> dict[str, set[int]]:
    """Three organisations and some service users whose own areas differ from their
    organisation's. Returns, per area, the Telegram ids of the people in it and (under
    "org:<area>") of those answering for an organisation."""
    people: dict[str, set[int]] = {}
    with session_scope(sessions) as s:
        factories.consultation(s)
        # Each organisation's area is its first member's answer.
        alder = factories.organisation(s, "Alder Food Bank", area="north")
        birch = factories.organisation(s, "Birch Youth", area="south")
        cedar = factories.organisation(s, "Cedar Faith Circle", area="west")
        members = [
            *[(alder, "north")] * 5,
            *[(alder, "south")] * 6,
            *[(birch, "north")] * 5,
            *[(birch, "east")] * 5,
            *[(birch, "centre")] * 5,
            *[(cedar, None)] * 5,  # gave no area: their organisation's, west
            *[(None, "north")] * 5,  # service users
            *[(None, "east")] * 5,
        ]
        for i, (org, own) in enumerate(members):
            uid = 7000 + i
            as_ = "organisation" if org is not None else "service_user"
            profile = {"answers_as": as_, **({"area": own} if own else {})}
            factories.participant(s, uid, organisation=org, profile=profile, answers_as=as_)
            if harness is not None:
                harness.standin.register_chat(uid)
            area = own or (org.area if org is not None else None)
            assert area is not None
            people.setdefault(area, set()).add(uid)
            if org is not None:
                people.setdefault(f"org:{area}", set()).add(uid)
    return people


def invited(sessions: SessionFactory, round_id: int) -> set[int]:
    with session_scope(sessions) as s:
        return set(
            s.scalars(
                select(Participant.telegram_user_id)
                .join(Invitation, Invitation.participant_id == Participant.id)
                .where(Invitation.round_id == round_id)
            )
        )


async def test_schedule_dialog_offers_and_targets_the_areas_people_gave(
    harness: BotHarness,
) -> None:
    people = population(harness.ctx.sessions, harness)
    msg = await harness.say(COORDINATOR, "/schedule")
    msg = await harness.press(COORDINATOR, msg, "How well are we working with you?")
    msg = await harness.press(COORDINATOR, msg, "By area")
    # Every area the organisations' people gave (the set is written for organisations), not
    # only the three the organisations took from their first members, by its profile label.
    offered = [b["text"] for b in msg.buttons]
    assert offered == ["Town centre", "East", "North", "South", "West"]

    msg = await harness.press(COORDINATOR, msg, "North")
    msg = await harness.press(COORDINATOR, msg, "Now")
    msg = await harness.press(COORDINATOR, msg, "10 days")
    summary = await harness.press(COORDINATOR, msg, "No reminder")
    north = people["org:north"]
    assert f"{len(north)} people" in summary.text
    await harness.press(COORDINATOR, summary, "Confirm")
    await harness.eventually(lambda: invited(harness.ctx.sessions, 1), timeout=10)
    # Alder's and Birch's members who said North; none of Alder's who said South.
    assert invited(harness.ctx.sessions, 1) == north


def _people_now(output: str) -> int:
    match = re.search(r"(\d+) people now", output)
    assert match, output
    return int(match[1])


def _rounds_show(output: str) -> dict[str, int]:
    """area -> invited, from `rounds show`."""
    return {a: int(n) for a, n in re.findall(r"area=(\w+): \S+ of (\d+) answered", output)}


def _digest_areas(markdown: str) -> dict[str, int]:
    """area -> invited, from the digest's "Area" table (which names each area by its label in
    templates/profile.toml: "Town centre" is centre)."""
    (area,) = [q for q in load_profile_questions(TEMPLATES) if q.key == "area"]
    ids = {option.label: option.id for option in area.options}
    table = markdown.split("| Area |", 1)[1].split("\n\n", 1)[0]
    return {ids[a]: int(n) for a, n in re.findall(r"^\| ([\w ]+) \| (\d+) \|", table, re.MULTILINE)}


def test_targeting_rounds_show_and_the_digest_count_the_same_people_per_area(
    db: Database, ctx: AppContext, tmp_path: Path
) -> None:
    people = population(db.sessions)
    expected = {area: len(people[area]) for area in AREAS}
    env = {"CONSULTBOT_DATABASE__URL": db.url}

    # Targeting: `rounds schedule --where area=...` (planned far ahead; only counted now).
    targeted = {}
    for area in AREAS:
        planned = consultbot(
            *("rounds", "schedule", "--consultation", "partnership-health-check"),
            *("--audience", "everyone", "--yes", "--where", f"area={area}"),
            *("--at", "2099-01-05 09:00"),
            cwd=tmp_path,
            env=env,
        )
        assert planned.returncode == 0, planned.stderr
        targeted[area] = _people_now(planned.stdout)
    assert targeted == expected

    # A round for everyone, opened as the bot's tick opens it, answered by all, closed.
    opened = consultbot(
        *("rounds", "schedule", "--consultation", "partnership-health-check"),
        *("--audience", "everyone", "--yes", "--now"),
        cwd=tmp_path,
        env=env,
    )
    assert opened.returncode == 0, opened.stderr
    run_due_events(db.sessions, now=datetime.now(UTC), services=round_services(ctx))
    with session_scope(db.sessions) as s:
        round_ = s.scalars(select(Round).where(Round.opened_at.is_not(None))).one()
        round_id = round_.id
        barriers = question(round_.consultation, "partnership_barriers")
        for invitation in s.scalars(select(Invitation).where(Invitation.round_id == round_id)):
            answer(s, invitation, barriers, ["funding"])
            invitation.status = InvitationStatus.COMPLETED
            invitation.completed_at = utcnow()
    assert invited(db.sessions, round_id) == set().union(*(people[a] for a in AREAS))
    closed = consultbot("rounds", "close", str(round_id), cwd=tmp_path, env=env)
    assert closed.returncode == 0, closed.stderr

    shown = consultbot("rounds", "show", str(round_id), cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    assert _rounds_show(shown.stdout) == expected

    out = tmp_path / "digest.md"
    digest = consultbot(
        *("digest", "--round", str(round_id), "--format", "md", "--out", str(out)),
        cwd=tmp_path,
        env=env,
    )
    assert digest.returncode == 0, digest.stderr
    assert _digest_areas(out.read_text()) == expected
