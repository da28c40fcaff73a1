"""Imported submissions beside a running bot (real PTB over HTTP against the stand-in): /round N
counts them, reminders and the close's digests go to people only, and the digest sent in chat
has the breakdown by channel."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from bot.kernel.people import grant_role
from bot.participation.imported import import_answers
from bot.rounds.planning import schedule_once
from bot.telegram.jobs import tick_now
from storage.db import session_scope
from storage.models import Delivery, DeliveryStatus, Invitation, InvitationStatus, Role
from tests.support import factories, kobo
from tests.support.harness import BotHarness

COORDINATOR = 900  # an admin in the test settings
PEOPLE = [5000 + n for n in range(5)]


async def wait_until(check: object, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def delivered(harness: BotHarness) -> bool:
    with session_scope(harness.ctx.sessions) as s:
        return s.scalar(
            select(func.count()).where(Invitation.status == InvitationStatus.DELIVERED)
        ) == len(PEOPLE)


async def test_imported_submissions_are_counted_and_never_messaged(
    harness: BotHarness, tmp_path: Path
) -> None:
    with session_scope(harness.ctx.sessions) as s:
        for uid in PEOPLE:
            factories.participant(s, uid)
            harness.standin.register_chat(uid)
        coordinator = grant_role(s, COORDINATOR, Role.COORDINATOR)  # not asked: no consent
        coordinator.chat_id = COORDINATOR
        round_ = schedule_once(
            s,
            kobo.form(s, tmp_path),
            audience={"who": "everyone"},
            opens_at=harness.ctx.clock.now(),
            open_for=timedelta(days=10),
            remind_before=[],
        )
        round_id = round_.id
    harness.standin.register_chat(COORDINATOR)
    await tick_now(harness.ctx)
    await wait_until(lambda: delivered(harness))
    with session_scope(harness.ctx.sessions) as s:
        rows = kobo.kobo_rows(kobo.answers(7))
        result = import_answers(
            s,
            round_id,
            kobo.sheet(kobo.KOBO_HEADER, rows),
            channel=None,
            now=harness.ctx.clock.now(),
            text_limit=800,
        )
        assert result.stored == 7

    detail = (await harness.say(COORDINATOR, f"/round {round_id}")).text
    assert "Invited 12 (7 gathered outside the chat and imported)" in detail
    assert "delivered 5" in detail and "By channel" in detail
    assert "KoboToolbox: 7 of 7 answered" in detail
    reminded = (await harness.say(COORDINATOR, f"/remind {round_id}")).text
    assert "Reminding 5 people" in reminded

    harness.ctx.clock.advance(timedelta(days=10, minutes=1))  # type: ignore[attr-defined]
    await tick_now(harness.ctx)

    def digests_sent() -> bool:
        with session_scope(harness.ctx.sessions) as s:
            rows = s.scalars(select(Delivery).where(Delivery.kind == "digest")).all()
            return bool(rows) and all(r.status == DeliveryStatus.SENT for r in rows)

    await wait_until(digests_sent)
    digest = "\n".join(m.text for m in harness.standin.messages(COORDINATOR))
    assert "Channel" in digest and "KoboToolbox 7 of 7" in digest and "Chat 0 of 5" in digest
    with session_scope(harness.ctx.sessions) as s:
        anonymous = select(Invitation.id).where(Invitation.participant_id.is_(None))
        assert len(s.scalars(anonymous).all()) == 7
        assert not s.scalar(select(func.count()).where(Delivery.invitation_id.in_(anonymous)))
        chats = set(s.scalars(select(Delivery.chat_id)))
    assert chats == {*PEOPLE, COORDINATOR}
