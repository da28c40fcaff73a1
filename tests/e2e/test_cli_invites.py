"""`consultbot invites create|list|revoke` through the real command, and a link made there
redeemed in chat."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import select

from storage.db import session_scope
from storage.models import Invite, Participant, Role
from tests.conftest import Database
from tests.support.cli_run import consultbot
from tests.support.harness import BotHarness

MEMBER = 5101


def _env(db: Database) -> dict[str, str]:
    return {"CONSULTBOT_DATABASE__URL": db.url}


def _code(stdout: str) -> str:
    match = re.search(r"invite (\S+) for", stdout)
    assert match, stdout
    return match.group(1)


def test_create_list_revoke(db: Database, tmp_path: Path) -> None:
    env = _env(db)
    made = consultbot(
        "invites", "create", "--org", "Riverside Food Bank", "--role", "lead",
        "--days", "14", "--uses", "3", "--bot-username", "@consult_test_bot",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    code = _code(made.stdout)
    assert f"https://t.me/consult_test_bot?start={code}" in made.stdout

    group = consultbot("invites", "create", "--group", "Northside carers", cwd=tmp_path, env=env)
    assert group.returncode == 0, group.stderr
    group_code = _code(group.stdout)
    assert "--bot-username" in group.stderr and "t.me" not in group.stdout

    with session_scope(db.sessions) as session:
        invite = session.scalar(select(Invite).where(Invite.code == code))
        assert invite is not None and invite.role == Role.LEAD and invite.max_uses == 3
        assert invite.expires_at is not None

    listed = consultbot("invites", "list", cwd=tmp_path, env=env)
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.splitlines()[1:]}
    assert "org: Riverside Food Bank" in lines[code] and "0/3" in lines[code]
    assert lines[code].rstrip().endswith("no")
    assert "group: Northside carers" in lines[group_code] and "0/-" in lines[group_code]

    revoked = consultbot("invites", "revoke", "--", code, cwd=tmp_path, env=env)
    assert revoked.returncode == 0, revoked.stderr
    after = {
        line.split()[0]: line
        for line in consultbot("invites", "list", cwd=tmp_path, env=env).stdout.splitlines()[1:]
    }
    assert not after[code].rstrip().endswith("no")
    again = consultbot("invites", "revoke", "--", code, cwd=tmp_path, env=env)
    assert again.returncode == 1 and "no active invite" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_usage_errors_are_one_line(db: Database, tmp_path: Path) -> None:
    env = _env(db)
    for args in (
        ["invites", "create"],
        ["invites", "create", "--org", "A", "--group", "B"],
        ["invites", "create", "--org", "A", "--role", "coordinator"],
    ):
        result = consultbot(*args, cwd=tmp_path, env=env)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr
    bad_days = consultbot("invites", "create", "--org", "A", "--days", "0", cwd=tmp_path, env=env)
    assert bad_days.returncode == 2
    empty = consultbot("invites", "list", cwd=tmp_path, env=env)
    assert empty.returncode == 0 and "no invites yet" in empty.stdout


async def test_cli_invite_redeemed_in_chat(
    harness: BotHarness, db: Database, tmp_path: Path
) -> None:
    made = consultbot(
        "invites", "create", "--org", "Hillside Youth Club", "--bot-username", "consult_test_bot",
        cwd=tmp_path, env=_env(db),
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    code = _code(made.stdout)
    notice = await harness.say(MEMBER, f"/start {code}")
    assert "Hillside Youth Club" in notice.text
    harness.standin.press(MEMBER, notice, "Agree")
    await harness.standin.wait_for_message(MEMBER, predicate=lambda m: "part of town" in m.text)
    with session_scope(harness.ctx.sessions) as session:
        person = session.scalar(select(Participant).where(Participant.telegram_user_id == MEMBER))
        assert person is not None and person.consent_at is not None
        assert person.organisation is not None and person.organisation.name == "Hillside Youth Club"
        invite = session.scalar(select(Invite).where(Invite.code == code))
        assert invite is not None and invite.uses == 1
    listed = consultbot("invites", "list", cwd=tmp_path, env=_env(db))
    assert "1/-" in next(line for line in listed.stdout.splitlines() if line.startswith(code))
