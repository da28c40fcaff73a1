"""storage.prepared: a statement run straight on the driver's cursor must read and write exactly
what Connection.execute would, in the caller's transaction, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, insert, select
from sqlalchemy.exc import IntegrityError

from storage.db import session_scope, transaction
from storage.models import (
    Answer,
    Invitation,
    InvitationStatus,
    ProcessedUpdate,
    Round,
    RoundStatus,
)
from storage.prepared import Prepared
from tests.conftest import Database
from tests.support import factories

INV = Invitation.__table__.c
MARK = insert(ProcessedUpdate.__table__).values(
    update_id=bindparam("update_id"), processed_at=bindparam("now")
)
WHEN = datetime(2026, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)


def test_writes_what_core_writes_and_reads_it_back_the_same(db: Database) -> None:
    prepared = Prepared(MARK)
    with transaction(db.sessions) as connection:
        assert prepared.run(connection, {"update_id": 1, "now": WHEN}) == 1
        connection.execute(MARK, {"update_id": 2, "now": WHEN})
        assert prepared.run(connection, [{"update_id": n, "now": WHEN} for n in (3, 4)]) == 2
    when = ProcessedUpdate.__table__.c.processed_at
    by_id = ProcessedUpdate.__table__.c.update_id
    with transaction(db.sessions) as connection:
        stored = connection.execute(select(by_id, when).order_by(by_id)).all()
        # Stored the same way: Core finds the prepared row by its timestamp, and vice versa.
        assert [tuple(row) for row in stored] == [(n, WHEN) for n in (1, 2, 3, 4)]
        same_time = Prepared(select(by_id).where(when == bindparam("at")).order_by(by_id))
        assert same_time.all(connection, {"at": WHEN}) == [(1,), (2,), (3,), (4,)]
        read = Prepared(select(when).where(by_id == bindparam("id")))
        assert read.scalar(connection, {"id": 2}) == WHEN
        assert read.scalar(connection, {"id": 2}).tzinfo is not None
        assert read.scalar(connection, {"id": 99}) is None


def test_enums_constants_and_returning(db: Database) -> None:
    with session_scope(db.sessions) as session:
        consultation = factories.consultation(session)
        round_ = factories.open_round(session, consultation)
        person = factories.participant(session, 501)
        invitation_id = factories.invitation(session, round_, person).id
    start = Prepared(
        Invitation.__table__.update()
        .where(INV.id == bindparam("invitation"))
        .values(status=InvitationStatus.STARTED, started_at=bindparam("now"))
        .returning(INV.id, INV.status)
    )
    with transaction(db.sessions) as connection:
        assert start.all(connection, {"invitation": invitation_id, "now": WHEN}) == [
            (invitation_id, InvitationStatus.STARTED)
        ]
        row = connection.execute(select(INV.status, INV.started_at)).one()
        assert tuple(row) == (InvitationStatus.STARTED, WHEN)
        # An enum written into the statement as a constant, compared in SQL.
        open_rounds = Prepared(
            select(Round.__table__.c.id).where(Round.__table__.c.status == RoundStatus.OPEN)
        )
        assert open_rounds.all(connection, {}) == [(round_.id,)]
        # A float and a boolean (PostgreSQL's numeric processors need the driver's type code).
        answer = Prepared(
            insert(Answer.__table__)
            .values(
                invitation_id=bindparam("invitation"),
                question_id=bindparam("question"),
                number=bindparam("number"),
                skipped=False,
                answered_at=bindparam("now"),
            )
            .returning(Answer.__table__.c.number, Answer.__table__.c.skipped)
        )
        question_id = consultation.questions[0].id
        values = {"invitation": invitation_id, "question": question_id, "now": WHEN}
        assert answer.all(connection, {**values, "number": 2.5}) == [(2.5, False)]


def test_a_driver_error_is_sqlalchemys_and_rolls_the_transaction_back(db: Database) -> None:
    prepared = Prepared(MARK)
    with pytest.raises(IntegrityError), transaction(db.sessions) as connection:
        prepared.run(connection, {"update_id": 7, "now": WHEN})
        prepared.run(connection, {"update_id": 7, "now": WHEN})  # the primary key again
    with transaction(db.sessions) as connection:
        assert connection.scalar(select(ProcessedUpdate.__table__.c.update_id)) is None


def test_a_missing_parameter_is_an_error_not_a_null() -> None:
    from storage.db import make_engine

    engine = make_engine("sqlite://")
    ProcessedUpdate.__table__.create(engine)
    with pytest.raises(KeyError), engine.begin() as connection:
        Prepared(MARK).run(connection, {"update_id": 1})
    engine.dispose()
