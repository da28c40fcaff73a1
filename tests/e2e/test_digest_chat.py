"""Digests, review and feedback through the chat: real PTB over HTTP against the stand-in."""

from __future__ import annotations

from sqlalchemy import select

from bot.digests.fanout import enqueue_round_digest
from bot.feedback.actions import recent_feedback
from storage.db import session_scope
from storage.models import (
    AnswerCode,
    AnswerReview,
    CodeSource,
    Delivery,
    Role,
)
from tests.support import factories
from tests.support.digest_fixtures import closed_round, respondent
from tests.support.harness import BotHarness

LEAD_A, LEAD_B, COORD, MEMBER = 300, 301, 302, 303


def build(harness: BotHarness) -> dict[str, int]:
    with session_scope(harness.ctx.sessions) as session:
        a = factories.organisation(session, "Alder Food Bank", area="North", kind="charity")
        b = factories.organisation(session, "Birchwood Youth", area="South", kind="charity")
        factories.organisation(session, "Cedar Faith Circle", area="East", kind="faith group")
        consultation = factories.consultation(session)
        round_ = closed_round(session, consultation)
        other = closed_round(session, consultation, days_ago=30)  # only B was invited
        for i in range(6):
            respondent(
                session,
                round_,
                4000 + i,
                {
                    "partnership_barriers": ["funding"],
                    "own_barriers": ["capacity"],
                    "biggest_obstacle": f"Funding is short term and late, year {i} & <script>x",
                },
                organisation=a,
                profile={"area": "North"},
            )
        for i in range(5):
            respondent(
                session,
                round_,
                4100 + i,
                {
                    "partnership_barriers": ["red_tape"],
                    "own_barriers": ["none"],
                    "biggest_obstacle": "Hard to say really, it depends on the week",
                },
                organisation=b,
                profile={"area": "South"},
            )
        for i in range(5):
            respondent(
                session, other, 4200 + i, {"partnership_barriers": ["jargon"]}, organisation=b
            )
        factories.participant(session, LEAD_A, role=Role.LEAD, organisation=a)
        factories.participant(session, LEAD_B, role=Role.LEAD, organisation=b)
        factories.participant(session, COORD, role=Role.COORDINATOR)
        factories.participant(session, MEMBER, organisation=a)
        return {"round": round_.id, "other": other.id}


async def test_member_is_refused_a_digest(harness: BotHarness) -> None:
    build(harness)
    reply = await harness.say(MEMBER, "/digest")
    assert "only for" in reply.text


async def test_lead_sees_partnership_and_own_organisation_only(harness: BotHarness) -> None:
    ids = build(harness)
    first = await harness.say(LEAD_A, "/digest")
    assert f"Round {ids['round']}" in first.text
    assert "Key figures" in first.text
    await harness.standin.wait_for_message(LEAD_A, predicate=lambda m: m.kind == "document")
    texts = [m.text for m in harness.standin.messages(LEAD_A)]
    joined = "\n".join(texts)
    assert "Your organisation: Alder Food Bank" in joined
    assert "Birchwood" not in joined and "Cedar" not in joined
    assert harness.standin.photos(LEAD_A), "the barrier chart comes as a photo"
    html = harness.standin.documents(LEAD_A)[0].content.decode()
    assert "Birchwood" not in html and "Cedar" not in html
    assert "<script>x" not in html and "&lt;script&gt;x" in html


async def test_lead_cannot_open_a_round_their_organisation_was_not_in(harness: BotHarness) -> None:
    ids = build(harness)
    reply = await harness.say(LEAD_A, f"/digest {ids['other']}")
    assert "not one you can see" in reply.text
    reply = await harness.say(LEAD_B, f"/digest {ids['other']}")
    assert "Key figures" in reply.text


async def test_coordinator_sees_organisations_with_no_responses(harness: BotHarness) -> None:
    ids = build(harness)
    await harness.say(COORD, f"/digest {ids['round']}")
    await harness.standin.wait_for_message(COORD, predicate=lambda m: m.kind == "document")
    joined = "\n".join(m.text for m in harness.standin.messages(COORD))
    assert "fewer than 5 responses: Cedar Faith Circle" in joined  # not which gave none
    assert "Your organisation" not in joined


