"""The first end-to-end path: /start, /help and the command menus, through python-telegram-bot
and the stand-in over HTTP, plus the guards every update passes."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.kernel.clock import FakeClock
from bot.kernel.context import AppContext
from bot.kernel.people import find_participant, grant_role
from bot.telegram import jobs as runtime
from storage.db import session_scope
from storage.models import ProcessedUpdate, Role
from tests.support.harness import BotHarness

MEMBER = 1001
COORDINATOR = 1002
ADMIN = 900  # listed in the test settings' partnership.admins


async def test_start_without_invite_explains_how_to_join(harness: BotHarness) -> None:
    reply = await harness.say(MEMBER, "/start")
    assert "Riverside Partnership" in reply.text
    assert "invite link" in reply.text


async def test_help_fits_the_role(harness: BotHarness) -> None:
    with session_scope(harness.ctx.sessions) as session:
        grant_role(session, COORDINATOR, Role.COORDINATOR)
    member_help = await harness.say(MEMBER, "/help")
    coordinator_help = await harness.say(COORDINATOR, "/help")
    admin_help = await harness.say(ADMIN, "/help")
    assert "coordinator" not in member_help.text.lower()
    assert "You are a coordinator" in coordinator_help.text
    assert "You are a coordinator" in admin_help.text


async def test_command_menus_are_scoped_by_role(harness: BotHarness) -> None:
    with session_scope(harness.ctx.sessions) as session:
        participant = grant_role(session, COORDINATOR, Role.COORDINATOR)
        participant.chat_id = COORDINATOR
    default = [c["command"] for c in harness.standin.commands({"type": "all_private_chats"})]
    assert "start" in default and "help" in default
    await harness.say(COORDINATOR, "/start")
    await harness.eventually(
        lambda: harness.standin.commands({"type": "chat", "chat_id": COORDINATOR})
    )
    scoped = harness.standin.commands({"type": "chat", "chat_id": COORDINATOR})
    assert scoped, "a coordinator gets a menu of their own"
    assert set(default) <= {c["command"] for c in scoped}
    assert "schedule" in {c["command"] for c in scoped}
    assert "schedule" not in default, "members never see coordinator commands"


async def test_unknown_command_gets_a_kind_answer(harness: BotHarness) -> None:
    reply = await harness.say(MEMBER, "/frobnicate now")
    assert "/frobnicate" in reply.text and "/help" in reply.text


async def test_group_chats_are_refused_politely(harness: BotHarness) -> None:
    reply = await harness.say(MEMBER, "/start", chat_id=-100123, chat_type="supergroup")
    assert "private" in reply.text
    harness.standin.send_text(MEMBER, "hello everyone", chat_id=-100123, chat_type="supergroup")
    await harness.settle()
    assert len(harness.standin.messages(-100123)) == 1, "plain group chatter gets no reply"


async def test_duplicated_update_is_handled_once(harness: BotHarness) -> None:
    harness.standin.duplicate_updates = True
    await harness.say(MEMBER, "/help")
    await harness.settle()
    assert len(harness.standin.messages(MEMBER)) == 1
    with session_scope(harness.ctx.sessions) as session:
        assert session.query(ProcessedUpdate).count() == 1


async def test_old_duplicate_markers_are_forgotten(ctx: AppContext, clock: FakeClock) -> None:
    # Telegram redelivers within 24 hours; markers are kept two days, then deleted by the tick.
    now = clock.now()
    with session_scope(ctx.sessions) as session:
        session.add_all(
            [
                ProcessedUpdate(update_id=1, processed_at=now - timedelta(days=3)),
                ProcessedUpdate(update_id=2, processed_at=now - timedelta(days=1)),
            ]
        )
    await runtime.prune_updates(ctx)

    def kept() -> list[int]:
        with session_scope(ctx.sessions) as session:
            return sorted(session.scalars(select(ProcessedUpdate.update_id)))

    assert kept() == [2]
    clock.advance(timedelta(minutes=30))
    with session_scope(ctx.sessions) as session:
        session.add(ProcessedUpdate(update_id=3, processed_at=now - timedelta(days=5)))
    await runtime.prune_updates(ctx)
    assert kept() == [2, 3], "the last pruning was under an hour ago"
    clock.advance(timedelta(minutes=31))
    await runtime.prune_updates(ctx)
    assert kept() == [2]


async def test_the_bot_survives_a_restart(harness: BotHarness) -> None:
    await harness.say(MEMBER, "/help")
    await harness.restart()
    reply = await harness.say(MEMBER, "/help")
    assert "/start" in reply.text


async def test_a_lead_named_by_an_admin_joins_without_an_invite(harness: BotHarness) -> None:
    lead = 1003
    with session_scope(harness.ctx.sessions) as session:
        grant_role(session, lead, Role.LEAD)
    notice = await harness.say(lead, "/start")
    assert notice.button("Agree")
    await harness.press(lead, notice, "Agree")

    def consented() -> bool:
        with session_scope(harness.ctx.sessions) as session:
            person = find_participant(session, lead)
            return person is not None and person.consent_at is not None

    await harness.eventually(consented)
    with session_scope(harness.ctx.sessions) as session:
        person = find_participant(session, lead)
        assert person is not None and person.consent_at is not None
        assert person.role == Role.LEAD


async def test_an_admin_who_presses_start_is_kept_as_a_coordinator(harness: BotHarness) -> None:
    reply = await harness.say(ADMIN, "/start")
    assert "coordinator" in reply.text.lower()
    with session_scope(harness.ctx.sessions) as session:
        admin = find_participant(session, ADMIN)
        assert admin is not None and admin.role == Role.COORDINATOR
        assert admin.chat_id == ADMIN, "digests and progress need the admin's chat"
        assert admin.consent_at is None, "staff are not enrolled as participants"
