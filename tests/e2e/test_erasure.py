"""/forget leaves nothing behind: a person joins under a unique name, writes a unique phrase
that the coder codes and the round's digest quotes, the digests are sent, the person erases
themselves, and then neither the phrase nor the name is anywhere in the database: on SQLite
not in the raw bytes of the file or its write-ahead log, plainly or base64-encoded (as a
digest's file travels in a delivery's payload); on both databases in no row of any table.

Real PTB over HTTP against the stand-in, with the outbox sender draining the digests."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.consultations.catalogue import import_consultation
from bot.consultations.sets import load_consultation
from bot.kernel.config import Settings
from bot.participation.invites import create_invite
from storage.db import session_scope
from storage.models import (
    AnswerCode,
    Base,
    CodeSource,
    Delivery,
    DeliveryStatus,
    Participant,
    Role,
    Round,
)
from tests.conftest import Database
from tests.support import factories
from tests.support.digest_fixtures import respondent
from tests.support.harness import BotHarness

ME, LEAD, COORD = 7001, 7101, 7102
NAME = "Peregrine Wolstenholme-Oyelaran"
# Long and made of words nobody else here writes, so that any 24 bytes of it (or of its
# base64) found in the files can only be a copy of it; about funding, so the coder codes it
# ext.funding and the digest quotes it.
PHRASE = (
    "Funding for our quilting and beekeeping circle always arrives months late and lasts "
    "only twelve weeks, so the kazoo workshop and the marmalade stall fold every spring"
)

FUNDING_AND_WORDS = """
id = "funding-words"
version = 1
title = "Money and words"
intro = "One button, one free text."
estimated_minutes = 1
audience_hint = "organisations"

[[questions]]
id = "barriers"
type = "multi"
text = "What gets in the way?"
options = [
  { id = "funding", label = "Short-term or late funding", codes = ["ext.funding"] },
  { id = "forms", label = "Too many forms", codes = ["ext.red_tape"] },
]

[[questions]]
id = "more"
type = "text"
text = "What is the biggest thing stopping your group?"
required = false
"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.sending.per_chat_interval = 0.02  # a lead's digest parts need not take seconds
    return settings


def windows(data: bytes, size: int = 24, step: int = 8) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data) - size + 1, step)]


def base64_windows(data: bytes) -> list[bytes]:
    """Pieces of `data`'s base64 at each of the 3 byte alignments it can start at in a larger
    file: the first and last 4 characters, which the neighbouring bytes change, left out."""
    out = []
    for pad in range(3):
        core = base64.b64encode(b"\0" * pad + data)[4:-4]
        out += windows(core, step=4)
    return out


def traces(text: str) -> list[bytes]:
    raw = text.encode()
    return windows(raw) + base64_windows(raw)


PHRASE_TRACES = traces(PHRASE)
NAME_TRACES = [NAME.encode(), b"Wolstenholme", *base64_windows(NAME.encode())]


def found(traces_: list[bytes], content: bytes) -> list[bytes]:
    return [t for t in traces_ if t in content]


def database_files(db: Database) -> dict[str, bytes]:
    """The SQLite file and its write-ahead log, as bytes on disk."""
    path = Path(db.engine.url.database or "")
    return {p.name: p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists()}


def every_row(harness: BotHarness) -> Iterator[tuple[str, str]]:
    """(table, row as JSON text) for every row of every table, with the files of payloads
    still holding one decoded."""
    with session_scope(harness.ctx.sessions) as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)).mappings():
                text = json.dumps(dict(row), default=str)
                for media in _media(dict(row).get("payload")):
                    text += base64.b64decode(media).decode("utf-8", "replace")
                yield table.name, text


def _media(payload: object) -> Iterator[str]:
    if isinstance(payload, dict):
        for key in ("document", "photo"):
            media = payload.get(key)
            if isinstance(media, dict) and "content_b64" in media:
                yield media["content_b64"]


def digests_done(harness: BotHarness) -> bool:
    with session_scope(harness.ctx.sessions) as session:
        statuses = session.scalars(select(Delivery.status).where(Delivery.kind == "digest")).all()
    return bool(statuses) and all(s == DeliveryStatus.SENT for s in statuses)


def build(harness: BotHarness, tmp_path: Path) -> tuple[int, str]:
    """An open round with six others who named funding (so the funding code is shown and
    quoted), a lead and a coordinator; returns the round and an invite link's code."""
    path = tmp_path / "funding-words.toml"
    path.write_text(FUNDING_AND_WORDS)
    with session_scope(harness.ctx.sessions) as session:
        org = factories.organisation(session, "Kestrel Community Larder", area="north")
        consultation, _ = import_consultation(session, load_consultation(path))
        round_ = factories.open_round(session, consultation, now=harness.ctx.clock.now())
        for i in range(6):
            respondent(
                session, round_, 7200 + i, {"barriers": ["funding"]}, organisation=org,
                profile={"area": "north"},
            )  # fmt: skip
        factories.participant(session, LEAD, role=Role.LEAD, organisation=org)
        factories.participant(session, COORD, role=Role.COORDINATOR)
        invite = create_invite(
            session, now=harness.ctx.clock.now(), organisation="Kestrel Community Larder"
        )
        ids = round_.id, invite.code
    for chat in (LEAD, COORD):
        harness.standin.register_chat(chat)
    return ids


