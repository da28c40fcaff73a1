"""Close-time digest charts as photos: a round closes, the outbox sends each lead and
coordinator their digest with the charts inline, never a chart drawn from fewer than k people.
Real PTB and the outbox sender over HTTP against the stand-in."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from bot.digests.compile import compile_digest
from bot.digests.fanout import enqueue_round_digest
from bot.digests.render import chart_pngs
from bot.digests.scopes import round_scope
from bot.kernel.config import Settings
from bot.outbox.payloads import PURGED
from standin.models import BotMessage
from storage.db import session_scope
from storage.models import Delivery, DeliveryStatus, Role
from tests.support import factories
from tests.support.digest_fixtures import respondent
from tests.support.harness import BotHarness

LEAD_A, LEAD_B, COORD = 310, 311, 312
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # One message per chat per second is Telegram's pace, and it is tested elsewhere; here a
    # lead's six or so digest messages need not take six seconds.
    settings.sending.per_chat_interval = 0.02
    return settings


def build(harness: BotHarness, answers: list[dict[str, Any]]) -> int:
    """An open round of the health check: one respondent per entry of `answers`, all in Alder
    Food Bank (area North), with a lead for Alder and for Birchwood and a coordinator."""
    with session_scope(harness.ctx.sessions) as session:
        alder = factories.organisation(session, "Alder Food Bank", area="North")
        birch = factories.organisation(session, "Birchwood Youth", area="South")
        round_ = factories.open_round(
            session, factories.consultation(session), now=harness.ctx.clock.now()
        )
        for i, given in enumerate(answers):
            respondent(
                session, round_, 6000 + i, given, organisation=alder, profile={"area": "North"}
            )
        factories.participant(session, LEAD_A, role=Role.LEAD, organisation=alder)
        lead_b = factories.participant(session, LEAD_B, role=Role.LEAD, organisation=birch)
        factories.invitation(session, round_, lead_b)  # Birchwood was asked too
        factories.participant(session, COORD, role=Role.COORDINATOR)
        round_id = round_.id
    for chat in (LEAD_A, LEAD_B, COORD):
        harness.standin.register_chat(chat)
    return round_id


SIX_FUNDING = [{"partnership_barriers": ["funding"], "own_barriers": ["capacity"]}] * 6


async def close(harness: BotHarness, round_id: int) -> BotMessage:
    """/close N in chat, and Yes to its question: the bot's answer."""
    ask = await harness.say(COORD, f"/close {round_id}")
    return await harness.press(COORD, ask, "Yes, close it now")


def digest_rows(harness: BotHarness) -> list[Delivery]:
    with session_scope(harness.ctx.sessions) as session:
        rows = session.scalars(
            select(Delivery).where(Delivery.kind == "digest").order_by(Delivery.id)
        ).all()
        session.expunge_all()
        return list(rows)


async def until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def all_done(harness: BotHarness) -> Callable[[], bool]:
    def check() -> bool:
        rows = digest_rows(harness)
        return bool(rows) and all(
            r.status not in (DeliveryStatus.PENDING, DeliveryStatus.SENDING) for r in rows
        )

    return check


