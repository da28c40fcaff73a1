"""Digest speed and memory on 100,000 answers from 5,000 participants.

Run: .venv/bin/python bench/digest_bench.py [--url sqlite:////tmp/bench.sqlite3] [--rounds 4]
     [--repeat 3]
Both databases in one run: --url sqlite:////tmp/bench.sqlite3 --url postgresql://.../db
(the PostgreSQL database's public schema is dropped and rebuilt).

Builds 4 closed rounds of the partnership health check, each answered by the same 5,000
people (5 answers each: 4 button answers and 1 free text, so 20,000 texts for the coder), with
core bulk inserts. On PostgreSQL it then runs ANALYZE, as autovacuum would have long before
anyone asks for a digest (without statistics the planner guessed 85 rows where there were
121,332 and chose nested loops); SQLite keeps none unless asked, and the bot never asks, so
neither does the bench (with them, its plans here got slower). Then, each in a fresh
subprocess so ru_maxrss is the digest's own peak:
  baseline  SELECT count(*) over answers, and fetching every answer row into Python
  first     the quarter digest after the catch-up coding of the 20,000 texts: the rows here
            are bulk inserted like imported data, so the catch-up pass codes them (texts given
            in the chat are coded when stored, by bot.participation.journey, and never reach
            this pass)
  publish   the rounds' figures counted again from the answers and stored, then the digest:
            the work done once, when a round closes (with disclosure control)
  again     the same digest once everything is coded and published (every later digest),
            made from the stored figures
  render    again + Telegram, HTML (with charts) and Markdown rendering
Every step but "first" (which codes, so runs once) is measured --repeat times, interleaved
with the baseline; the table shows medians, the range, and each median as a multiple of the
median fetch of the same run, the figure to compare across machines and busy moments. "cpu s"
is CPU time, which other jobs on a shared machine do not eat: this process's, plus on
PostgreSQL its server backend's when the server runs on this machine (read from /proc).
Targets: a digest under 2 s and 300 MB peak.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, delete, func, insert, make_url, select, text  # noqa: E402

from bot.consultations.catalogue import import_consultation  # noqa: E402
from bot.consultations.sets import load_consultation  # noqa: E402
from bot.kernel.config import load_settings  # noqa: E402
from storage import migrate  # noqa: E402
from storage.db import make_engine, make_session_factory, session_scope  # noqa: E402
from storage.models import (  # noqa: E402
    Answer,
    AnswerChoice,
    AnswerCode,
    CodeSource,
    Invitation,
    InvitationStatus,
    Organisation,
    Participant,
    Release,
    Round,
    RoundStatus,
)

TEXTS = [
    "Funding is always short term and confirmed late, so we cannot plan or keep staff.",
    "We never hear back after consultations; it feels like a tick-box exercise.",
    "Not enough volunteers and no time: everything rests on one person.",
    "The tender paperwork is far too complex for a group our size.",
    "Meetings are in the daytime when our volunteers are at work.",
    "We have no reserves so we cannot wait months to be paid.",
    "Great relationships with the council officers, they really listen.",
    "Too many forms, and every agency wants a different monitoring report.",
    "Our hall is damp and the laptop is ten years old.",
    "Hard to say really, it depends on the week.",
]


def build(url: str, people: int, rounds: int) -> None:
    engine = make_engine(url)
    if url.startswith("postgresql"):
        with engine.begin() as c:
            c.execute(text("DROP SCHEMA public CASCADE"))
            c.execute(text("CREATE SCHEMA public"))
    migrate.upgrade(engine)
    sessions = make_session_factory(engine)
    rng = random.Random(5)
    t0 = time.perf_counter()
    with session_scope(sessions) as session:
        spec = load_consultation(ROOT / "templates/consultations/partnership-health-check.toml")
        consultation, _ = import_consultation(session, spec)
        q = {question.key: question for question in consultation.questions}
        areas = ["North", "South", "East", "West", "Central"]
        sizes = ["micro", "small", "medium", "large"]
        session.execute(
            insert(Organisation),
            [
                {
                    "id": i + 1,
                    "name": f"Group {i + 1}",
                    "area": areas[i % 5],
                    "size": sizes[i % 4],
                    "kind": ["charity", "community group", "faith group"][i % 3],
                    "sector": ["food", "youth", "care", "arts"][i % 4],
                }
                for i in range(200)
            ],
        )
        session.execute(
            insert(Participant),
            [
                {
                    "id": i + 1,
                    "telegram_user_id": 10_000 + i,
                    "chat_id": 10_000 + i,
                    "display_name": f"Person {i}",
                    "organisation_id": i % 200 + 1,
                    "profile": {},
                    "answers_as": "organisation",
                }
                for i in range(people)
            ],
        )
        now = datetime.now(UTC)
        answer_id = 0
        for r in range(rounds):
            closed = now - timedelta(days=2 + r * 7)
            round_ = Round(
                consultation_id=consultation.id,
                status=RoundStatus.CLOSED,
                opens_at=closed - timedelta(days=5),
                closes_at=closed,
                opened_at=closed - timedelta(days=5),
                closed_at=closed,
            )
            session.add(round_)
            session.flush()
            invitations, answers, choices, codes = [], [], [], []
            base_inv = r * people
            for i in range(people):
                inv = base_inv + i + 1
                org = i % 200
                invitations.append(
                    {
                        "id": inv,
                        "round_id": round_.id,
                        "participant_id": i + 1,
                        "organisation_id": org + 1,
                        "status": InvitationStatus.COMPLETED,
                        "segment": {
                            "area": areas[org % 5],
                            "size": sizes[org % 4],
                            "answers_as": "organisation",
                        },
                        "started_at": closed,
                        "completed_at": closed,
                    }
                )
                for key in (
                    "asked_when",
                    "equal_partner",
                    "partnership_barriers",
                    "own_barriers",
                    "biggest_obstacle",
                ):
                    answer_id += 1
                    question = q[key]
                    row = {
                        "id": answer_id,
                        "invitation_id": inv,
                        "question_id": question.id,
                        "number": None,
                        "text": None,
                        "skipped": False,
                    }
                    if question.type == "scale":
                        row["number"] = float(rng.randint(1, 5))
                        if row["number"] <= 2:
                            codes.append(
                                {
                                    "answer_id": answer_id,
                                    "code": "ext.engagement",
                                    "source": CodeSource.OPTION,
                                }
                            )
                    elif question.type == "text":
                        row["text"] = rng.choice(TEXTS)
                    else:
                        opts = [o for o in question.options if not o.get("exclusive")]
                        picked = rng.sample(opts, 1 if question.type == "single" else 2)
                        carried: set[str] = set()
                        for o in picked:
                            choices.append({"answer_id": answer_id, "option_key": o["id"]})
                            carried.update(o.get("codes") or [])
                        codes.extend(
                            {"answer_id": answer_id, "code": c, "source": CodeSource.OPTION}
                            for c in sorted(carried)
                        )
                    answers.append(row)
            session.execute(insert(Invitation), invitations)
            session.execute(insert(Answer), answers)
            session.execute(insert(AnswerChoice), choices)
            session.execute(insert(AnswerCode), codes)
    analysed = ""
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))
        analysed = ", then ANALYZE (planner statistics, as autovacuum would have gathered)"
    engine.dispose()
    print(
        f"built {answer_id:,} answers from {people:,} people in {rounds} rounds "
        f"in {time.perf_counter() - t0:.1f} s{analysed}"
    )


def measure(url: str, what: str) -> dict[str, float]:
    """Runs inside the subprocess."""
    from bot.coding.stored import codebook_for
    from bot.digests.compile import compile_digest, prepare
    from bot.digests.render import render_html, render_markdown, render_telegram
    from bot.digests.scopes import quarter_scope
    from bot.kernel.context import AppContext

    settings = load_settings(None, database={"url": url})
    engine = make_engine(url)
    ctx = AppContext(settings=settings, sessions=make_session_factory(engine))
    codebook = codebook_for(settings, ctx.loaded)  # loaded once per process, as in the bot
    extra: dict[str, float] = {}

    def work() -> None:
        with session_scope(ctx.sessions) as session:
            if what == "count":
                extra["answers"] = session.scalar(select(func.count()).select_from(Answer)) or 0
            elif what == "fetch":
                rows = session.execute(
                    select(
                        Answer.id,
                        Answer.invitation_id,
                        Answer.question_id,
                        Answer.number,
                        Answer.text,
                        Answer.skipped,
                    )
                ).all()
                extra["rows"] = len(rows)
            else:
                now = datetime.now(UTC)
                scope = quarter_scope(session, settings, now)
                if what == "publish":
                    # The work of a close: the rounds' figures counted from the answers again
                    # (each digest after that reads the stored figures: "again").
                    session.execute(delete(Release))
                # As every caller does: the catch-up coding first, then the compile (a read).
                prepare(session, scope, codebook)
                digest = compile_digest(session, settings, scope, codebook=codebook, now=now)
                extra["respondents"] = digest.barriers.base
                if what == "render":
                    render_telegram(digest, ctx.renderer)
                    render_html(digest, ctx.renderer)
                    render_markdown(digest, ctx.renderer)

    # Timed without tracemalloc (it slows Python code several times over); the traced peak
    # comes from a second pass, except for "first", whose work is done once the first pass
    # has coded everything.
    t0, cpu0 = time.perf_counter(), time.process_time()
    work()
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - cpu0 + (server_cpu(engine) or 0.0)
    peak = 0
    if what != "first":
        tracemalloc.start()
        work()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "cpu": cpu, "traced_mb": peak / 2**20, "maxrss_mb": rss, **extra}


def server_cpu(engine: Engine) -> float | None:
    """CPU seconds used so far by the PostgreSQL backend that served this process (the pool's
    one connection), when the server runs on this machine and /proc shows it; else None.
    SQLite's work is this process's own CPU time already."""
    if engine.dialect.name != "postgresql":
        return None
    with engine.connect() as connection:
        pid = connection.scalar(text("SELECT pg_backend_pid()"))
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def run(url: str, what: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--url", url, "--measure", what],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


STEPS = ("count", "fetch", "first", "publish", "again", "render")


def bench(url: str, people: int, rounds: int, repeat: int) -> dict[str, list[dict[str, float]]]:
    """Build the database at `url` and measure every step; "first" once, the others `repeat`
    times, in rounds of count, fetch, again, render so each is measured at similar moments."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    build(url, people, rounds)
    results: dict[str, list[dict[str, float]]] = {what: [] for what in STEPS}
    for i in range(repeat):
        for what in STEPS:
            if what != "first" or i == 0:
                results[what].append(run(url, what))
    return results


