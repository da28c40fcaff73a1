"""A single-use invite link on PostgreSQL, where presses run side by side: the last use goes
to exactly one of two people agreeing at the same moment, whatever the interleaving."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select, text

from bot.kernel.context import AppContext
from bot.kernel.reply import Reply
from bot.participation import joining
from bot.participation.invites import create_invite
from bot.participation.presses import ConsentPress
from storage.db import session_scope
from storage.models import Invite, Participant
from tests.conftest import Database

FIRST, SECOND = 2201, 2202


def _waiting_on_a_lock(db: Database) -> bool:
    with db.engine.connect() as connection:
        waiting = connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
        return bool(waiting.scalar())


def test_the_last_use_goes_to_one_of_two_people_agreeing_at_once(
    db: Database, ctx: AppContext
) -> None:
    if db.backend != "postgresql":
        pytest.skip("SQLite runs one writer at a time; the e2e test presses on it too")
    with session_scope(ctx.sessions) as session:
        code = create_invite(session, now=ctx.clock.now(), organisation="Tiny", max_uses=1).code
    # The first agrees and has not committed yet when the second reads the link: both saw
    # one use left.
    first = ctx.sessions()
    joining.handle_press(first, ctx, FIRST, FIRST, None, ConsentPress(True, code))
    first.flush()
    replies: list[Reply] = []

    def second() -> None:
        with session_scope(ctx.sessions) as session:
            press = ConsentPress(True, code)
            replies.append(joining.handle_press(session, ctx, SECOND, SECOND, None, press))

    thread = threading.Thread(target=second)
    thread.start()
    deadline = time.monotonic() + 10
    while not _waiting_on_a_lock(db):  # the second's write waits for the first's row lock
        assert time.monotonic() < deadline, "the second press never reached the invite row"
        time.sleep(0.01)
    first.commit()
    first.close()
    thread.join(timeout=10)
    assert not thread.is_alive()
    [reply] = replies
    assert "used as many times" in reply.messages[0].text
    with session_scope(ctx.sessions) as session:
        assert session.scalar(select(Invite.uses)) == 1
        joined = select(func.count()).where(Participant.consent_at.is_not(None))
        assert session.scalar(joined) == 1
