"""Several `consultbot run` hosts on one database behind a round-robin forwarder, receiving
updates by webhook from the Bot API stand-in (issue 13, items 23-25)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Connection, func, select, text

from standin import BotApiStandIn
from standin.models import BotMessage
from storage.db import session_scope
from storage.models import Answer, InboxUpdate, InvitationStatus
from tests.conftest import Database
from tests.support import factories
from tests.support.hosts import Host, behind_a_forwarder

ERROR_REPLY = "something went wrong"


async def test_hosts_without_a_shared_secret_accept_each_others_updates(
    db: Database, standin: BotApiStandIn, tmp_path: Path
) -> None:
    """No CONSULTBOT_WEBHOOK_SECRET: each host derives the same secret from the token, so the
    one whose setWebhook came last does not leave the others refusing every update (403)."""
    users = range(7001, 7021)
    async with behind_a_forwarder(2, db.url, standin, tmp_path) as (forwarder, hosts):
        for user in users:
            standin.send_text(user, "/start")
        for user in users:
            hello = await standin.wait_for_message(user, after=0, timeout=30)
            assert "invite link" in hello.text
    assert standin.stats.webhook_failures == 0, forwarder.answered
    assert forwarder.answered == {(0, 200): 10, (1, 200): 10}
    for host in hosts:
        assert "without the right secret" not in host.output
        assert host.process is not None and host.process.returncode == 0, host.output


def _started_round(db: Database, people: range) -> dict[int, int]:
    """Everyone in `people` has joined and started a round of the health check: their
    invitation id each."""
    with session_scope(db.sessions) as s:
        consultation = factories.consultation(s)
        org = factories.organisation(s, "North", area="north")
        round_ = factories.open_round(s, consultation)
        return {
            user: factories.invitation(
                s,
                round_,
                factories.participant(s, user, organisation=org),
                status=InvitationStatus.STARTED,
            ).id
            for user in people
        }


async def _until(
    check: Callable[[], object], what: str, hosts: list[Host], timeout: float = 60
) -> None:
    """Wait for `check()`; failing, say what the hosts last logged."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            logs = "\n".join("".join(host.lines[-30:]) for host in hosts)
            raise AssertionError(f"never: {what}; the hosts last logged:\n{logs}")
        await asyncio.sleep(0.02)


def _waiting_on_locks(connection: Connection) -> int:
    """Sessions of this database waiting for a lock (a row's, a transaction's, an advisory)."""
    return int(
        connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
        or 0
    )


async def test_a_double_tap_split_across_two_hosts_is_saved_once_and_answered(
    postgres_db: Database, standin: BotApiStandIn, tmp_path: Path
) -> None:
    """Each person taps an answer twice; the forwarder gives the taps to different hosts. The
    first is saved and the card moves on, the second hears "Already saved", as on one host:
    never the error reply, never an ERROR in a log.

    For the first three people both taps are held inside their transactions until both have
    arrived (the test holds the invitation's row, which storing an answer must lock), so the
    two hosts decide at the same moment every time; the rest tap freely, all at once."""
    db = postgres_db
    people = range(8001, 8011)
    invitations = _started_round(db, people)
    async with behind_a_forwarder(2, db.url, standin, tmp_path) as (forwarder, hosts):
        cards: dict[int, BotMessage] = {}
        for user in people:
            standin.send_text(user, "/resume")
            cards[user] = await standin.wait_for_message(
                user, predicate=lambda m: bool(m.buttons), timeout=30
            )

        def tap_twice(user: int) -> None:
            data = cards[user].buttons[0]["callback_data"]
            for _ in range(2):
                standin.press_button(user, cards[user].message_id, data)

        def toasts(user: int) -> list[str | None]:
            return [a.text for a in standin.callback_answers if a.user_id == user]

        def answered_twice(user: int) -> Callable[[], bool]:
            return lambda: len(toasts(user)) == 2

        for user in people[:3]:
            with db.engine.connect() as holder:
                holder.execute(
                    text("SELECT id FROM invitations WHERE id = :id FOR UPDATE"),
                    {"id": invitations[user]},
                )
                tap_twice(user)
                with db.engine.connect() as watcher:
                    await _until(lambda: _waiting_on_locks(watcher) >= 2, "both taps held", hosts)
                holder.commit()
            await _until(answered_twice(user), f"both taps of {user} answered", hosts)
        for user in people[3:]:
            tap_twice(user)
        for user in people:
            await _until(answered_twice(user), f"both taps of {user} answered", hosts)
    for user in people:
        assert sorted(toasts(user), key=lambda t: t or "") == [None, "Already saved ✓"], user
        assert not [m.text for m in standin.messages(user) if ERROR_REPLY in m.text]
        assert "2 of 6" in standin.messages(user)[-1].text, "the card moved on to question 2"
    with session_scope(db.sessions) as s:
        counted = select(Answer.invitation_id, func.count()).group_by(Answer.invitation_id)
        per_invitation = {invitation: n for invitation, n in s.execute(counted)}
    assert per_invitation == dict.fromkeys(invitations.values(), 1)
    assert sum(n for (_, status), n in forwarder.answered.items() if status == 200) >= 20
    for host in hosts:
        assert " ERROR " not in host.output and "Traceback" not in host.output, host.output
        assert host.process is not None and host.process.returncode == 0, host.output


