"""Long `consultbot` work beside a running bot: the bot keeps answering (issue 13, item 13).

On SQLite one connection writes at a time. `consultbot digest --period quarter` over many texts
stored without codes (imported answers) used to code them all in one transaction, holding the
write lock for seconds, and every update the bot took meanwhile (each is marked processed, a
write) waited for it: /help took 3.2 s."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, insert, select

from storage.db import session_scope
from storage.models import (
    Answer,
    AnswerCode,
    Invitation,
    InvitationStatus,
    Participant,
    utcnow,
)
from tests.conftest import Database
from tests.support import factories
from tests.support.digest_fixtures import close, question
from tests.support.harness import BotHarness

TEXTS = 12_000  # about 3 s of coding at 0.26 ms a text: pages of it, committed one by one
SAYINGS = [
    "Funding is short term and always late, so we cannot plan for the year",
    "The council never listens and the meetings are at times our volunteers cannot make",
    "Too much jargon in the forms, and nobody tells us what happened after we said it",
    "We have no spare staff to fill in the paperwork for small grants",
    "Hard to say really, it depends on the week",
]


def imported_answers(db: Database, count: int) -> None:
    """A round closed a minute ago whose free texts came in by import: stored without codes."""
    now = utcnow()
    with session_scope(db.sessions) as session:
        consultation = factories.consultation(session)
        round_ = factories.open_round(session, consultation, now=now - timedelta(days=7))
        close(round_, now - timedelta(minutes=1))
        text_question = question(consultation, "biggest_obstacle").id
        people = session.scalars(
            insert(Participant).returning(Participant.id),
            [
                {"telegram_user_id": 10_000_000 + i, "chat_id": 10_000_000 + i, "profile": {}}
                for i in range(count)
            ],
        ).all()
        invitations = session.scalars(
            insert(Invitation).returning(Invitation.id),
            [
                {
                    "round_id": round_.id,
                    "participant_id": p,
                    "status": InvitationStatus.COMPLETED,
                    "segment": {},
                    "started_at": now,
                    "completed_at": now,
                }
                for p in people
            ],
        ).all()
        session.execute(
            insert(Answer),
            [
                {"invitation_id": inv, "question_id": text_question, "text": f"{saying} ({i})"}
                for i, (inv, saying) in enumerate(
                    zip(invitations, SAYINGS * (count // len(SAYINGS) + 1), strict=False)
                )
            ],
        )


def coded(db: Database) -> int:
    with session_scope(db.sessions) as session:
        return session.scalar(select(func.count(func.distinct(AnswerCode.answer_id)))) or 0


async def test_help_is_answered_while_the_cli_codes_a_quarter(
    db: Database, harness: BotHarness, tmp_path: Path
) -> None:
    imported_answers(db, TEXTS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULTBOT_")}
    env["CONSULTBOT_DATABASE__URL"] = db.url
    out = tmp_path / "quarter.md"
    cli = await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", "from bot.cli import main; main()"),
        *("digest", "--period", "quarter", "--format", "md", "--out", str(out)),
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        # The CLI is under way once its first texts are coded (and committed: this reads).
        await harness.eventually(lambda: coded(db) > 0 or cli.returncode is not None, timeout=60)
        assert cli.returncode is None, "the CLI finished before any of its coding was seen"

        reply = await harness.say(55, "/help", timeout=60)

        # Answered before the CLI was done: it was still coding when the reply came.
        assert "/help" in reply.text or "/profile" in reply.text
        assert coded(db) < TEXTS
        assert cli.returncode is None
    finally:
        stdout, stderr = await asyncio.wait_for(cli.communicate(), timeout=120)
    assert cli.returncode == 0, stderr.decode()
    assert "wrote" in stdout.decode() and out.exists()
    assert coded(db) == TEXTS