def report(
    url: str, results: dict[str, list[dict[str, float]]]
) -> tuple[dict[str, float], dict[str, float]]:
    """Print one database's table; returns the median seconds and CPU seconds of each step."""
    medians = {what: statistics.median(r["seconds"] for r in rs) for what, rs in results.items()}
    fetch = medians["fetch"]
    print(f"\n{url} (medians of {len(results['fetch'])} runs; first: 1 run)")
    cpus = {what: statistics.median(r["cpu"] for r in rs) for what, rs in results.items()}
    print(
        f"{'step':<8} {'seconds':>8} {'x fetch':>8} {'range':>13} {'cpu s':>7} {'x fetch':>8} "
        f"{'traced MB':>10} {'maxrss MB':>10}"
    )
    for what, rs in results.items():
        seconds = [r["seconds"] for r in rs]
        print(
            f"{what:<8} {medians[what]:>8.3f} {medians[what] / fetch:>8.2f} "
            f"{min(seconds):>6.3f}-{max(seconds):<6.3f} {cpus[what]:>7.3f} "
            f"{cpus[what] / cpus['fetch']:>8.2f} "
            f"{max(r['traced_mb'] for r in rs):>10.1f} {max(r['maxrss_mb'] for r in rs):>10.1f}"
        )
    return medians, cpus


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--url",
        action="append",
        help="database to build and measure; give it twice (SQLite and PostgreSQL) for both "
        "(default: sqlite:////tmp/consultbot-digest-bench.sqlite3)",
    )
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each step but first")
    parser.add_argument("--measure")
    args = parser.parse_args()
    urls = args.url or ["sqlite:////tmp/consultbot-digest-bench.sqlite3"]
    if args.measure:
        print(json.dumps(measure(urls[0], args.measure)))
        return
    summary: dict[str, tuple[dict[str, float], dict[str, float]]] = {}
    for url in urls:
        summary[url] = report(url, bench(url, args.people, args.rounds, args.repeat))
    print(
        "(maxrss includes the interpreter and imported libraries; a bare Python with "
        "SQLAlchemy, matplotlib and the codebook is most of it)"
    )
    if len(urls) > 1:
        print("\nmedian seconds (x the median fetch-all of the same database and run; by CPU)")
        for url, (m, c) in summary.items():
            cells = "  ".join(
                f"{what} {m[what]:.3f} ({m[what] / m['fetch']:.2f}x; {c[what] / c['fetch']:.2f}x)"
                for what in ("fetch", "again", "render")
            )
            print(f"{make_url(url).get_backend_name():<11} {cells}")


if __name__ == "__main__":
    main()