async def test_closing_a_round_sends_the_charts_as_photos(harness: BotHarness) -> None:
    round_id = build(harness, SIX_FUNDING)
    reply = await close(harness, round_id)
    assert "is closed" in reply.text
    await until(all_done(harness))
    assert {r.status for r in digest_rows(harness)} == {DeliveryStatus.SENT}

    with session_scope(harness.ctx.sessions) as session:
        scope = round_scope(session, round_id)
        digest = compile_digest(session, harness.ctx.settings, scope, now=harness.ctx.clock.now())
        expected = chart_pngs(digest)
    assert set(expected) == {"barriers", "response"}
    for chat in (LEAD_A, LEAD_B, COORD):
        messages = harness.standin.messages(chat)
        kinds = [m.kind for m in messages]
        # The digest text first, then the two charts, then the file to print.
        assert kinds[-3:] == ["photo", "photo", "document"], kinds
        assert set(kinds[:-3]) == {"text"}
        photos = [m for m in messages if m.kind == "photo"]
        assert [p.file.content for p in photos if p.file] == [
            expected["barriers"],
            expected["response"],
        ]
        assert all(p.file and p.file.content.startswith(PNG) for p in photos)
        assert "Barriers named: external against internal" in photos[0].text
        assert "Who we heard from" in photos[1].text
        assert f"Round {round_id}" in photos[0].text
        assert any(e["type"] == "bold" for e in photos[0].entities), "the caption is HTML"
        assert all(len(p.text) <= 1024 for p in photos)

    # Closing fires the fan-out once; calling it again (a retried close) adds nothing.
    with session_scope(harness.ctx.sessions) as session:
        assert enqueue_round_digest(session, harness.ctx, round_id) == 0
    charts = [r for r in digest_rows(harness) if r.dedupe_key and ":chart:" in r.dedupe_key]
    assert len(charts) == 6  # two charts for each of three people


async def test_a_chart_under_k_is_not_sent(harness: BotHarness) -> None:
    # Six respondents, each naming a different barrier: every barrier is under k = 5, so there
    # is no barrier chart; the response rate (6 of 6 in North) may be shown.
    options = ["no_feedback", "not_told", "contracts", "funding", "red_tape", "none"]
    round_id = build(harness, [{"partnership_barriers": [o]} for o in options])
    await close(harness, round_id)
    await until(all_done(harness))
    photos = [m for m in harness.standin.messages(LEAD_A) if m.kind == "photo"]
    assert len(photos) == 1 and "Who we heard from" in photos[0].text
    keys = {r.dedupe_key for r in digest_rows(harness)}
    assert not any(k and k.endswith(":chart:barriers") for k in keys)


async def test_no_chart_when_fewer_than_k_answered(harness: BotHarness) -> None:
    round_id = build(harness, SIX_FUNDING[:3])
    await close(harness, round_id)
    await until(all_done(harness))
    rows = digest_rows(harness)
    assert not any(":chart:" in (r.dedupe_key or "") for r in rows)
    for chat in (LEAD_A, COORD):
        assert not harness.standin.photos(chat)
        assert harness.standin.documents(chat), "the text and the file still go"


async def test_photo_errors_map_like_any_other_delivery(harness: BotHarness) -> None:
    round_id = build(harness, SIX_FUNDING)
    # The first photo sent is refused (400): failed with Telegram's reason, not retried, and
    # the rest still goes. Lead B has blocked the bot (403): unreachable, nothing retried.
    harness.standin.fail_next(1, status=400, method="sendPhoto")
    harness.standin.block_chat(LEAD_B)
    await close(harness, round_id)
    await until(all_done(harness))
    rows = digest_rows(harness)
    failed = [r for r in rows if r.status == DeliveryStatus.FAILED]
    assert len(failed) == 1 and ":chart:" in (failed[0].dedupe_key or "")
    # Nothing sends a finished delivery again, so it keeps nothing of what it said.
    assert all(r.payload == PURGED for r in rows)
    assert failed[0].attempts == 1 and (failed[0].error or "").startswith("400")
    lead_b = [r for r in rows if r.chat_id == LEAD_B]
    assert lead_b and {r.status for r in lead_b} <= {
        DeliveryStatus.UNREACHABLE,
        DeliveryStatus.CANCELLED,
    }
    assert sum(r.status == DeliveryStatus.UNREACHABLE for r in lead_b) == 1
    others = [r for r in rows if r.chat_id != LEAD_B and r is not failed[0]]
    assert all(r.status == DeliveryStatus.SENT for r in others)
    sent_photos = len(harness.standin.photos(LEAD_A)) + len(harness.standin.photos(COORD))
    assert sent_photos == 3  # four queued to the two reachable chats, one refused
