"""`consultbot demo`: a whole consultation round on the embedded defaults, in well under a minute.

A fresh SQLite database, the project's Bot API stand-in on 127.0.0.1, the real bot polling it
(people reply at machine speed here, so the stand-in's flood limits are off; the outbox paces
itself all the same), a coordinator, eight organisations and forty scripted participants who
join by invite link, agree to the privacy notice, fill in their profile and answer (or don't)
as people would, through the chat. The round opens, is reminded and closes on a fake clock
moved forward by days; the digest reaches the leads and the coordinator in chat and is written
to the output folder.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from bot.coding.codebook_file import load_codebook
from bot.coding.stored import codebook_for
from bot.consultations.catalogue import consultation_by_slug, import_consultation
from bot.consultations.files import load_directory
from bot.demo.local import LocalBot
from bot.demo.people import ORGANISATIONS, Persona, cast
from bot.demo.script import WAIT, Script, has_button
from bot.digests.compile import compile_digest
from bot.digests.render import chart_barriers, chart_response_rates, write_digest
from bot.digests.scopes import round_scope
from bot.kernel import i18n
from bot.kernel.clock import FakeClock
from bot.kernel.config import Settings, load_settings
from bot.kernel.context import AppContext
from bot.kernel.people import find_participant, grant_role
from bot.rounds.planning import schedule_once
from standin import BotApiStandIn
from storage import migrate
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import (
    Delivery,
    DeliveryStatus,
    Invitation,
    InvitationStatus,
    Organisation,
    Role,
    Round,
)

TOKEN = "7000000001:AAStandInTokenForLocalTestsOnly_0123456"
COORDINATOR_ID = 4_000_001
CONSULTATION = "partnership-health-check"
UNSENT = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)

Echo = Callable[[str], None]


@dataclass
class DemoResult:
    round_id: int
    counts: dict[str, int]
    files: list[Path]
    seconds: float
    transcript: Path
    top_barriers: list[tuple[str, str, int]] = field(default_factory=list)
    # Per lead, how many messages they had before the close: the rest is their digest.
    before_digest: dict[int, int] = field(default_factory=dict)


class DemoError(Exception):
    pass


def demo_settings(out: Path) -> Settings:
    return load_settings(
        None,
        database={"url": f"sqlite:///{(out / 'demo.sqlite3').resolve()}"},
        partnership={
            "name": "Riverside Partnership",
            "admins": [COORDINATOR_ID],
            "languages": ["en", "cy"],
        },
        rounds={"tick_seconds": 0.5, "max_rounds_per_period": 2},
        sending={"rate_per_second": 25, "per_chat_interval": 1.0},
    )


async def _until(check: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise DemoError(f"gave up waiting for {what} after {timeout:.0f} s")
        await asyncio.sleep(0.05)


async def run_demo(out: Path, *, seed: int = 7, echo: Echo = print) -> DemoResult:
    began = time.perf_counter()
    if out.exists():
        for name in ("demo.sqlite3", "demo.sqlite3-wal", "demo.sqlite3-shm"):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    settings = demo_settings(out)
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    sessions = make_session_factory(engine)
    clock = FakeClock(datetime.now(UTC).replace(second=0, microsecond=0))
    ctx = AppContext(settings=settings, sessions=sessions, clock=clock)
    people = cast(seed)

    echo(f"1. Database {out / 'demo.sqlite3'} created and migrated.")
    codes = {code.code for code in load_codebook(settings.paths.codebook)}
    with session_scope(sessions) as session:
        for spec in load_directory(settings.paths.consultations, known_codes=codes):
            import_consultation(session, spec)
        consultation = consultation_by_slug(session, CONSULTATION)
        assert consultation is not None
        questions = consultation.spec

    async with BotApiStandIn(token=TOKEN) as standin:
        bot = LocalBot(
            ctx, TOKEN, base_url=standin.bot_base_url, file_base_url=standin.file_base_url
        )
        await bot.start(poll_timeout=1)
        script = Script(standin, settings)
        try:
            echo(f"2. Bot API stand-in on {standin.url}; the bot polls it like Telegram.")
            result = await _play(ctx, standin, script, people, questions, echo)
        finally:
            await bot.stop()
        transcript = out / "transcript.txt"
        transcript.write_text(_transcript(standin, people, result), encoding="utf-8")

    files = _write_files(ctx, result.round_id, out)
    result.files = files
    result.transcript = transcript
    result.seconds = time.perf_counter() - began
    engine.dispose()
    return result


async def _play(
    ctx: AppContext,
    standin: BotApiStandIn,
    script: Script,
    people: list[Persona],
    consultation: dict,
    echo: Echo,
) -> DemoResult:
    clock = ctx.clock
    assert isinstance(clock, FakeClock)
    await _invite_and_join(ctx, standin, script, people, echo)
    round_id = await _open_round(ctx, standin, people, echo)
    by_behaviour: dict[str, list[Persona]] = {}
    for person in people:
        by_behaviour.setdefault(person.behaviour, []).append(person)
    await _first_days(ctx, standin, script, by_behaviour, consultation, round_id, echo)

    clock.advance(timedelta(days=8, minutes=1))
    await _until(
        lambda: (
            _deliveries(ctx, round_id, "reminder", *UNSENT) == 0
            and _deliveries(ctx, round_id, "reminder", DeliveryStatus.SENT) > 0
        ),
        "the reminders to go out",
    )
    reminded = _deliveries(ctx, round_id, "reminder", DeliveryStatus.SENT)
    echo(f"8. Eight days on, {reminded} people who had not finished got a reminder.")
    await asyncio.gather(
        *(script.answer_round(p, consultation) for p in by_behaviour.get("after_reminder", []))
    )
    echo(f"   {len(by_behaviour.get('after_reminder', []))} of them answered after the reminder.")

    clock.advance(timedelta(days=2))
    before_digest = {p.user_id: len(standin.messages(p.user_id)) for p in people}
    await _close(ctx, round_id, echo)
    with session_scope(ctx.sessions) as session:
        statuses = Counter(
            status.value
            for status in session.scalars(
                select(Invitation.status).where(Invitation.round_id == round_id)
            )
        )
    counts = dict(statuses)
    counts["reminders"] = reminded
    return DemoResult(
        round_id=round_id,
        counts=counts,
        files=[],
        seconds=0.0,
        transcript=Path(),
        before_digest=before_digest,
    )


async def _invite_and_join(
    ctx: AppContext, standin: BotApiStandIn, script: Script, people: list[Persona], echo: Echo
) -> None:
    """Steps 3 and 4: the coordinator's invite links, and everyone joining by one."""
    coordinator = COORDINATOR_ID
    standin.send_text(coordinator, "/start", first_name="Coordinator")
    await script.wait(coordinator, lambda m: "coordinator" in m.text.lower())

    codes: dict[str, str] = {}
    for org in ORGANISATIONS:
        reply = await script.say(
            coordinator, f"/invite {org['name']} days=30 uses=10", lambda m: "start=" in m.text
        )
        match = re.search(r"start=([A-Za-z0-9_-]+)", reply.text)
        if match is None:
            raise DemoError(f"no invite link in: {reply.text!r}")
        codes[org["name"]] = match.group(1)
    with session_scope(ctx.sessions) as session:
        # What a coordinator knows about each organisation (the digest's "by type" breakdown).
        for org in ORGANISATIONS:
            row = session.scalar(select(Organisation).where(Organisation.name == org["name"]))
            if row is not None:
                row.kind, row.area, row.size = org["kind"], org["area"], org["size"]
    echo(f"3. The coordinator made {len(codes)} invite links with /invite.")

    await asyncio.gather(*(script.join(p, codes[p.organisation]) for p in people))
    with session_scope(ctx.sessions) as session:
        for person in people:
            if person.role == "lead":
                grant_role(session, person.user_id, Role.LEAD)  # as `consultbot roles grant`
        joined = sum(1 for p in people if find_participant(session, p.user_id) is not None)
    welsh = sum(p.language == "cy" for p in people)
    echo(f"4. {joined} people joined by invite link ({welsh} of them chose Cymraeg), agreed to")
    echo("   the privacy notice in their language and filled in their profile;")
    echo(f"   {sum(p.role == 'lead' for p in people)} were made leads.")


