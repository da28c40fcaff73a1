"""`consultbot consultations ...` and `consultbot rounds ...` from a shell: the same services
the chat uses, with one-line errors and the documented exit codes."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from storage.db import session_scope
from storage.models import AuditEvent, EventKind, Round, RoundStatus, Schedule, ScheduledEvent
from tests.conftest import Database
from tests.support.cli_run import consultbot


def test_consultations_validate_import_list(db: Database, tmp_path: Path) -> None:
    env = {"CONSULTBOT_DATABASE__URL": db.url}
    ok = consultbot("consultations", "validate", cwd=tmp_path, env=env)
    assert ok.returncode == 0 and "partnership-health-check" in ok.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('id = "x"\nversion = 1\ntitle = "T"\nintro = "i"\nestimated_minutes = 99\n')
    invalid = consultbot("consultations", "validate", str(bad), cwd=tmp_path, env=env)
    assert invalid.returncode == 2
    assert f"{bad}:" in invalid.stderr and "estimated_minutes" in invalid.stderr
    imported = consultbot("consultations", "import", cwd=tmp_path, env=env)
    assert imported.returncode == 0 and "imported" in imported.stdout
    again = consultbot("consultations", "import", cwd=tmp_path, env=env)
    assert "unchanged" in again.stdout and "imported " not in again.stdout
    listed = consultbot("consultations", "list", cwd=tmp_path, env=env)
    assert "partnership-health-check" in listed.stdout


def test_rounds_schedule_list_show_close_cancel(db: Database, tmp_path: Path) -> None:
    env = {"CONSULTBOT_DATABASE__URL": db.url}
    assert consultbot("consultations", "import", cwd=tmp_path, env=env).returncode == 0
    monthly = consultbot(
        "rounds",
        "schedule",
        "--consultation",
        "partnership-health-check",
        "--audience",
        "organisations",
        "--where",
        "area=north",
        "--cron",
        "0 9 1-7 * mon",
        "--open-for",
        "10d",
        "--remind",
        "2d",
        cwd=tmp_path,
        env=env,
    )
    assert monthly.returncode == 0, monthly.stderr
    assert "schedule 1: first round 1 opens" in monthly.stdout and "area North" in monthly.stdout
    once = consultbot(
        "rounds",
        "schedule",
        "--consultation",
        "partnership-health-check",
        "--at",
        "2099-03-02 09:00",
        "--open-for",
        "3d",
        cwd=tmp_path,
        env=env,
    )
    assert once.returncode == 0 and "round 2 opens 2099-03-02 09:00 GMT" in once.stdout
    assert "scheduled" in consultbot("rounds", "list", cwd=tmp_path, env=env).stdout
    assert "invited 0" in consultbot("rounds", "show", "2", cwd=tmp_path, env=env).stdout
    assert consultbot("rounds", "cancel", "2", cwd=tmp_path, env=env).returncode == 0
    twice = consultbot("rounds", "cancel", "2", cwd=tmp_path, env=env)
    assert twice.returncode == 1 and "already cancelled" in twice.stderr
    assert consultbot("rounds", "close", "1", cwd=tmp_path, env=env).returncode == 0
    missing = consultbot("rounds", "remind", "99", cwd=tmp_path, env=env)
    assert missing.returncode == 1 and "no round 99" in missing.stderr
    usage = consultbot("rounds", "schedule", "--consultation", "x", cwd=tmp_path, env=env)
    assert usage.returncode == 2 and "exactly one of" in usage.stderr
    with session_scope(db.sessions) as s:
        schedule = s.scalar(select(Schedule))
        assert schedule is not None and schedule.cron == "0 9 1-7 * mon"
        kinds = {
            e.kind for e in s.scalars(select(ScheduledEvent).where(ScheduledEvent.round_id == 1))
        }
        assert kinds == {
            EventKind.OPEN_ROUND,
            EventKind.REMIND,
            EventKind.CLOSE_ROUND,
            EventKind.PLAN_NEXT,
        }
        assert [r.status for r in s.scalars(select(Round).order_by(Round.id))] == [
            RoundStatus.CLOSED,
            RoundStatus.CANCELLED,
        ]
        assert {"schedule.create", "round.schedule", "round.cancel", "round.close"} <= set(
            s.scalars(select(AuditEvent.action))
        )


def test_rounds_schedule_warns_when_the_audience_is_not_the_one_the_set_is_written_for(
    db: Database, tmp_path: Path
) -> None:
    env = {"CONSULTBOT_DATABASE__URL": db.url}
    assert consultbot("consultations", "import", cwd=tmp_path, env=env).returncode == 0
    plan = ("rounds", "schedule", "--consultation", "partnership-health-check", "--now")
    # The organisations' health check for everyone: warned, and nothing scheduled unless
    # the admin confirms with --yes.
    warned = consultbot(*plan, "--audience", "everyone", cwd=tmp_path, env=env)
    assert warned.returncode == 2, warned.stdout
    assert "written for organisations" in warned.stderr and "service users" in warned.stderr
    assert "--yes" in warned.stderr
    with session_scope(db.sessions) as s:
        assert s.scalar(select(Round)) is None
    confirmed = consultbot(*plan, "--audience", "everyone", "--yes", cwd=tmp_path, env=env)
    assert confirmed.returncode == 0, confirmed.stderr
    assert "written for organisations" in confirmed.stderr
    assert "round 1 opens" in confirmed.stdout
    # Its own audience, given or by default: no warning.
    for given in ((), ("--audience", "organisations")):
        plain = consultbot(*plan, *given, cwd=tmp_path, env=env)
        assert plain.returncode == 0 and "written for" not in plain.stderr, plain.stderr
        assert "audience: organisations" in plain.stdout
    with session_scope(db.sessions) as s:
        audiences = [r.audience["who"] for r in s.scalars(select(Round).order_by(Round.id))]
        assert audiences == ["everyone", "organisations", "organisations"]