async def test_wrong_roles_are_refused(harness: BotHarness) -> None:
    ids = build(harness)
    for command in (
        "/review",
        f"/feedback {ids['round']}",
        f"/action {ids['round']} - | a | b | c",
    ):
        reply = await harness.say(LEAD_A, command)
        assert "only for coordinators" in reply.text, command


async def test_review_toggles_saves_and_refuses_forged_and_stale_presses(
    harness: BotHarness,
) -> None:
    build(harness)
    first = await harness.say(COORD, "/review")
    assert "Review coding" in first.text
    answer_id = int(first.buttons[-1]["callback_data"].split(":")[2])
    # Toggle leadership (whatever the coder suggested) and save.
    with session_scope(harness.ctx.sessions) as session:
        from bot.coding.stored import codebook_for

        codebook = codebook_for(harness.ctx.settings, harness.ctx.loaded)
        index = [c.code for c in codebook.codes].index("int.leadership")
    label = next(
        b["text"] for b in first.buttons if b["callback_data"] == f"rv:t:{answer_id}:{index}"
    )
    edited = await harness.press(COORD, first, label)
    assert any(b["text"].startswith("✅ Leadership") for b in edited.buttons)
    saved = await harness.press(COORD, edited, "💾 Save")
    assert saved.message_id == first.message_id
    with session_scope(harness.ctx.sessions) as session:
        human = session.scalars(
            select(AnswerCode.code).where(
                AnswerCode.answer_id == answer_id, AnswerCode.source == CodeSource.HUMAN
            )
        ).all()
        assert "int.leadership" in human
        assert session.get(AnswerReview, answer_id) is not None
    # A forged answer id, and a press on the answer already saved, change nothing.
    before = len(harness.standin.callback_answers)
    harness.standin.press_button(COORD, first.message_id, "rv:t:999999:0")
    harness.standin.press_button(COORD, first.message_id, f"rv:s:{answer_id}")
    harness.standin.press_button(COORD, first.message_id, "rv:t:abc")
    await harness.settle(0.6)
    alerts = [a for a in harness.standin.callback_answers[before:] if a.show_alert]
    assert len(alerts) == 3


async def test_action_and_feedback_reach_everyone_who_took_part(harness: BotHarness) -> None:
    ids = build(harness)
    reply = await harness.say(
        COORD,
        f"/action {ids['round']} ext.funding | Grants come late | Confirm grants by February "
        "| Council grants team | 2027-02-01",
    )
    assert "recorded" in reply.text
    bad = await harness.say(COORD, f"/action {ids['round']} ext.nope | a | b | c")
    assert "Unknown code" in bad.text
    reply = await harness.say(COORD, f"/feedback {ids['round']}")
    assert "queued for 11 people" in reply.text
    with session_scope(harness.ctx.sessions) as session:
        rows = session.scalars(select(Delivery).where(Delivery.kind == "feedback")).all()
        assert len(rows) == 11
        assert "Confirm grants by February" in rows[0].payload["text"]
        person = rows[0].participant_id
        assert person is not None
        items = recent_feedback(session, person, None)
        assert [i.action for i in items] == ["Confirm grants by February"]
    again = await harness.say(COORD, f"/feedback {ids['round']}")
    assert "queued for 0 people" in again.text


async def test_round_close_queues_digests_to_leads_and_coordinators(harness: BotHarness) -> None:
    ids = build(harness)
    with session_scope(harness.ctx.sessions) as session:
        queued = enqueue_round_digest(session, harness.ctx, ids["round"])
        again = enqueue_round_digest(session, harness.ctx, ids["round"])
        rows = session.scalars(select(Delivery).where(Delivery.kind == "digest")).all()
        by_chat: dict[int, list[Delivery]] = {}
        for row in rows:
            by_chat.setdefault(row.chat_id, []).append(row)
    assert queued == len(rows) and again == 0
    assert set(by_chat) == {LEAD_A, LEAD_B, COORD}
    lead_a = "\n".join(r.payload.get("text", "") for r in by_chat[LEAD_A])
    assert "Alder Food Bank" in lead_a and "Birchwood" not in lead_a
    assert any("document" in r.payload for r in by_chat[COORD])
    assert all(len(r.payload.get("text", "")) <= 4096 for r in rows)