async def _open_round(
    ctx: AppContext, standin: BotApiStandIn, people: list[Persona], echo: Echo
) -> int:
    """Steps 5 and 6: a round scheduled to open now, and its invitations sent."""
    blockers = [p for p in people if p.behaviour == "blocks"]
    for person in blockers:
        standin.block_chat(person.user_id)
    with session_scope(ctx.sessions) as session:
        consultation_row = consultation_by_slug(session, CONSULTATION)
        assert consultation_row is not None
        round_ = schedule_once(
            session,
            consultation_row,
            audience={"who": "organisations"},
            opens_at=ctx.clock.now(),
            open_for=timedelta(days=10),
            remind_before=[timedelta(days=2)],
            actor=COORDINATOR_ID,
            progress_chat_id=COORDINATOR_ID,
        )
        round_id = round_.id
    echo(f"5. Round #{round_id} scheduled: opens now, closes in 10 days, reminder 2 days before.")
    await _until(
        lambda: (
            _invitations(ctx, round_id, InvitationStatus.PENDING) == 0
            and _deliveries(ctx, round_id, "invitation", *UNSENT) == 0
            and _invitations(ctx, round_id, *InvitationStatus) > 0
        ),
        "the invitations to go out",
    )
    echo(
        f"6. The round opened; the outbox sent {_invitations(ctx, round_id, *InvitationStatus)} "
        f"invitations ({len(blockers)} people had blocked the bot: marked unreachable, not "
        "retried)."
    )
    return round_id