async def join_and_answer(harness: BotHarness, round_id: int, code: str) -> None:
    """ME joins through the link under NAME and answers, typing PHRASE, all in the chat."""
    notice = await harness.say(ME, f"/start {code}", first_name=NAME)
    harness.standin.press(ME, notice, "Agree")
    area = await harness.standin.wait_for_message(ME, predicate=lambda m: "part of town" in m.text)
    harness.standin.press(ME, area, "North")
    size = await harness.standin.wait_for_message(ME, predicate=lambda m: "How big" in m.text)
    harness.standin.press(ME, size, "1-10 paid staff")
    await harness.standin.wait_for_message(ME, predicate=lambda m: "All set" in m.text)
    with session_scope(harness.ctx.sessions) as session:
        me = session.scalar(select(Participant).where(Participant.telegram_user_id == ME))
        round_ = session.get(Round, round_id)
        assert me is not None and me.display_name == NAME and round_ is not None
        factories.invitation(session, round_, me)  # the round opened before they joined
    intro = await harness.say(ME, "/resume")
    harness.standin.press(ME, intro, "Start now")
    card = await harness.standin.wait_for_message(ME, predicate=lambda m: "1 of 2" in m.text)
    card = await harness.press(ME, card, "Short-term or late funding")
    harness.standin.press(ME, card, "Done")
    await harness.standin.wait_for_message(ME, predicate=lambda m: "2 of 2" in m.text)
    await harness.say(ME, PHRASE)
    await harness.standin.wait_for_message(ME, predicate=lambda m: "Thank you" in m.text)


def received(harness: BotHarness, chat: int, since: int = 0) -> str:
    """Everything `chat` was sent after its first `since` messages: texts, captions, files."""
    parts = []
    for message in harness.standin.messages(chat)[since:]:
        parts.append(message.text)
        if message.file is not None and message.kind == "document":
            parts.append(message.file.content.decode("utf-8", "replace"))
    return "\n".join(parts)


async def test_forget_leaves_no_trace_of_the_words_or_the_name(
    harness: BotHarness, db: Database, tmp_path: Path
) -> None:
    round_id, code = build(harness, tmp_path)
    await join_and_answer(harness, round_id, code)

    ask = await harness.say(COORD, f"/close {round_id}")
    closed = await harness.press(COORD, ask, "Yes, close it now")
    assert "is closed" in closed.text
    await harness.eventually(lambda: digests_done(harness), timeout=20)
    # The phrase was a quote in what the lead and the coordinator were sent, in the chat and
    # in the HTML file (which a delivery carries base64-encoded)...
    for chat in (LEAD, COORD):
        assert received(harness, chat).count(PHRASE) >= 2, chat
    html = harness.standin.documents(LEAD)[-1].content
    assert found(base64_windows(PHRASE.encode()), base64.b64encode(html))
    # ...and the sent deliveries keep nothing of it, while the answer is still stored, and the
    # round's published release holds it as a quote.
    holding = {table for table, row in every_row(harness) if PHRASE in row}
    assert holding == {"answers", "releases"}
    with session_scope(harness.ctx.sessions) as session:
        evidence = session.scalars(
            select(AnswerCode.evidence).where(
                AnswerCode.code == "ext.funding", AnswerCode.source == CodeSource.AUTO
            )
        ).all()
        assert evidence and all(e and e in PHRASE for e in evidence), "coded, with its words"
    if db.backend == "sqlite":
        on_disk = b"".join(database_files(db).values())
        assert found(PHRASE_TRACES, on_disk) and found(NAME_TRACES, on_disk)

    confirm = await harness.say(ME, "/forget")
    gone = await harness.press(ME, confirm, "Yes, erase everything")
    assert "erased" in gone.text

    # Not in any row of any table, stored plainly or in a file a payload carries.
    for table, row in every_row(harness):
        assert PHRASE not in row and "Wolstenholme" not in row, table
    if db.backend == "sqlite":
        # Not in the bytes on disk either: secure_delete zeroed the rows, and the write-ahead
        # log, which held every page as it was written, was checkpointed and truncated.
        for name, content in database_files(db).items():
            assert not found(PHRASE_TRACES, content), name
            assert not found(NAME_TRACES, content), name

    # A digest asked for afterwards does not quote them.
    before = len(harness.standin.messages(LEAD))
    await harness.say(LEAD, f"/digest {round_id}")
    await harness.standin.wait_for_message(LEAD, predicate=lambda m: m.kind == "document")
    later = received(harness, LEAD, before)
    assert "Key figures" in later and PHRASE[:40] not in later and "Wolstenholme" not in later
