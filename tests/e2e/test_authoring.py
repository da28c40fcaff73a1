"""Coordinators write consultations as spreadsheets in chat (issue 14): a sent .xlsx becomes a
draft, played in their own chat as a participant would meet it (branching included) with
nothing stored, then published or discarded; published, it runs as a round whose digest counts
each question out of those it was asked. Every press tried as the wrong role, twice, stale
and forged, through real PTB and the stand-in."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy import func, select

from bot.coding.stored import codebook_for
from bot.consultations.sets import ConsultationSet
from bot.consultations.xlsform import read_xlsform
from bot.consultations.xlsform_write import write_xlsform
from bot.digests.compile import compile_digest, prepare
from bot.digests.render import render_telegram
from bot.digests.scopes import round_scope
from bot.telegram.jobs import tick_now
from standin.models import BotMessage
from storage.db import session_scope
from storage.models import Answer, Consultation, DialogState, Role, Round
from tests.support import factories
from tests.support.harness import BotHarness

COORDINATOR = 900  # an admin in the test settings
MEMBER = 1201
LEAD = 1202
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SHIPPED = Path(__file__).resolve().parents[2] / "templates" / "consultations" / "xlsform"
FORM = (SHIPPED / "hearing-back.xlsx").read_bytes()
TITLE = "Did we tell you what happened?"


async def send(harness: BotHarness, user_id: int, content: bytes, name: str) -> BotMessage:
    harness.standin.send_document(user_id, content, name, mime_type=XLSX)
    return await harness.standin.wait_for_message(user_id, timeout=10)


def last(harness: BotHarness, chat_id: int) -> BotMessage:
    message = harness.standin.last_message(chat_id)
    assert message is not None
    return message


def stored(harness: BotHarness) -> tuple[int, int]:
    """(consultations, answers) in the database."""
    with session_scope(harness.ctx.sessions) as s:
        consultations = s.scalar(select(func.count()).select_from(Consultation)) or 0
        answers = s.scalar(select(func.count()).select_from(Answer)) or 0
        return consultations, answers


def broken_form() -> bytes:
    """The shipped form with four mistakes in different cells."""
    book = load_workbook(io.BytesIO(FORM))
    survey = book["survey"]
    header = [c.value for c in survey[1]]
    col = {name: i + 1 for i, name in enumerate(header)}
    survey.cell(row=2, column=col["type"], value="select_one nonexistent_list")
    survey.cell(row=3, column=col["relevant"], value="${told} == 'yes'")
    survey.cell(row=4, column=col["name"], value="told")
    survey.cell(row=survey.max_row + 1, column=col["type"], value="geopoint")
    survey.cell(row=survey.max_row, column=col["name"], value="where")
    survey.cell(row=survey.max_row, column=col["label"], value="Where are you?")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_a_sent_spreadsheet_is_previewed_with_its_branches_then_published(
    harness: BotHarness,
) -> None:
    draft = await send(harness, COORDINATOR, FORM, "hearing-back.xlsx")
    assert f"Draft: {TITLE}" in draft.text
    assert "only when ${told} = 'yes'" in draft.text
    assert [b["text"] for b in draft.buttons] == ["👁 Preview", "Publish", "Discard"]
    assert stored(harness) == (0, 0), "a draft is not a consultation yet"

    # The preview: the participant's cards, in the coordinator's chat.
    await harness.press(COORDINATOR, draft, "👁 Preview")
    await harness.eventually(lambda: "1 of up to 3" in last(harness, COORDINATOR).text)
    intro, card = harness.standin.messages(COORDINATOR)[-2:]
    assert "Preview" in intro.text and "Nothing you answer is stored" in intro.text
    assert "were you told what happened" in card.text
    assert all(b["callback_data"].startswith("v:") for b in card.buttons)

    # "No" skips the usefulness scale and asks what they wanted.
    card = await harness.press(COORDINATOR, card, "No")
    assert "What would you have wanted to hear" in card.text
    await harness.say(COORDINATOR, "A short e-mail would do")
    await harness.eventually(lambda: "That was the preview" in last(harness, COORDINATOR).text)
    texts = [m.text for m in harness.standin.messages(COORDINATOR)[-3:]]
    summary = next(
        m for m in harness.standin.messages(COORDINATOR) if "A short e-mail" in m.text and m.buttons
    )
    assert "How useful" not in summary.text, "a question not asked is not in the summary"
    assert any("We will share what people tell us" in t for t in texts), "the closing words"
    assert stored(harness) == (0, 0), "nothing played in a preview is stored"

    # Changing to "Yes" drops the answer that no longer applies and asks the scale.
    change = await harness.press(COORDINATOR, summary, "Change 1")
    card = await harness.press(COORDINATOR, change, "Yes")
    await harness.eventually(
        lambda: any("no longer applies" in m.text for m in harness.standin.messages(COORDINATOR))
    )
    card = last(harness, COORDINATOR)
    assert "How useful was what you were told?" in card.text
    await harness.press(COORDINATOR, card, "4")
    await harness.eventually(lambda: "→ 4" in last(harness, COORDINATOR).text)
    assert stored(harness) == (0, 0)

    done = next(
        m
        for m in reversed(harness.standin.messages(COORDINATOR))
        if "That was the preview" in m.text
    )
    published = await harness.press(COORDINATOR, done, "Publish")
    assert f"Published: {TITLE}" in published.text and "version 1" in published.text
    with session_scope(harness.ctx.sessions) as s:
        row = s.scalar(select(Consultation).where(Consultation.slug == "hearing-back"))
        assert row is not None and [q.relevant for q in row.questions][1] == "${told} = 'yes'"
        assert s.scalar(select(func.count()).select_from(DialogState)) == 0
    schedule = await harness.say(COORDINATOR, "/schedule")
    assert TITLE in [b["text"] for b in schedule.buttons]

    # Twice, and stale: the draft is gone, so each of its buttons says so and changes nothing;
    # a press on the old preview's card too.
    for data, message in (("au:pub", done), ("au:x", done), ("au:pv", done), ("v:a:1:2:5", card)):
        alert = await toast_after(harness, message, data)
        assert "no draft waiting" in alert
    with session_scope(harness.ctx.sessions) as s:
        assert s.scalar(select(func.count()).select_from(Consultation)) == 1
    assert stored(harness) == (1, 0)


async def toast_after(
    harness: BotHarness, message: BotMessage, data: str, user: int = COORDINATOR
) -> str:
    """The alert or toast a press of `data` on `message` is answered with."""
    update = harness.standin.press_button(user, message.message_id, data, chat_id=message.chat_id)
    query = update["callback_query"]["id"]

    def found() -> str | None:
        answers = [a for a in harness.standin.callback_answers if a.callback_query_id == query]
        return (answers[0].text or "") if answers else None

    await harness.eventually(lambda: found() is not None)
    return found() or ""


async def test_a_form_with_mistakes_is_refused_with_every_cell_and_nothing_kept(
    harness: BotHarness,
) -> None:
    reply = await send(harness, COORDINATOR, broken_form(), "hearing-back.xlsx")
    assert "was not added" in reply.text and "Nothing was stored" in reply.text
    assert "survey row 2" in reply.text and "nonexistent_list" in reply.text
    assert "survey row 3" in reply.text and "relevant" in reply.text
    assert "survey row 4" in reply.text and "told" in reply.text
    assert "geopoint" in reply.text
    assert stored(harness) == (0, 0)
    with session_scope(harness.ctx.sessions) as s:
        assert s.scalar(select(func.count()).select_from(DialogState)) == 0


async def test_other_files_and_other_people_are_answered_kindly(harness: BotHarness) -> None:
    with session_scope(harness.ctx.sessions) as s:
        factories.participant(s, MEMBER)
        factories.participant(s, LEAD, role=Role.LEAD)
    pdf = await send(harness, COORDINATOR, b"%PDF-1.4", "minutes.pdf")
    assert "XLSForm spreadsheets (.xlsx)" in pdf.text
    big = await send(harness, COORDINATOR, b"x" * (1024 * 1024 + 1), "huge.xlsx")
    assert "too big" in big.text
    junk = await send(harness, COORDINATOR, b"not a workbook", "junk.xlsx")
    assert "was not added" in junk.text and "not an .xlsx XLSForm workbook" in junk.text
    for person in (MEMBER, LEAD):
        reply = await send(harness, person, FORM, "hearing-back.xlsx")
        assert "Draft" not in reply.text  # the journey's answer to a file
    assert stored(harness) == (0, 0)
    with session_scope(harness.ctx.sessions) as s:
        assert s.scalar(select(func.count()).select_from(DialogState)) == 0


async def test_draft_and_preview_presses_are_refused_to_others_forged_and_discarded(
    harness: BotHarness,
) -> None:
    with session_scope(harness.ctx.sessions) as s:
        factories.participant(s, MEMBER)
        factories.participant(s, LEAD, role=Role.LEAD)
    draft = await send(harness, COORDINATOR, FORM, "hearing-back.xlsx")
    for person in (MEMBER, LEAD):
        for data in ("au:pub", "au:x", "au:pv", "v:a:1:1:yes"):
            for _ in range(2):  # twice: refused each time, nothing changes
                alert = await toast_after(harness, draft, data, person)
                assert "coordinator" in alert.lower()
    assert stored(harness) == (0, 0)
    # Forged: data no button of a draft or a preview carries (no preview is playing yet).
    for data in ("au:zz", "v:a:2:1:yes", "v:zz", "v:a:1:99:yes", "v:" + "9" * 70):
        alert = await toast_after(harness, draft, data)
        assert "not one I made" in alert or "no draft" in alert or "preview has ended" in alert
    assert stored(harness) == (0, 0)
    discarded = await harness.press(COORDINATOR, draft, "Discard")
    assert "discarded" in discarded.text
    assert "no draft waiting" in await toast_after(harness, draft, "au:pub")
    assert stored(harness) == (0, 0)
    with session_scope(harness.ctx.sessions) as s:
        assert s.scalar(select(func.count()).select_from(DialogState)) == 0


async def test_published_it_runs_and_the_digest_counts_each_question_out_of_those_asked(
    harness: BotHarness,
) -> None:
    draft = await send(harness, COORDINATOR, FORM, "hearing-back.xlsx")
    await harness.press(COORDINATOR, draft, "Publish")
    people = list(range(7000, 7012))
    with session_scope(harness.ctx.sessions) as s:
        for uid in people:
            factories.participant(s, uid)
            harness.standin.register_chat(uid)
    # Scheduled from chat, as any consultation is.
    step = await harness.say(COORDINATOR, "/schedule")
    for button in (TITLE, "Everyone", "Now", "7 days", "No reminder", "Confirm"):
        step = await harness.press(COORDINATOR, step, button)
    assert "opening now" in step.text
    with session_scope(harness.ctx.sessions) as s:
        round_id = s.scalar(select(Round.id))
        assert round_id is not None
    await tick_now(harness.ctx)
    # Six were told (and rate it 4), six were not (and say what they wanted): two paths.
    for n, uid in enumerate(people):
        intro = await harness.standin.wait_for_message(uid, after=0, timeout=10)
        card = await harness.press(uid, intro, "Start now")
        await harness.eventually(lambda u=uid: "were you told" in last(harness, u).text)
        card = last(harness, uid)
        if n % 2 == 0:
            card = await harness.press(uid, card, "Yes")
            assert "How useful" in card.text
            await harness.press(uid, card, "4")
        else:
            card = await harness.press(uid, card, "No")
            assert "What would you have wanted" in card.text
            await harness.say(uid, "A letter saying what changed")
        await harness.eventually(
            lambda u=uid: any("Thank you" in m.text for m in harness.standin.messages(u))
        )
    harness.ctx.clock.advance(timedelta(days=7, minutes=1))  # type: ignore[attr-defined]
    await tick_now(harness.ctx)
    await harness.eventually(lambda: _closed(harness, round_id), timeout=20)
    with session_scope(harness.ctx.sessions) as s:
        scope = round_scope(s, round_id)
        prepare(s, scope, codebook_for(harness.ctx.settings))
        digest = compile_digest(s, harness.ctx.settings, scope, now=datetime.now(UTC))
        spec = ConsultationSet.model_validate(
            s.scalar(select(Consultation.spec).where(Consultation.slug == "hearing-back"))
        )
    questions = {q.key: q for q in digest.questions}
    assert (questions["told"].answered, questions["told"].asked) == (12, 12)
    assert (questions["how_useful"].answered, questions["how_useful"].asked) == (6, 6)
    assert questions["how_useful"].scale is not None and questions["how_useful"].scale.mean == 4
    # Asked after "no" or a low score: a condition over two questions, so held back.
    assert questions["wanted"].branch_withheld
    text = "\n".join(render_telegram(digest, harness.ctx.renderer))
    assert "6 of the 6 asked" in text and "version 1" in text

    # The export reads back as the same consultation.
    out = io.BytesIO()
    write_xlsform(spec, out)
    assert read_xlsform(out.getvalue(), "export.xlsx") == spec


def _closed(harness: BotHarness, round_id: int) -> bool:
    with session_scope(harness.ctx.sessions) as s:
        round_ = s.get(Round, round_id)
        return round_ is not None and round_.closed_at is not None
