"""Digest speed and memory on 100,000 answers from 5,000 participants.

Run: .venv/bin/python bench/digest_bench.py [--url sqlite:////tmp/bench.sqlite3] [--rounds 4]

Builds 4 closed rounds of the partnership health check, each answered by the same 5,000
people (5 answers each: 4 button answers and 1 free text, so 20,000 texts for the coder), with
core bulk inserts. Then, each in a fresh subprocess so ru_maxrss is the digest's own peak:
  baseline  SELECT count(*) over answers, and fetching every answer row into Python
  first     the quarter digest, coding the 20,000 texts on the way: the rows here are bulk
            inserted like imported data, so the digest's catch-up pass codes them (texts given
            in the chat are coded when stored, by bot.journey, and never reach this pass)
  again     the same digest once everything is coded (every digest of answers from the chat)
  render    again + Telegram, HTML (with charts) and Markdown rendering
Targets: a digest under 2 s and 300 MB peak.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select, text  # noqa: E402

from bot.catalogue import import_consultation  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.consultations import load_consultation  # noqa: E402
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
    engine.dispose()
    print(
        f"built {answer_id:,} answers from {people:,} people in {rounds} rounds "
        f"in {time.perf_counter() - t0:.1f} s"
    )


def measure(url: str, what: str) -> dict[str, float]:
    """Runs inside the subprocess."""
    from bot.context import AppContext
    from bot.digest import codebook_for, compile_digest, quarter_scope
    from bot.digest_render import render_html, render_markdown, render_telegram

    settings = load_settings(None, database={"url": url})
    engine = make_engine(url)
    ctx = AppContext(settings=settings, sessions=make_session_factory(engine))
    codebook = codebook_for(settings, ctx.extras)  # loaded once per process, as in the bot
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
                scope = quarter_scope(session, settings, datetime.now(UTC))
                digest = compile_digest(session, settings, scope, codebook=codebook)
                extra["respondents"] = digest.barriers.base
                if what == "render":
                    render_telegram(digest, ctx.renderer)
                    render_html(digest, ctx.renderer)
                    render_markdown(digest, ctx.renderer)

    # Timed without tracemalloc (it slows Python code several times over); the traced peak
    # comes from a second pass, except for "first", whose work is done once the first pass
    # has coded everything.
    t0 = time.perf_counter()
    work()
    seconds = time.perf_counter() - t0
    peak = 0
    if what != "first":
        tracemalloc.start()
        work()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "traced_mb": peak / 2**20, "maxrss_mb": rss, **extra}


def run(url: str, what: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--url", url, "--measure", what],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="sqlite:////tmp/consultbot-digest-bench.sqlite3")
    parser.add_argument("--people", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--measure")
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.url, args.measure)))
        return
    if args.url.startswith("sqlite:///"):
        path = Path(args.url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    build(args.url, args.people, args.rounds)
    results = {what: run(args.url, what) for what in ("count", "fetch", "first", "again", "render")}
    fetch = results["fetch"]["seconds"]
    print(f"{'step':<8} {'seconds':>8} {'x fetch':>8} {'traced MB':>10} {'maxrss MB':>10}")
    for what, r in results.items():
        print(
            f"{what:<8} {r['seconds']:>8.3f} {r['seconds'] / fetch:>8.2f} "
            f"{r['traced_mb']:>10.1f} {r['maxrss_mb']:>10.1f}"
        )
    print(
        "(maxrss includes the interpreter and imported libraries; a bare Python with "
        "SQLAlchemy, matplotlib and the codebook is most of it)"
    )


if __name__ == "__main__":
    main()
