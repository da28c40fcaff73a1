"""/mydata exports everything stored about a person and /forget erases it: checked against
the models themselves, so a new table or column that can hold a person's id or words fails
here until it is exported (and erased) or knowingly left out (bot/participation/mydata.py)."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Enum, Float, String, inspect, select
from sqlalchemy.orm import Session

from bot.kernel.audit import record
from bot.kernel.context import AppContext
from bot.kernel.reply import Button, OutgoingMessage
from bot.outbox.queue import enqueue
from bot.participation.mydata import EXPORTED, NOT_EXPORTED, export, forget
from storage.db import session_scope
from storage.models import (
    Action,
    Answer,
    AnswerChoice,
    AnswerCode,
    AnswerReview,
    AuditEvent,
    Base,
    CodeSource,
    Delivery,
    DialogState,
    Invitation,
    InvitationStatus,
    Invite,
    Participant,
    Role,
    Round,
    Schedule,
    utcnow,
)
from tests.conftest import Database
from tests.support import factories
from tests.support.digest_fixtures import answer, question

ME, OTHER_COORDINATOR, SOMEONE = 5001, 5002, 5003
NAME = "Wilhelmina Fotheringay-Quist"
WORDS = "The grant panel only meets in August, so our lantern walks lose a whole season"
EVIDENCE = "grant panel only meets in August"

# Rows that refer to these tables refer to a person.
PERSON_TABLES = {"participants", "invitations", "answers"}


def can_hold_a_person(column: Column[Any]) -> bool:
    """Whether a column can hold a person's id (a Telegram id is a BigInteger; a link to a
    person's row) or their words (any text or JSON; a number they chose). An enum holds one of
    a fixed set of values: nobody's words."""
    kind = column.type
    if isinstance(kind, Enum):
        return False
    if isinstance(kind, (BigInteger, String, JSON, Float)):
        return True
    return any(fk.column.table.name in PERSON_TABLES for fk in column.foreign_keys)


def test_every_column_that_can_hold_a_person_is_exported_or_knowingly_left_out() -> None:
    unclassified = [
        f"{table.name}.{column.name}"
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if can_hold_a_person(column)
        and column.name not in EXPORTED.get(table.name, ())
        and f"{table.name}.{column.name}" not in NOT_EXPORTED
        and f"{table.name}.*" not in NOT_EXPORTED
    ]
    assert unclassified == [], (
        "export these in bot/participation/mydata.py (and erase them in forget), or list them "
        f"in NOT_EXPORTED with the reason: {unclassified}"
    )
    # And the lists name nothing that is not there.
    columns = {f"{t.name}.{c.name}" for t in Base.metadata.sorted_tables for c in t.columns}
    tables = set(Base.metadata.tables)
    assert {f"{t}.{c}" for t, cs in EXPORTED.items() for c in cs} <= columns
    for entry in NOT_EXPORTED:
        table, column = entry.split(".")
        assert (table in tables) if column == "*" else (entry in columns), entry


def everything(session: Session) -> list[Base]:
    """A coordinator who also answers, with a row of every kind that can be about them; a
    second coordinator and another member around them. Returns the rows about ME whose every
    exported column must show in the export."""
    now = utcnow()
    org = factories.organisation(
        session, "Lantern Walk Trust", kind="charity", area="riverside", size="small", sector="arts"
    )
    joined_by = Invite(code="joined-by-link", organisation=org, created_at=now)
    session.add(joined_by)
    session.flush()
    me = factories.participant(
        session, ME, role=Role.COORDINATOR, organisation=org, display_name=NAME,
        profile={"area": "riverside", "size": "small"},
    )  # fmt: skip
    me.group_label, me.language, me.invite_id = "Thursday walkers", "cy", joined_by.id
    other = factories.participant(session, SOMEONE, display_name="Somebody Else")
    factories.participant(session, OTHER_COORDINATOR, role=Role.COORDINATOR)
    consultation = factories.consultation(session)
    round_ = factories.open_round(session, consultation)
    round_.created_by, round_.progress_chat_id, round_.progress_message_id = ME, ME, 777_001
    schedule = Schedule(
        consultation_id=consultation.id, cron="0 9 1 * *", timezone="Europe/London",
        open_for_seconds=86_400, created_by=ME,
    )  # fmt: skip
    session.add(schedule)
    mine = factories.invitation(session, round_, me, status=InvitationStatus.STARTED)
    mine.delivered_at = mine.started_at = mine.reminded_at = now - timedelta(hours=1)
    mine.prompt_message_id = 888_001
    text_question = question(consultation, "biggest_obstacle")
    mine.editing_question_id = text_question.id
    chosen = answer(session, mine, question(consultation, "asked_when"), "late")
    words = answer(session, mine, text_question, WORDS)
    words.changed_at = now
    auto = AnswerCode(
        answer_id=words.id, code="ext.funding", source=CodeSource.AUTO, evidence=EVIDENCE,
        doubtful=True,
    )  # fmt: skip
    human = AnswerCode(
        answer_id=words.id, code="ext.engagement", source=CodeSource.HUMAN,
        coded_by=OTHER_COORDINATOR,
    )  # fmt: skip
    reviewed = AnswerReview(answer_id=words.id, reviewed_by=OTHER_COORDINATOR)
    theirs = answer(
        session, factories.invitation(session, round_, other), text_question, "Somebody's words"
    )
    given = AnswerCode(
        answer_id=theirs.id, code="int.capacity", source=CodeSource.HUMAN, coded_by=ME
    )
    review_given = AnswerReview(answer_id=theirs.id, reviewed_by=ME)
    made = Invite(
        code="made-by-me", organisation=org, group_label="Friday walkers", role=Role.LEAD,
        answers_as="organisation", max_uses=3, uses=1, expires_at=now + timedelta(days=7),
        revoked_at=now, created_by=ME, created_at=now,
    )  # fmt: skip
    action = Action(
        round_id=round_.id, barrier_code="ext.funding", finding="Panels meet once a year",
        action="A second panel in February", owner="Grants team", due_on=date(2027, 2, 1),
        created_by=ME, published_at=now,
    )  # fmt: skip
    dialog = DialogState(
        chat_id=ME, kind="action", step="owner", data={"finding": "typed by me"}, updated_at=now
    )
    session.add_all([auto, human, reviewed, given, review_given, made, action, dialog])
    delivery = enqueue(
        session, chat_id=ME, kind="reminder", not_before=now, participant_id=me.id,
        round_id=round_.id, invitation_id=mine.id, dedupe_key="remind:me:1",
        message=OutgoingMessage("A reminder for you", ((Button("Go", "p:go:1"),),)),
    )  # fmt: skip
    assert delivery is not None
    delivery.attempts, delivery.error, delivery.telegram_message_id = 2, "timeout", 999_001
    delivery.sent_at = now
    session.flush()
    events = [
        record(session, "invite.create", actor=ME, subject=("invite", made.id),
               details={"group": "Friday walkers"}),
        record(session, "participant.consent", subject=("participant", me.id),
               details={"notice_version": "2026-11"}),
        record(session, "coding.review", actor=OTHER_COORDINATOR, subject=("answer", words.id),
               details={"codes": ["ext.engagement"]}),
    ]  # fmt: skip
    session.flush()
    return [me, org, round_, schedule, mine, chosen, words, session.get(AnswerChoice,
            (chosen.id, "late")), auto, given, review_given, made, action, dialog, delivery,
            *events]  # fmt: skip


def leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    else:
        yield value


def shown(value: Any, exported: list[Any]) -> bool:
    """Whether a stored value appears in the export (dates as ISO text, enums by value,
    JSON by each of its leaves)."""
    if isinstance(value, (dict, list)):
        return all(shown(leaf, exported) for leaf in leaves(value))
    if value is None or isinstance(value, bool):
        return True  # a flag or nothing proves nothing either way
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, (datetime, date)):
        value = value.isoformat()
    return any(type(e) is not bool and e == value for e in exported)


def test_mydata_exports_every_exported_column_of_every_row_about_them(db: Database) -> None:
    with session_scope(db.sessions) as session:
        rows = [(type(row), inspect(row).identity) for row in everything(session)]
    with session_scope(db.sessions) as session:
        me = session.scalar(select(Participant).where(Participant.telegram_user_id == ME))
        assert me is not None
        data = export(session, me)
        exported = list(leaves(json.loads(json.dumps(data))))
        tables_seen = set()
        for model, key in rows:
            row = session.get(model, key)
            table = model.__table__
            tables_seen.add(table.name)
            for name in sorted(EXPORTED[table.name]):
                column = table.columns[name]
                value = getattr(row, column.key)
                if column.foreign_keys or value is None or isinstance(value, bool):
                    continue  # a link shows as nesting; a flag or nothing proves nothing
                if value in (OTHER_COORDINATOR, SOMEONE):  # someone else's id: never
                    assert not shown(value, exported), (table.name, name)
                    continue
                assert shown(value, exported), (table.name, name, value)
    assert tables_seen == set(EXPORTED), "give every exported table a row about ME above"
    # What is someone else's stays out: the other coordinator's id, the other member's words.
    assert OTHER_COORDINATOR not in exported
    assert not any(isinstance(e, str) and "Somebody" in e for e in exported)
    [answered] = [a for a in data["consultations"][0]["answers"] if a["text"] == WORDS]
    assert {(c["code"], c["source"], c["evidence"], c["doubtful"]) for c in answered["codes"]} >= {
        ("ext.funding", "auto", EVIDENCE, True)
    }
    assert answered["reviewed_at"] is not None


def test_forget_erases_every_row_about_them_and_keeps_what_others_own(ctx: AppContext) -> None:
    db = ctx.sessions
    with session_scope(db) as session:
        everything(session)
    with session_scope(db) as session:
        assert forget(session, ctx, ME)
    with session_scope(db) as session:
        assert session.scalar(select(Participant).where(Participant.telegram_user_id == ME)) is None
        # Their answers went with their codes, the coder's evidence and the review.
        [left] = session.scalars(select(Answer)).all()
        assert left.text == "Somebody's words"
        assert {(c.code, c.coded_by) for c in session.scalars(select(AnswerCode))} == {
            ("int.capacity", None)
        }
        assert [(r.answer_id, r.reviewed_by) for r in session.scalars(select(AnswerReview))] == [
            (left.id, None)
        ]
        assert session.scalar(select(DialogState)) is None
        assert session.scalar(select(Delivery)) is None
        assert len(session.scalars(select(Invitation)).all()) == 1
        # What they did for the partnership stays, without them.
        made = session.scalar(select(Invite).where(Invite.code == "made-by-me"))
        assert made is not None and made.created_by is None
        round_ = session.scalar(select(Round))
        assert round_ is not None and (round_.created_by, round_.progress_chat_id) == (None, None)
        action = session.scalar(select(Action))
        assert action is not None and action.created_by is None
        review = session.scalar(select(AuditEvent).where(AuditEvent.action == "coding.review"))
        assert review is not None and (review.subject_id, review.details) == (None, {})
        # Every table, every column: nothing of theirs.
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)).mappings():
                assert ME not in row.values(), (table.name, dict(row))
                text = json.dumps(dict(row), default=str)
                for trace in ("Fotheringay", WORDS, EVIDENCE, "typed by me", "Thursday walkers"):
                    assert trace not in text, (table.name, trace)
