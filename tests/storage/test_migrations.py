"""The "stairway": every migration walks up and back down, and the newest schema is exactly what
the models describe, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url

from storage import migrate
from storage.db import make_engine
from storage.models import Base
from tests.conftest import POSTGRES_URL_ENV, skip_postgres


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'walk.sqlite3'}")
        yield engine
        engine.dispose()
        return
    base_url = os.environ.get(POSTGRES_URL_ENV)
    if not base_url:
        skip_postgres()
    name = f"consultbot_walk_{uuid.uuid4().hex[:8]}"
    admin = make_engine(base_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(base_url).set(database=name).render_as_string(False))
    yield engine
    engine.dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_every_migration_walks_up_and_down(empty_engine: Engine) -> None:
    revisions = migrate.revisions_base_to_head()
    assert revisions, "there must be at least one migration"
    for revision in revisions:
        migrate.upgrade(empty_engine, revision)
        assert migrate.current_revision(empty_engine) == revision
        # Down one step and up again: each downgrade must undo its upgrade exactly.
        migrate.downgrade(empty_engine, "-1")
        migrate.upgrade(empty_engine, revision)
    assert _tables(empty_engine) == set(Base.metadata.tables)
    migrate.downgrade(empty_engine, "base")
    assert _tables(empty_engine) == set()
    assert migrate.current_revision(empty_engine) is None


def test_newest_migration_matches_the_models(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine)
    with empty_engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    assert differences == [], f"models and migrations disagree; write a migration: {differences}"


def test_0004_purges_finished_payloads_and_keeps_pending_ones(empty_engine: Engine) -> None:
    migrate.upgrade(empty_engine, "0003")
    payload = json.dumps({"text": "Funding comes late, said someone"})
    with empty_engine.begin() as connection:
        for ident, status in enumerate(("pending", "sending", "sent", "failed", "cancelled"), 1):
            connection.execute(
                text(
                    "INSERT INTO deliveries (id, chat_id, kind, payload, status, attempts,"
                    " next_attempt_at, created_at) VALUES (:id, 1, 'digest', :payload, :status,"
                    " 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"id": ident, "payload": payload, "status": status},
            )
    migrate.upgrade(empty_engine, "0004")
    with empty_engine.connect() as connection:
        rows = connection.execute(text("SELECT status, payload FROM deliveries")).all()
    # PostgreSQL's driver reads JSON; SQLite's gives the stored text.
    kept = {
        status: json.loads(value) if isinstance(value, str) else value for status, value in rows
    }
    assert kept["pending"] == kept["sending"] == json.loads(payload), "still to be sent"
    assert kept["sent"] == kept["failed"] == kept["cancelled"] == {"purged": True}
    migrate.downgrade(empty_engine, "0003")  # a no-op: the text cannot come back
    assert migrate.current_revision(empty_engine) == "0003"


def test_0008_keeps_every_answer_and_enforces_foreign_keys_again(empty_engine: Engine) -> None:
    """0008 copies `invitations` on SQLite (its participant becomes optional): the answers
    that refer to it stay, and foreign keys are enforced again afterwards. Down again, the
    anonymous imported submissions go with their answers; everyone else's stay."""
    migrate.upgrade(empty_engine, "0006")
    at = "'2026-12-01 10:00:00+00:00'"
    rows = [
        "INSERT INTO organisations (id, name, created_at) VALUES (1, 'Alder Trust', {at})",
        "INSERT INTO participants (id, telegram_user_id, role, status, profile, created_at,"
        " updated_at) VALUES (1, 77, 'member', 'active', '{{}}', {at}, {at})",
        "INSERT INTO consultations (id, slug, version, title, intro, estimated_minutes,"
        " content_hash, spec, imported_at, retired) VALUES (1, 's', 1, 'T', '', 3, 'h', '{{}}',"
        " {at}, false)",
        "INSERT INTO questions (id, consultation_id, key, position, type, text, required,"
        " options, coding) VALUES (1, 1, 'q', 0, 'text', 'Q?', true, '[]', '{{}}')",
        "INSERT INTO rounds (id, consultation_id, audience, status, opens_at, closes_at,"
        " remind_before_seconds, created_at) VALUES (1, 1, '{{}}', 'open', {at}, {at}, '[]',"
        " {at})",
        "INSERT INTO invitations (id, round_id, participant_id, status, segment, invited_at)"
        " VALUES (1, 1, 1, 'completed', '{{}}', {at})",
        "INSERT INTO answers (id, invitation_id, question_id, text, skipped, answered_at)"
        " VALUES (1, 1, 1, 'Funding comes late', false, {at})",
    ]
    with empty_engine.begin() as connection:
        for row in rows:
            connection.execute(text(row.format(at=at)))
    migrate.upgrade(empty_engine, "0008")
    with empty_engine.begin() as connection:
        assert connection.execute(text("SELECT text FROM answers")).scalars().all() == [
            "Funding comes late"
        ]
        assert connection.execute(text("SELECT channel FROM invitations")).scalar() == "chat"
        connection.execute(
            text(
                "INSERT INTO invitations (id, round_id, status, segment, invited_at, channel,"
                f" submission_key) VALUES (2, 1, 'completed', '{{}}', {at}, 'kobo', 'uuid:1')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO answers (id, invitation_id, question_id, text, skipped,"
                f" answered_at) VALUES (2, 2, 1, 'On paper', false, {at})"
            )
        )
    if empty_engine.dialect.name == "sqlite":
        with empty_engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    migrate.downgrade(empty_engine, "0006")
    with empty_engine.connect() as connection:
        assert connection.execute(text("SELECT id FROM invitations")).scalars().all() == [1]
        assert connection.execute(text("SELECT text FROM answers")).scalars().all() == [
            "Funding comes late"
        ]
