"""`consultbot consultations validate | import | export` with XLSForm spreadsheets, through the
installed entry point: what a coordinator at a terminal sees, and what ends up in the database."""

from __future__ import annotations

from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy import func, select

from storage.db import session_scope
from storage.models import Consultation
from tests.conftest import Database
from tests.support.cli_run import consultbot

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "consultations"
STARTER = TEMPLATES / "xlsform" / "first-consultation.xlsx"


def broken_copy(tmp_path: Path) -> Path:
    """The starter with three mistakes a coordinator might make, in three places."""
    book = load_workbook(STARTER)
    survey, choices = book["survey"], book["choices"]
    survey["A4"] = "begin_group"  # the scale becomes a group
    survey["F6"] = "${nowhere} = 'x'"  # a condition on no question
    choices["C2"] = "An option label that will never fit on a button"
    out = tmp_path / "broken.xlsx"
    book.save(out)
    return out


def count(db: Database) -> int:
    with session_scope(db.sessions) as session:
        return session.scalar(select(func.count()).select_from(Consultation)) or 0


def test_validate_prints_the_flow_and_every_branch(tmp_path: Path) -> None:
    shown = consultbot("consultations", "validate", str(TEMPLATES / "xlsform"), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert (
        "ok  " in shown.stdout and "hearing-back.xlsx: hearing-back v1, 3 questions" in shown.stdout
    )
    assert "2. how_useful (scale 1-5)  asked when ${told} = 'yes'" in shown.stdout
    assert "3. wanted (text, optional)  asked when ${told} = 'no' or ${how_useful} <= 2" in (
        shown.stdout
    )
    assert "branches: 2. how_useful is asked when ${told} = 'yes'" in shown.stdout


def test_the_default_folder_holds_each_set_once(tmp_path: Path) -> None:
    """The .xlsx copies sit in a folder below the TOML sources, so neither validate nor import
    of the configured folder sees a set twice."""
    shown = consultbot("consultations", "validate", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    oks = [line for line in shown.stdout.splitlines() if line.startswith("ok  ")]
    assert len(oks) == 4 and all(".toml:" in line for line in oks)


def test_every_error_of_a_spreadsheet_at_once_and_nothing_stored(
    db: Database, tmp_path: Path
) -> None:
    env = {"CONSULTBOT_DATABASE__URL": db.url}
    bad = broken_copy(tmp_path)
    for command in ("validate", "import"):
        refused = consultbot(
            "consultations", command, str(bad), str(STARTER), cwd=tmp_path, env=env
        )
        assert refused.returncode == 2
        assert refused.stdout == ""
        assert refused.stderr.splitlines() == [
            f"{bad}: survey row 4, column A (type): begin_group: groups show several questions "
            "on one screen; a chat asks one question at a time",
            f"{bad}: survey row 6, column F (relevant): ${{nowhere}} is not a question asked "
            "before this one (at character 1)",
            f"{bad}: choices row 2, column C (label): at most 40 characters (got 47)",
        ]
    assert count(db) == 0


def test_import_export_and_import_again_is_unchanged(db: Database, tmp_path: Path) -> None:
    env = {"CONSULTBOT_DATABASE__URL": db.url}
    imported = consultbot("consultations", "import", str(STARTER), cwd=tmp_path, env=env)
    assert imported.returncode == 0, imported.stderr
    assert "imported  first-consultation (id 1)" in imported.stdout

    out = tmp_path / "exported.xlsx"
    exported = consultbot(
        "consultations", "export", "first-consultation", "--out", str(out), cwd=tmp_path, env=env
    )
    assert exported.returncode == 0, exported.stderr
    assert f"wrote {out}: first-consultation v1, 4 questions" in exported.stdout
    again = consultbot("consultations", "import", str(out), cwd=tmp_path, env=env)
    assert "unchanged  first-consultation (id 1)" in again.stdout
    assert count(db) == 1

    # By numeric id too; an existing file is kept unless --force says otherwise.
    kept = consultbot("consultations", "export", "1", "--out", str(out), cwd=tmp_path, env=env)
    assert kept.returncode == 2 and "exists: add --force" in kept.stderr
    forced = consultbot(
        "consultations", "export", "1", "--out", str(out), "--force", cwd=tmp_path, env=env
    )
    assert forced.returncode == 0, forced.stderr
    missing = consultbot(
        "consultations", "export", "nothing-here", "--out", str(tmp_path / "n.xlsx"),
        cwd=tmp_path, env=env,
    )  # fmt: skip
    assert missing.returncode == 1 and "no consultation 'nothing-here'" in missing.stderr
    assert not (tmp_path / "n.xlsx").exists()


def test_a_toml_set_exports_to_a_spreadsheet_that_imports_back(
    db: Database, tmp_path: Path
) -> None:
    env = {"CONSULTBOT_DATABASE__URL": db.url}
    toml = TEMPLATES / "hearing-back.toml"
    assert consultbot("consultations", "import", str(toml), cwd=tmp_path, env=env).returncode == 0
    out = tmp_path / "hearing-back.xlsx"
    assert (
        consultbot(
            "consultations", "export", "hearing-back", "--out", str(out), cwd=tmp_path, env=env
        ).returncode
        == 0
    )
    again = consultbot("consultations", "import", str(out), cwd=tmp_path, env=env)
    assert again.returncode == 0 and "unchanged  hearing-back" in again.stdout