async def test_updates_acknowledged_before_a_kill_9_are_processed_after_the_restart(
    postgres_db: Database, standin: BotApiStandIn, tmp_path: Path
) -> None:
    """Twenty updates reach two hosts and are acknowledged (200) while none can be processed
    yet (the test holds the table their claims write to); one host is killed with SIGKILL
    and started again. Every update is processed: the ten who pressed an answer see the card
    move on, the ten who sent /start are answered, each once. Before, the killed host's
    acknowledged updates were lost: Telegram never sends an acknowledged update again."""
    db = postgres_db
    pressers, newcomers = range(9001, 9011), range(9101, 9111)
    _started_round(db, pressers)
    async with behind_a_forwarder(2, db.url, standin, tmp_path) as (forwarder, hosts):
        cards: dict[int, BotMessage] = {}
        for user in pressers:
            standin.send_text(user, "/resume")
            cards[user] = await standin.wait_for_message(
                user, predicate=lambda m: bool(m.buttons), timeout=30
            )
        sent = {user: len(standin.messages(user)) for user in [*pressers, *newcomers]}
        forwarder.answered.clear()
        with db.engine.connect() as holder:
            # Claims (the processed-update markers) wait; the inbox and reads do not.
            holder.execute(text("LOCK TABLE processed_updates IN SHARE MODE"))
            for user in pressers:
                card = cards[user]
                standin.press_button(user, card.message_id, card.buttons[0]["callback_data"])
            for user in newcomers:
                standin.send_text(user, "/start")
            await _until(lambda: standin.pending_updates == 0, "every update acknowledged", hosts)
            await hosts[0].kill()
            holder.commit()
        acknowledged_by_killed = forwarder.answered[(0, 200)]
        await hosts[0].start()
        for user in pressers:
            await standin.wait_for_message(
                user, after=0, predicate=lambda m: "2 of 6" in m.text, timeout=60
            )
        for user in newcomers:
            hello = await standin.wait_for_message(user, after=0, timeout=60)
            assert "invite link" in hello.text
        with session_scope(db.sessions) as s:
            await _until(
                lambda: s.scalar(select(func.count()).select_from(InboxUpdate)) == 0,
                "every row of the inbox processed",
                hosts,
            )
    assert acknowledged_by_killed == 10, forwarder.answered
    with session_scope(db.sessions) as s:
        assert s.scalar(select(func.count()).select_from(Answer)) == len(pressers)
    for user in newcomers:
        assert len(standin.messages(user)) == sent[user] + 1, "answered once"
    for user in pressers:
        assert len(standin.messages(user)) == sent[user], "the card was edited, nothing more"
    assert " ERROR " not in hosts[1].output and "Traceback" not in hosts[1].output