async def _first_days(
    ctx: AppContext,
    standin: BotApiStandIn,
    script: Script,
    by_behaviour: dict[str, list[Persona]],
    consultation: dict,
    round_id: int,
    echo: Echo,
) -> None:
    """Step 7: everyone answers (or not) as their behaviour says."""

    async def later_then_complete(person: Persona) -> None:
        later = script.said(person, "Later")
        intro = await script.wait(person.user_id, lambda m: has_button(m, later))
        await script.press(person.user_id, intro, later, lambda m: "/resume" in m.text)

    async def decline(person: Persona) -> None:
        no = script.said(person, "Not this time")
        thanks = script.said(
            person,
            "No problem, thanks for letting us know. Anything you already answered still counts.",
        )
        intro = await script.wait(person.user_id, lambda m: has_button(m, no))
        await script.press(person.user_id, intro, no, lambda m: thanks in m.text)

    await asyncio.gather(
        *(script.answer_round(p, consultation) for p in by_behaviour.get("complete", [])),
        *(
            script.answer_round(p, consultation, stop_after=2)
            for p in by_behaviour.get("partial", [])
        ),
        *(later_then_complete(p) for p in by_behaviour.get("later_then_complete", [])),
        *(decline(p) for p in by_behaviour.get("decline", [])),
    )
    for person in by_behaviour.get("later_then_complete", []):
        standin.send_text(person.user_id, "/resume")
    await asyncio.gather(
        *(script.answer_round(p, consultation) for p in by_behaviour.get("later_then_complete", []))
    )
    echo(
        f"7. In the first days: {_invitations(ctx, round_id, InvitationStatus.COMPLETED)} "
        f"finished, {len(by_behaviour.get('partial', []))} stopped part-way, "
        f"{len(by_behaviour.get('later_then_complete', []))} said 'Later' and came back "
        "with /resume, "
        f"{len(by_behaviour.get('decline', []))} said 'Not this time', one changed an answer."
    )


async def _close(ctx: AppContext, round_id: int, echo: Echo) -> None:
    """Step 9: the round closes and its digest reaches the leads."""
    await _until(lambda: _round_closed(ctx, round_id), "the round to close")
    await _until(
        lambda: (
            _deliveries(ctx, round_id, "digest", DeliveryStatus.SENT) > 0
            and _deliveries(ctx, round_id, "digest", *UNSENT) == 0
        ),
        "the digest to reach the leads",
        timeout=60,
    )
    with session_scope(ctx.sessions) as session:
        recipients = session.scalar(
            select(func.count(func.distinct(Delivery.chat_id))).where(
                Delivery.round_id == round_id, Delivery.kind == "digest"
            )
        )
    echo(
        f"9. Ten days on, the round closed and the digest went to {recipients} leads and "
        "coordinators in chat, through the same paced outbox."
    )


