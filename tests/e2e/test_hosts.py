"""Several `consultbot run` hosts on one database behind a round-robin forwarder, receiving
updates by webhook from the Bot API stand-in (issue 13, items 23-25)."""

from __future__ import annotations

from pathlib import Path

from standin import BotApiStandIn
from tests.conftest import Database
from tests.support.hosts import behind_a_forwarder


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
