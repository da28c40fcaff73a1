"""A coordinator's acts that cannot be undone ask first (issue 13 #20): /close N as /cancel N
does, and lead invites made from chat. Each is tried as the wrong role, twice, stale and
forged, through real PTB and the stand-in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from standin.models import BotMessage
from storage.db import session_scope
from storage.models import AuditEvent, Delivery, Invite, Participant, Role, Round, RoundStatus
from tests.support import factories
from tests.support.harness import BotHarness

COORDINATOR = 900  # an admin in the test settings
MEMBER = 1101
LEAD = 1102


def open_round_with_lead(harness: BotHarness) -> int:
    with session_scope(harness.ctx.sessions) as session:
        org = factories.organisation(session, "Alder Food Bank")
        member = factories.participant(session, MEMBER, organisation=org)
        factories.participant(session, LEAD, organisation=org, role=Role.LEAD)
        round_ = factories.open_round(session, factories.consultation(session, "pulse"))
        factories.invitation(session, round_, member)
        return round_.id


def status(harness: BotHarness, round_id: int) -> RoundStatus:
    with session_scope(harness.ctx.sessions) as session:
        round_ = session.get(Round, round_id)
        assert round_ is not None
        return round_.status


def count(harness: BotHarness, what: object) -> int:
    with session_scope(harness.ctx.sessions) as session:
        return session.scalar(select(func.count()).select_from(Delivery).where(what)) or 0  # type: ignore[arg-type]


def closes(harness: BotHarness) -> int:
    with session_scope(harness.ctx.sessions) as session:
        return len(
            session.scalars(select(AuditEvent).where(AuditEvent.action == "round.close")).all()
        )


async def toast_after(harness: BotHarness, press: Callable[[], dict[str, Any]]) -> str:
    """The toast or alert that `press` (a stand-in press, returning its update) was answered
    with."""
    query = press()["callback_query"]["id"]

    def answer() -> str | None:
        found = [a for a in harness.standin.callback_answers if a.callback_query_id == query]
        return (found[0].text or "") if found else None

    await harness.eventually(lambda: answer() is not None)
    return answer() or ""


async def test_close_asks_first_and_closes_once(harness: BotHarness) -> None:
    round_id = open_round_with_lead(harness)
    ask = await harness.say(COORDINATOR, f"/close {round_id}")
    assert f"Close round #{round_id}" in ask.text and "cannot be undone" in ask.text
    assert [b["text"] for b in ask.buttons] == ["Yes, close it now", "No, keep it open"]
    await harness.settle()
    assert status(harness, round_id) == RoundStatus.OPEN, "nothing happens before Yes"
    assert count(harness, Delivery.kind == "digest") == 0

    kept = await harness.press(COORDINATOR, ask, "No, keep it open")
    assert "stays as it is" in kept.text and status(harness, round_id) == RoundStatus.OPEN

    done = await harness.press(COORDINATOR, ask, "Yes, close it now")
    assert f"Round #{round_id} is closed" in done.text
    assert status(harness, round_id) == RoundStatus.CLOSED
    assert count(harness, Delivery.kind == "digest") > 0, "the digest is queued at once"
    digests = count(harness, Delivery.kind == "digest")

    # Twice: the second Yes finds it closed, says so, and sends nothing more.
    again = await toast_after(
        harness, lambda: harness.standin.press(COORDINATOR, ask, "Yes, close it now")
    )
    assert "already closed" in again
    assert closes(harness) == 1 and count(harness, Delivery.kind == "digest") == digests
    assert "already closed" in (await harness.say(COORDINATOR, f"/close {round_id}")).text


async def test_a_stale_or_forged_close_changes_nothing(harness: BotHarness) -> None:
    round_id = open_round_with_lead(harness)
    ask = await harness.say(COORDINATOR, f"/close {round_id}")
    # Stale: the round is cancelled after the question was asked.
    cancel = await harness.say(COORDINATOR, f"/cancel {round_id}")
    await harness.press(COORDINATOR, cancel, "Yes, cancel it")
    stale = await toast_after(
        harness, lambda: harness.standin.press(COORDINATOR, ask, "Yes, close it now")
    )
    assert "already cancelled" in stale and status(harness, round_id) == RoundStatus.CANCELLED

    # Forged: no such round, no such number, no such choice.
    for data, said in (
        ("co:c:99999", "no round 99999"),
        ("co:c:1x", "did not recognise"),
        (f"co:c:{round_id}:1", "did not recognise"),
    ):
        toast = await toast_after(
            harness,
            lambda data=data: harness.standin.press_button(COORDINATOR, ask.message_id, data),
        )
        assert said in toast.lower() or said in toast, (data, toast)
    assert closes(harness) == 0 and count(harness, Delivery.kind == "digest") == 0


async def test_close_and_its_button_are_refused_to_members_and_leads(harness: BotHarness) -> None:
    round_id = open_round_with_lead(harness)
    ask: BotMessage = await harness.say(COORDINATOR, f"/close {round_id}")
    for user in (MEMBER, LEAD):
        for _ in range(2):
            refused = await harness.say(user, f"/close {round_id}")
            assert "only for coordinators" in refused.text
            welcome = await harness.say(user, "/help")
            # The coordinator's real button data, pressed by someone else's hand.
            toast = await toast_after(
                harness,
                lambda user=user, on=welcome.message_id: harness.standin.press_button(
                    user, on, f"co:c:{round_id}"
                ),
            )
            assert "only for coordinators" in toast
    assert status(harness, round_id) == RoundStatus.OPEN and closes(harness) == 0
    assert ask.buttons, "the coordinator's question still stands"


# --- lead invites from chat -----------------------------------------------------------------------


def lead_invites(harness: BotHarness) -> list[Invite]:
    with session_scope(harness.ctx.sessions) as session:
        found = session.scalars(
            select(Invite).where(Invite.role == Role.LEAD).order_by(Invite.id)
        ).all()
        session.expunge_all()
        return list(found)


def link_in(message: BotMessage) -> str:
    return next(w for w in message.text.split() if w.startswith("https://t.me/"))


async def test_invite_in_chat_makes_a_lead_link_for_the_organisation(harness: BotHarness) -> None:
    made = await harness.say(COORDINATOR, "/invite Alder Food Bank")
    assert "Invite for Alder Food Bank" in made.text
    assert [b["text"] for b in made.buttons] == ["And a link for its lead"]
    lead = await harness.press(COORDINATOR, made, "And a link for its lead")
    assert "Lead link for Alder Food Bank" in lead.text and "One person only" in lead.text
    [invite] = lead_invites(harness)
    assert invite.max_uses == 1 and invite.expires_at is not None
    assert link_in(lead).endswith(f"?start={invite.code}")

    # Twice: the same link again, no second one.
    again = await harness.press(COORDINATOR, made, "And a link for its lead")
    assert "made before is still unused" in again.text and link_in(again) == link_in(lead)
    assert len(lead_invites(harness)) == 1

    # Used: whoever joins by it is the organisation's lead.
    notice = await harness.say(LEAD, f"/start {invite.code}")
    harness.standin.press(LEAD, notice, "Agree")
    await harness.standin.wait_for_message(LEAD, predicate=lambda m: "About you" in m.text)
    with session_scope(harness.ctx.sessions) as session:
        person = session.scalar(select(Participant).where(Participant.telegram_user_id == LEAD))
        assert person is not None and person.role == Role.LEAD
        assert person.organisation is not None and person.organisation.name == "Alder Food Bank"

    # Stale: the button of an older invite once that link is used makes a fresh one.
    fresh = await harness.press(COORDINATOR, made, "And a link for its lead")
    assert "Lead link for Alder Food Bank" in fresh.text and link_in(fresh) != link_in(lead)
    assert len(lead_invites(harness)) == 2
    # A group's invite has no lead.
    group = await harness.say(COORDINATOR, "/invite group Northside carers")
    assert "(service users)" in group.text and not group.buttons


async def test_a_forged_or_foreign_lead_button_makes_nothing(harness: BotHarness) -> None:
    made = await harness.say(COORDINATOR, "/invite Alder Food Bank")
    [data] = [b["callback_data"] for b in made.buttons]
    for forged in ("iv:lead:99999", "iv:lead:1x", "iv:lead:²", "iv:lead:", "iv:x:1"):
        toast = await toast_after(
            harness,
            lambda forged=forged: harness.standin.press_button(
                COORDINATOR, made.message_id, forged
            ),
        )
        assert "did not recognise" in toast, forged
    with session_scope(harness.ctx.sessions) as session:
        factories.participant(session, MEMBER)
        factories.participant(session, LEAD, role=Role.LEAD)
    for user in (MEMBER, LEAD):
        welcome = await harness.say(user, "/help")
        for _ in range(2):
            toast = await toast_after(
                harness,
                lambda user=user, on=welcome.message_id: harness.standin.press_button(
                    user, on, data
                ),
            )
            assert "only for coordinators" in toast
        refused = await harness.say(user, "/invite Alder Food Bank")
        assert "only for coordinators" in refused.text
    assert lead_invites(harness) == []