def _invitations(ctx: AppContext, round_id: int, *statuses: InvitationStatus) -> int:
    """How many of the round's invitations are in one of `statuses`."""
    with session_scope(ctx.sessions) as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(Invitation)
                .where(Invitation.round_id == round_id, Invitation.status.in_(statuses))
            )
            or 0
        )


def _deliveries(ctx: AppContext, round_id: int, kind: str, *statuses: DeliveryStatus) -> int:
    """How many of the round's deliveries of `kind` are in one of `statuses`."""
    with session_scope(ctx.sessions) as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(
                    Delivery.round_id == round_id,
                    Delivery.kind == kind,
                    Delivery.status.in_(statuses),
                )
            )
            or 0
        )


def _round_closed(ctx: AppContext, round_id: int) -> bool:
    with session_scope(ctx.sessions) as session:
        round_ = session.get(Round, round_id)
        return round_ is not None and round_.closed_at is not None


def _write_files(ctx: AppContext, round_id: int, out: Path) -> list[Path]:
    files: list[Path] = []
    with session_scope(ctx.sessions) as session:
        scope = round_scope(session, round_id)
        digest = compile_digest(
            session, ctx.settings, scope, audience="coordinator", now=ctx.clock.now()
        )
        for fmt, name in (("html", "digest.html"), ("md", "digest.md"), ("csv", "answers.csv")):
            files.append(
                write_digest(
                    digest,
                    ctx.renderer,
                    fmt,
                    out / name,
                    session=session,
                    settings=ctx.settings,
                    scope=scope,
                    codebook=codebook_for(ctx.settings, ctx.loaded),
                )
            )
        # The coordinator's digest again as a Welsh-speaking reader gets it.
        with i18n.speaking("cy"):
            welsh = compile_digest(
                session, ctx.settings, scope, audience="coordinator", now=ctx.clock.now()
            )
            files.append(write_digest(welsh, ctx.renderer, "html", out / "digest.cy.html"))
    for name, chart in (
        ("response-rates.png", chart_response_rates(digest)),
        ("barriers.png", chart_barriers(digest)),
    ):
        if chart:
            (out / name).write_bytes(chart)
            files.append(out / name)
    return files


def _transcript(standin: BotApiStandIn, people: list[Persona], result: DemoResult) -> str:
    """An English and a Welsh speaker's whole conversations, and the digest as an English and a
    Welsh-speaking lead got it at the close."""
    lines: list[str] = []
    for language in ("en", "cy"):
        person = next(
            p
            for p in people
            if p.behaviour == "complete"
            and p.obstacle
            and p.role != "lead"
            and p.language == language
        )
        lines.append(f"=== {person.first_name} ({person.organisation}, {language}) ===")
        for message in standin.messages(person.user_id):
            # Every version: the round's question card is one message edited as they answer.
            for n, version in enumerate(message.versions):
                if n:
                    lines.append("(the same message, edited)")
                lines.append(version.text)
                rows = (version.reply_markup or {}).get("inline_keyboard") or []
                buttons = [b for row in rows for b in row]
                if buttons:
                    lines.append("   " + "  ".join(f"[{b.get('text')}]" for b in buttons))
                lines.append("")
    for language in ("en", "cy"):
        lead = next(p for p in people if p.role == "lead" and p.language == language)
        lines.append(
            f"=== what the lead {lead.first_name} ({lead.organisation}, {language}) got "
            "at the close ==="
        )
        for message in standin.messages(lead.user_id)[result.before_digest.get(lead.user_id, 0) :]:
            if message.kind == "text":
                lines.append(message.text)
            elif message.kind == "photo":
                lines.append(f"[chart] {message.text}")
            else:
                name = message.file.file_name if message.file else ""
                lines.append(f"[file: {name}] {message.text}")
            lines.append("")
    return "\n".join(lines)


def main(out: Path, seed: int = 7) -> int:
    shutil.rmtree(out / "__pycache__", ignore_errors=True)
    result = asyncio.run(run_demo(out, seed=seed))
    print()
    print(f"Round #{result.round_id}: " + ", ".join(f"{k} {v}" for k, v in result.counts.items()))
    print(f"Files in {out}/:")
    for path in [*result.files, result.transcript]:
        print(f"  {path.name:<20} {path.stat().st_size:>9,} bytes")
    print(f"Done in {result.seconds:.1f} s. Open {out / 'digest.html'} in a browser.")
    return 0
