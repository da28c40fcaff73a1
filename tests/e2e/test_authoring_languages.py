"""A coordinator who chose Welsh writes a consultation as a spreadsheet in Welsh chat (issue 15):
every problem in a sent file comes in Welsh with its sheet, row and column (XLSForm's own words
kept), while an English-speaking coordinator gets the same file's problems in English; the
draft, the preview (the form's own Welsh texts, as a Welsh participant meets them), publishing
and discarding all speak Welsh. Through real PTB and the stand-in."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from standin.models import BotMessage
from storage.db import session_scope
from storage.models import Role
from tests.e2e.test_authoring import (
    COORDINATOR,
    FORM,
    TITLE,
    broken_form,
    last,
    send,
    stored,
    toast_after,
)
from tests.support import factories
from tests.support.harness import BotHarness

pytestmark = pytest.mark.languages("en", "cy")

ENGLISH_COORDINATOR = 1301


async def choose_welsh(harness: BotHarness, user_id: int) -> None:
    """`user_id`, a coordinator who has joined, chooses Welsh with /language."""
    with session_scope(harness.ctx.sessions) as s:
        factories.participant(s, user_id, role=Role.COORDINATOR)
    choice = await harness.say(user_id, "/language")
    chosen = await harness.press(user_id, choice, "Cymraeg")
    assert "Iawn: Cymraeg." in chosen.text


def buttons(message: BotMessage) -> list[str]:
    return [b["text"] for b in message.buttons]


def with_bad_settings(content: bytes) -> bytes:
    """`content` with 'first' for its version and 'all' for its audience: mistakes on the
    settings sheet too."""
    book = load_workbook(io.BytesIO(content))
    settings = book["settings"]
    header = [c.value for c in settings[1]]
    settings.cell(row=2, column=header.index("version") + 1, value="first")
    settings.cell(row=2, column=header.index("audience") + 1, value="all")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_every_problem_comes_in_the_coordinators_language_with_its_cell(
    harness: BotHarness,
) -> None:
    with session_scope(harness.ctx.sessions) as s:
        factories.participant(s, ENGLISH_COORDINATOR, role=Role.COORDINATOR).language = "en"
    await choose_welsh(harness, COORDINATOR)
    broken = with_bad_settings(broken_form())

    reply = await send(harness, COORDINATOR, broken, "hearing-back.xlsx")
    text = reply.text
    assert "Chafodd hearing-back.xlsx mo'i hychwanegu: 8 problem i'w datrys." in text
    assert "Chafodd dim byd ei gadw." in text
    for line in (
        "survey: mae'r cyflwyniad ar goll: nodyn cyn y cwestiwn cyntaf",
        "survey rhes 2, colofn A (type): does dim rhestr 'nonexistent_list' ar y daflen choices",
        "survey rhes 3, colofn F (relevant): cymharwch ag un = (does dim == yn XPath) (ar nod 10)",
        "survey rhes 4, colofn B (name): enw dyblyg 'told' (hefyd rhes 3)",
        "survey rhes 5, colofn F (relevant): nid yw ${how_useful} yn gwestiwn a ofynnir cyn hwn"
        " (ar nod 19)",
        "survey rhes 7, colofn A (type): geopoint: ni ofynnir am leoliadau mewn sgwrs",
        "settings rhes 2, colofn B (version): rhif cyfan o 1 i 2147483647 (cafwyd 'first')",
        "settings rhes 2, colofn E (audience): rhaid iddo fod yn un o 'organisations',"
        " 'service_users' neu 'everyone' (cafwyd 'all')",
    ):
        assert f"• hearing-back.xlsx: {line}\n" in text + "\n", line
    assert "Cywirwch nhw yn y daenlen a'i hanfon eto." in text
    assert " row " not in text and "column" not in text and "not added" not in text

    # The same file from a coordinator who speaks English: the same cells, in English.
    english = await send(harness, ENGLISH_COORDINATOR, broken, "hearing-back.xlsx")
    assert "hearing-back.xlsx was not added: 8 problems to fix." in english.text
    assert (
        "survey row 3, column F (relevant): compare with a single = (XPath has no ==)"
        " (at character 10)" in english.text
    )
    assert "settings row 2, column B (version): a whole number from 1 to" in english.text
    assert "'service_users' or 'everyone' (got 'all')" in english.text

    pdf = await send(harness, COORDINATOR, b"%PDF-1.4", "minutes.pdf")
    assert "Rwy'n darllen ymgynghoriadau wedi'u hysgrifennu fel taenlenni XLSForm (.xlsx)." in (
        pdf.text
    )
    junk = await send(harness, COORDINATOR, b"not a workbook", "junk.xlsx")
    assert "junk.xlsx: nid llyfr gwaith XLSForm .xlsx yw hwn" in junk.text
    assert stored(harness) == (0, 0)


async def test_a_welsh_coordinator_drafts_previews_publishes_and_discards_in_welsh(
    harness: BotHarness,
) -> None:
    await choose_welsh(harness, COORDINATOR)
    draft = await send(harness, COORDINATOR, FORM, "hearing-back.xlsx")
    assert f"Drafft: {TITLE}" in draft.text
    assert "Ffurflen hearing-back, fersiwn 1; tua 1 munud, ar gyfer pawb." in draft.text
    assert "(testun, dewisol)" in draft.text and "(ie/na)" in draft.text
    assert "   dim ond pan fo ${told} = 'yes'" in draft.text
    assert "Hefyd yn: cy." in draft.text
    assert "Does dim byd yn cael ei gadw nes i chi gyhoeddi." in draft.text
    assert buttons(draft) == ["👁 Rhagolwg", "Cyhoeddi", "Gwaredu"]

    # The preview: Welsh chrome, and the form's own Welsh texts, as a Welsh participant sees.
    await harness.press(COORDINATOR, draft, "👁 Rhagolwg")
    await harness.eventually(lambda: "1 o hyd at 3" in last(harness, COORDINATOR).text)
    intro, card = harness.standin.messages(COORDINATOR)[-2:]
    assert "Rhagolwg: dyma beth fydd cyfranogwyr yn ei weld." in intro.text
    assert "Does dim o'ch atebion yn cael eu cadw." in intro.text
    assert "Wnaethon ni ddweud wrthych beth ddigwyddodd?" in intro.text
    assert "Cwestiwn cyflym gan y bartneriaeth leol" in intro.text
    assert "a gawsoch chi wybod beth ddigwyddodd" in card.text
    assert buttons(card) == ["Ie", "Na"]
    card = await harness.press(COORDINATOR, card, "Na")
    assert "Beth fyddech chi wedi hoffi ei glywed, a sut?" in card.text
    await harness.say(COORDINATOR, "Byddai e-bost byr yn gwneud")
    await harness.eventually(lambda: "Dyna oedd y rhagolwg o" in last(harness, COORDINATOR).text)
    done = last(harness, COORDINATOR)
    assert f'Dyna oedd y rhagolwg o "{TITLE}". Chafodd dim byd ei gadw.' in done.text
    assert buttons(done) == ["👁 Rhagolwg eto", "Cyhoeddi", "Gwaredu"]
    said = [m.text for m in harness.standin.messages(COORDINATOR)[-3:]]
    assert any("Diolch. Byddwn yn rhannu'r hyn mae pobl yn ei ddweud" in t for t in said)
    assert stored(harness) == (0, 0)

    published = await harness.press(COORDINATOR, done, "Cyhoeddi")
    assert f"Wedi'i chyhoeddi: {TITLE} (ffurflen hearing-back, fersiwn 1)." in published.text
    assert "Anfonwch /schedule i'w chynnal." in published.text
    assert stored(harness) == (1, 0)
    assert "Does dim drafft yn aros" in await toast_after(harness, done, "au:pub")

    # Sent again: the draft says what publishing would replace; discarded, nothing changes.
    again = await send(harness, COORDINATOR, FORM, "hearing-back.xlsx")
    assert "Bydd cyhoeddi yn disodli fersiwn 1" in again.text
    discarded = await harness.press(COORDINATOR, again, "Gwaredu")
    assert f"Mae'r drafft \"{TITLE}\" wedi'i waredu. Chafodd dim byd ei gadw." in discarded.text
    assert stored(harness) == (1, 0)


def without_welsh(content: bytes) -> bytes:
    """`content` with every '::Welsh (cy)' column removed: a form in English only."""
    book = load_workbook(io.BytesIO(content))
    for sheet in book.worksheets:
        welsh = [c.column for c in sheet[1] if isinstance(c.value, str) and "::" in c.value]
        for column in sorted(welsh, reverse=True):
            sheet.delete_cols(column)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


async def test_a_form_without_welsh_is_previewed_in_its_own_language_with_the_note(
    harness: BotHarness,
) -> None:
    await choose_welsh(harness, COORDINATOR)
    draft = await send(harness, COORDINATOR, without_welsh(FORM), "hearing-back.xlsx")
    assert f"Drafft: {TITLE}" in draft.text and "Hefyd yn" not in draft.text
    await harness.press(COORDINATOR, draft, "👁 Rhagolwg")
    await harness.eventually(lambda: "1 o hyd at 3" in last(harness, COORDINATOR).text)
    intro, card = harness.standin.messages(COORDINATOR)[-2:]
    assert "Rhagolwg: dyma beth fydd cyfranogwyr yn ei weld." in intro.text
    assert "Dydy'r ymgynghoriad hwn ddim ar gael yn eich iaith chi eto" in intro.text
    assert f"{TITLE}\n" in intro.text and "A quick question from the local partnership" in (
        intro.text
    )
    # The form's own words, the bot's own buttons in Welsh.
    assert "were you told what happened" in card.text and buttons(card) == ["Ie", "Na"]
