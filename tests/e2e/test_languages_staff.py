"""Coordinators and leads in their own language, end to end through the stand-in: a coordinator
who chose Welsh schedules a round, watches it and is refused in Welsh; a lead who chose Welsh is
refused a coordinator's command in Welsh; an English-speaking coordinator of the same deployment
is still answered in English."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.rounds.planning import schedule_once
from bot.telegram.jobs import tick_now
from storage.db import session_scope
from storage.models import Consultation, Role
from tests.support import factories
from tests.support.harness import BotHarness

pytestmark = pytest.mark.languages("en", "cy")

CY_COORDINATOR, EN_COORDINATOR, CY_LEAD = 4101, 4102, 4103
HEALTH_CHECK = "How well are we working with you?"  # the set's title: a button as written


def staff_and_people(harness: BotHarness) -> list[int]:
    """The health check, three members of a northern organisation, and the staff: each with
    the language they chose."""
    with session_scope(harness.ctx.sessions) as s:
        factories.consultation(s)
        north = factories.organisation(s, "North Food Bank", area="north", sector="food")
        members = []
        for uid in (5101, 5102, 5103):
            factories.participant(s, uid, organisation=north)
            harness.standin.register_chat(uid)
            members.append(uid)
        # The coordinators answer for no organisation: a round for organisations leaves them be.
        for uid, language in ((CY_COORDINATOR, "cy"), (EN_COORDINATOR, "en")):
            factories.participant(s, uid, role=Role.COORDINATOR, answers_as=None, language=language)
        factories.participant(s, CY_LEAD, organisation=north, role=Role.LEAD, language="cy")
    for uid in (CY_COORDINATOR, EN_COORDINATOR, CY_LEAD):
        harness.standin.register_chat(uid)
    return members


def buttons(message) -> list[str]:  # type: ignore[no-untyped-def]
    return [b["text"] for b in message.buttons]


async def wait_for(harness: BotHarness, user_id: int, words: str) -> None:
    """Until a message to `user_id` says `words` (one the outbox sends, not a reply)."""
    messages = harness.standin.messages
    try:
        await harness.eventually(
            lambda: any(words in m.text for m in messages(user_id)), timeout=10
        )
    except AssertionError:
        raise AssertionError(f"{words!r} not in {[m.text for m in messages(user_id)]}") from None


async def test_a_welsh_coordinator_schedules_and_watches_a_round_in_welsh(
    harness: BotHarness,
) -> None:
    members = staff_and_people(harness)
    me = CY_COORDINATOR
    msg = await harness.say(me, "/schedule")
    assert "Trefnu rownd" in msg.text and "Pa ymgynghoriad?" in msg.text
    assert "Canslo" in buttons(msg)
    msg = await harness.press(me, msg, HEALTH_CHECK)
    assert "Pwy sy'n cael eu holi?" in msg.text
    assert "Mae'r set hon wedi'i hysgrifennu ar gyfer sefydliadau." in msg.text
    assert {"Pawb", "Sefydliadau", "Defnyddwyr gwasanaeth", "Yn ôl ardal"} <= set(buttons(msg))
    msg = await harness.press(me, msg, "Yn ôl ardal")
    assert "Pa ardal?" in msg.text
    msg = await harness.press(me, msg, "Gogledd")
    assert "Pryd?" in msg.text and buttons(msg)[:2] == ["Nawr", "Dyddiad ac amser"]
    msg = await harness.press(me, msg, "Nawr")
    assert "Am ba hyd mae'n aros ar agor?" in msg.text
    msg = await harness.press(me, msg, "10 diwrnod")
    assert "Atgoffa'r rhai sydd heb orffen?" in msg.text
    msg = await harness.press(me, msg, "2 ddiwrnod cyn hynny")
    assert "Yn barod i'w threfnu" in msg.text
    # The lead of the north organisation counts too: 3 + 1.
    assert "Cynulleidfa: sefydliadau gyda ardal Gogledd" in msg.text and "o bobl nawr" in msg.text
    assert "Pryd: nawr" in msg.text
    assert "Ar agor am 10 diwrnod; nodyn atgoffa 2 ddiwrnod cyn cau." in msg.text
    assert buttons(msg) == ["Cadarnhau", "Canslo"]
    msg = await harness.press(me, msg, "Cadarnhau")
    assert "Mae rownd #1 yn agor nawr; bydda i'n dangos y cynnydd yma." in msg.text
    for uid in members:  # the invitations themselves are in each member's language (English)
        invite = await harness.standin.wait_for_message(uid, after=0, timeout=10)
        assert HEALTH_CHECK in invite.text
    # The Welsh lead is invited in Welsh: each person in their own language, not the caller's.
    await wait_for(harness, CY_LEAD, "Pa mor dda ydyn ni'n gweithio gyda chi?")
    await wait_for(harness, me, "Rownd 1: popeth wedi'i anfon. Wedi anfon 4 o 4")

    rounds = await harness.say(me, "/rounds")
    assert "Rowndiau" in rounds.text and "#1" in rounds.text and "ar agor" in rounds.text
    assert "/round N am y manylion." in rounds.text
    detail = await harness.say(me, "/round 1")
    assert "Statws: ar agor. Yn agor" in detail.text
    assert "Cynulleidfa: sefydliadau gyda ardal Gogledd" in detail.text
    assert "Wedi gwahodd 4 · wedi cyrraedd 4 · heb eu cyrraedd 0" in detail.text
    assert "Mae llai na 5 wedi ateb hyd yma" in detail.text

    reminded = await harness.say(me, "/remind 1")
    assert "Yn atgoffa 4 o bobl sydd heb orffen rownd #1." in reminded.text
    for uid in members:
        await wait_for(harness, uid, "A gentle reminder: “How well are we working with you?”")

    # Refused, in Welsh: a round that is not there, a command without its number.
    missing = await harness.say(me, "/round 99")
    assert missing.text == "Does dim rownd 99."
    usage = await harness.say(me, "/remind")
    assert "Pa rownd? Anfonwch hi fel hyn: /remind 3 (gweler /rounds)." in usage.text
    nothing = await harness.say(me, "/action")
    assert "Does dim rownd wedi cau eto, felly does dim byd i weithredu arno." in nothing.text

    # /close asks first; keeping it open is said in Welsh, the toast too.
    ask = await harness.say(me, "/close 1")
    assert "Cau rownd #1 (How well are we working with you?, ar agor) nawr?" in ask.text
    assert buttons(ask) == ["Ie, caewch hi nawr", "Na, cadwch hi ar agor"]
    kept = await harness.press(me, ask, "Na, cadwch hi ar agor")
    assert "Mae rownd #1 yn aros fel y mae." in kept.text

    # An invite link, and a problem with its arguments.
    refused = await harness.say(me, "/invite Y Ganolfan days=0")
    assert "rhaid i days fod yn 1 o leiaf." in refused.text and "Defnydd:" in refused.text
    link = await harness.say(me, "/invite Y Ganolfan days=14")
    assert "Gwahoddiad ar gyfer" in link.text and "Anfonwch /invite i wneud un arall." in link.text
    assert buttons(link) == ["A dolen i'w arweinydd"]

    # Their command menu and /help list the coordinator's commands in Welsh.
    help_ = await harness.say(me, "/help")
    assert "/schedule – Cynllunio rownd ymgynghori" in help_.text
    assert "/rounds – Rowndiau a chyfraddau ymateb" in help_.text


async def test_a_welsh_lead_is_refused_in_welsh_and_an_english_coordinator_gets_english(
    harness: BotHarness,
) -> None:
    staff_and_people(harness)
    refused = await harness.say(CY_LEAD, "/schedule")
    assert "Mae'n ddrwg gen i, mae hynny ar gyfer cydlynwyr yn unig." in refused.text
    refused = await harness.say(CY_LEAD, "/round 1")
    assert "ar gyfer cydlynwyr yn unig" in refused.text

    # The English-speaking coordinator of the same deployment: English throughout.
    msg = await harness.say(EN_COORDINATOR, "/schedule")
    assert "Schedule a round" in msg.text and "Which consultation?" in msg.text
    msg = await harness.press(EN_COORDINATOR, msg, HEALTH_CHECK)
    assert "Who is asked?" in msg.text and "By area" in buttons(msg)
    rounds = await harness.say(EN_COORDINATOR, "/rounds")
    assert rounds.text == "No rounds yet. Send /schedule to plan one."
    missing = await harness.say(EN_COORDINATOR, "/round 99")
    assert missing.text == "There is no round 99."
    # The Welsh coordinator, asked the same in between, is answered in Welsh.
    missing = await harness.say(CY_COORDINATOR, "/round 99")
    assert missing.text == "Does dim rownd 99."
    usage = await harness.say(EN_COORDINATOR, "/close")
    assert "Which round? Send it like /close 3 (see /rounds)." in usage.text


async def test_a_coordinators_notice_comes_in_their_language(harness: BotHarness) -> None:
    """What the outbox tells a coordinator outside any update of theirs (here, organisations
    the fatigue cap left out of a round they scheduled) is said in the language they chose."""
    staff_and_people(harness)
    ctx = harness.ctx

    async def open_now(chat: int | None) -> None:
        with session_scope(ctx.sessions) as s:
            schedule_once(
                s,
                s.scalars(select(Consultation)).one(),
                audience={"who": "organisations", "where": {}},
                opens_at=ctx.clock.now(),
                open_for=timedelta(days=10),
                remind_before=None,
                progress_chat_id=chat,
            )
        await tick_now(ctx)

    await open_now(None)
    await open_now(None)  # North Food Bank is asked twice: the cap (2 in 30 days) is reached
    await open_now(CY_COORDINATOR)
    await wait_for(harness, CY_COORDINATOR, "Rownd 3: 1 sefydliad wedi'i adael allan: North Food")
    await wait_for(harness, CY_COORDINATOR, "yn ystod y 30 diwrnod diwethaf.")
    # The English-speaking coordinator's notice of the same is in English.
    await open_now(EN_COORDINATOR)
    await wait_for(harness, EN_COORDINATOR, "Round 4: 1 organisation left out: North Food Bank.")
