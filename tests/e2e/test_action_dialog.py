"""/action as a guided dialog, end to end through real PTB and the stand-in: buttons for the
round, the finding and the date, typed lines for the rest, the state in the database, and
every press refused when it comes from the wrong role, twice, stale or forged."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from bot.feedback.action_dialog import add_months
from standin.models import BotMessage
from storage.db import session_scope
from storage.models import Action, DialogState, Role
from tests.support import factories
from tests.support.digest_fixtures import closed_round, respondent
from tests.support.harness import BotHarness

COORD, LEAD, MEMBER = 320, 321, 322


def build(harness: BotHarness) -> int:
    """A closed round: six people named funding and capacity, five red tape (k = 5)."""
    with session_scope(harness.ctx.sessions) as session:
        org = factories.organisation(session, "Alder Food Bank", area="North")
        consultation = factories.consultation(session)
        closed_round(session, consultation, days_ago=40)  # an older round, offered second
        round_ = closed_round(session, consultation)
        for i in range(6):
            respondent(
                session,
                round_,
                8000 + i,
                {"partnership_barriers": ["funding"], "own_barriers": ["capacity"]},
                organisation=org,
            )
        for i in range(5):
            respondent(session, round_, 8100 + i, {"partnership_barriers": ["red_tape"]})
        factories.participant(session, COORD, role=Role.COORDINATOR)
        factories.participant(session, LEAD, role=Role.LEAD, organisation=org)
        factories.participant(session, MEMBER, organisation=org)
        return round_.id


def actions(harness: BotHarness) -> list[Action]:
    with session_scope(harness.ctx.sessions) as session:
        rows = list(session.scalars(select(Action).order_by(Action.id)))
        session.expunge_all()
        return rows


def dialogs(harness: BotHarness) -> int:
    with session_scope(harness.ctx.sessions) as session:
        return int(session.scalar(select(func.count()).select_from(DialogState)) or 0)


def alerts(harness: BotHarness, since: int) -> list[str]:
    return [a.text or "" for a in harness.standin.callback_answers[since:] if a.show_alert]


def data_of(message: BotMessage, label: str) -> str:
    return str(message.button(label)["callback_data"])


async def test_guided_action_with_a_barrier_from_the_digest(harness: BotHarness) -> None:
    round_id = build(harness)
    first = await harness.say(COORD, "/action")
    assert "Which round" in first.text
    assert [b["text"].split(" ")[0] for b in first.buttons[:2]] == [f"#{round_id}", "#1"]
    msg = await harness.press(COORD, first, first.buttons[0]["text"])
    assert "What did you hear?" in msg.text
    # The round's most named barriers, from its digest: funding and capacity (6), red tape (5).
    labels = [b["text"] for b in msg.buttons]
    assert labels[:3] == ["Access to funding streams", "Capacity", "Disproportionate bureaucracy"]
    assert "Other finding" in labels
    msg = await harness.press(COORD, msg, "Access to funding streams")
    assert "What will be done?" in msg.text
    # The dialog lives in the database: a restart in the middle loses nothing.
    await harness.restart()
    msg = await harness.say(COORD, "Confirm grants by February")
    assert "Who will do it?" in msg.text
    msg = await harness.say(COORD, "Council grants team")
    assert "By when?" in msg.text
    msg = await harness.press(COORD, msg, "In 1 month")
    assert "Ready to save" in msg.text
    assert "Access to funding streams" in msg.text and "Council grants team" in msg.text
    today = harness.ctx.clock.now().astimezone(harness.ctx.settings.zone).date()
    due = add_months(today, 1)
    saved = await harness.press(COORD, msg, "Save")
    assert f"recorded for round {round_id}" in saved.text
    [action] = actions(harness)
    assert (action.round_id, action.barrier_code, action.finding) == (
        round_id,
        "ext.funding",
        "Access to funding streams",
    )
    assert (action.action, action.owner, action.due_on) == (
        "Confirm grants by February",
        "Council grants team",
        due,
    )
    assert action.created_by == COORD and dialogs(harness) == 0
    # Typed text after the dialog is not taken for it.
    after = await harness.say(COORD, "Council grants team")
    assert "recorded" not in after.text


async def test_action_for_a_round_with_a_typed_finding_and_date(harness: BotHarness) -> None:
    round_id = build(harness)
    msg = await harness.say(COORD, f"/action {round_id}")
    assert f"round {round_id}" in msg.text and "What did you hear?" in msg.text
    msg = await harness.press(COORD, msg, "Other finding")
    msg = await harness.say(COORD, "Meetings clash with <shifts> & school runs")
    assert "What will be done?" in msg.text
    too_long = await harness.say(COORD, "x" * 501)
    assert "limit is 500" in too_long.text
    msg = await harness.say(COORD, "Move the forum to 6pm")
    msg = await harness.say(COORD, "Council VCS team")
    msg = await harness.press(COORD, msg, "Type a date")
    for bad, says in (
        ("soon-ish", "real date"),
        ("2027-02-30", "real date"),
        ("2020-01-01", "passed"),
    ):
        assert says in (await harness.say(COORD, bad)).text
    msg = await harness.say(COORD, "2027-03-01")
    assert "Ready to save" in msg.text
    assert "<shifts> & school runs" in msg.text  # escaped, or Telegram would refuse the tag
    await harness.press(COORD, msg, "Save")
    [action] = actions(harness)
    assert action.barrier_code is None
    assert action.finding == "Meetings clash with <shifts> & school runs"
    assert action.due_on == date(2027, 3, 1)


async def test_the_one_line_form_still_works(harness: BotHarness) -> None:
    round_id = build(harness)
    reply = await harness.say(
        COORD, f"/action {round_id} ext.red_tape | Too many forms | One form | Grants team"
    )
    assert "recorded" in reply.text
    bad = await harness.say(COORD, "/action nonsense")
    assert "/action ROUND code" in bad.text
    assert [a.barrier_code for a in actions(harness)] == ["ext.red_tape"]


async def test_double_press_stale_and_cancelled_presses_change_nothing(
    harness: BotHarness,
) -> None:
    round_id = build(harness)
    first = await harness.say(COORD, f"/action {round_id}")
    finding_data = data_of(first, "Capacity")
    msg = await harness.press(COORD, first, "Capacity")
    since = len(harness.standin.callback_answers)
    # Stale: a button of an earlier step, pressed again.
    harness.standin.press_button(COORD, msg.message_id, finding_data, chat_id=COORD)
    await harness.settle(0.4)
    assert any("earlier step" in t for t in alerts(harness, since))
    await harness.say(COORD, "More volunteer hours")
    msg = await harness.say(COORD, "Volunteer centre")
    due_data = data_of(msg, "In 2 weeks")
    msg = await harness.press(COORD, msg, "In 2 weeks")
    save = data_of(msg, "Save")
    # Double press: Save twice, and the due button again; one action, no second dialog.
    since = len(harness.standin.callback_answers)
    harness.standin.press_button(COORD, msg.message_id, save, chat_id=COORD)
    harness.standin.press_button(COORD, msg.message_id, save, chat_id=COORD)
    harness.standin.press_button(COORD, msg.message_id, due_data, chat_id=COORD)
    await harness.settle(0.8)
    today = harness.ctx.clock.now().astimezone(harness.ctx.settings.zone).date()
    assert [a.due_on for a in actions(harness)] == [today + timedelta(days=14)]
    refused = alerts(harness, since)
    assert len(refused) == 2 and all("has ended" in t or "earlier step" in t for t in refused)
    # A finished dialog's Cancel does not pretend to cancel the saved action.
    since = len(harness.standin.callback_answers)
    cancel_saved = save.replace(":ok:save", ":x:x")
    harness.standin.press_button(COORD, msg.message_id, cancel_saved, chat_id=COORD)
    await harness.settle(0.4)
    assert ["has ended" in t for t in alerts(harness, since)] == [True]
    # Cancelled: nothing saved, and its Save is stale afterwards.
    msg = await harness.say(COORD, f"/action {round_id}")
    msg = await harness.press(COORD, msg, "Other finding")
    cancel = data_of(msg, "Cancel")
    done = await harness.press(COORD, msg, "Cancel")
    assert "No action was recorded" in done.text
    since = len(harness.standin.callback_answers)
    harness.standin.press_button(COORD, msg.message_id, cancel, chat_id=COORD)
    await harness.settle(0.4)
    assert ["has ended" in t for t in alerts(harness, since)] == [True]
    assert len(actions(harness)) == 1 and dialogs(harness) == 0
    # A button from a dialog that a newer /action replaced is stale too.
    old = await harness.say(COORD, "/action")
    await harness.say(COORD, "/action")
    before = len(harness.standin.callback_answers)
    harness.standin.press(COORD, old, old.buttons[0]["text"])
    await harness.settle(0.4)
    assert any("has ended" in t for t in alerts(harness, before))


async def test_forged_presses_are_refused(harness: BotHarness) -> None:
    round_id = build(harness)
    msg = await harness.say(COORD, "/action")
    dialog = data_of(msg, "Cancel").split(":")[1]
    since = len(harness.standin.callback_answers)
    for forged in (
        f"ac:{dialog}:rnd:999999",  # a round never offered
        f"ac:{dialog}:rnd:{round_id}x",
        f"ac:{dialog}:code:0",  # a later step's button
        f"ac:{dialog}:ok:save",
        "ac:not-a-dialog:rnd:1",
        "ac:",
    ):
        harness.standin.press_button(COORD, msg.message_id, forged, chat_id=COORD)
    await harness.settle(0.8)
    got = alerts(harness, since)
    assert len(got) == 6, got
    assert sum("not one I offered" in t for t in got) == 2
    assert sum("earlier step" in t for t in got) == 2
    assert sum("did not recognise" in t for t in got) == 2
    msg = await harness.press(COORD, msg, msg.buttons[0]["text"])
    since = len(harness.standin.callback_answers)
    for forged in (f"ac:{dialog}:code:7", f"ac:{dialog}:code:-1", f"ac:{dialog}:code:other:x"):
        harness.standin.press_button(COORD, msg.message_id, forged, chat_id=COORD)
    await harness.settle(0.6)
    assert len(alerts(harness, since)) == 3
    msg = await harness.press(COORD, msg, "Other finding")
    await harness.say(COORD, "Heard it")
    await harness.say(COORD, "Do it")
    msg = await harness.say(COORD, "Someone")
    since = len(harness.standin.callback_answers)
    harness.standin.press_button(COORD, msg.message_id, f"ac:{dialog}:due:forever", chat_id=COORD)
    await harness.settle(0.4)
    assert any("not one I offered" in t for t in alerts(harness, since))
    assert actions(harness) == []


async def test_members_and_leads_are_refused(harness: BotHarness) -> None:
    round_id = build(harness)
    coordinator_msg = await harness.say(COORD, "/action")
    real = coordinator_msg.buttons[0]["callback_data"]
    for user in (MEMBER, LEAD):
        for command in (
            "/action",
            f"/action {round_id}",
            "/action",
            f"/action {round_id} - | a | b | c",
            f"/actions {round_id}",
        ):
            answer = await harness.say(user, command)
            assert "only for coordinators" in answer.text, (user, command)
        welcome = await harness.say(user, "/start")
        since = len(harness.standin.callback_answers)
        # A coordinator's real button data, twice, a forged one, and /review's Save, pressed in
        # their own chat.
        for data in (real, real, "ac:0123abcd:ok:save", "rv:s:1"):
            harness.standin.press_button(user, welcome.message_id, data, chat_id=user)
        await harness.settle(0.6)
        refused = [a for a in harness.standin.callback_answers[since:] if a.user_id == user]
        assert len(refused) == 4 and all("only for coordinators" in (a.text or "") for a in refused)
    assert actions(harness) == []
    with session_scope(harness.ctx.sessions) as session:
        states = list(session.scalars(select(DialogState)))
        assert [(s.chat_id, s.step) for s in states] == [(COORD, "rnd")]


async def test_a_typed_line_is_stored_without_control_characters(harness: BotHarness) -> None:
    """A NUL byte, which PostgreSQL refuses in text, or a bell in a typed line is dropped
    before the dialog sees it, as in a participant's answer (handlers.common.typed)."""
    round_id = build(harness)
    msg = await harness.say(COORD, f"/action {round_id}")
    msg = await harness.press(COORD, msg, "Other finding")
    msg = await harness.say(COORD, "Forms\x00 arrive\x07 late\tagain")
    assert "What will be done?" in msg.text
    msg = await harness.say(COORD, "One form\x00")
    msg = await harness.say(COORD, "Grants team")
    msg = await harness.press(COORD, msg, "No date")
    await harness.press(COORD, msg, "Save")
    [action] = actions(harness)
    assert (action.finding, action.action) == ("Forms arrive late\tagain", "One form")
