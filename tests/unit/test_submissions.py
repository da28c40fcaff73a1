"""Sheets of answers gathered elsewhere, checked against the form (bot.participation.submissions):
what each cell means, and every problem with its row and column."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.participation.submissions import Checked, Given, check
from storage.models import Question
from tests.support import kobo

LIMIT = 800


@pytest.fixture
def form(tmp_path: Path) -> list[Question]:
    return kobo.questions(tmp_path)


def run(form: list[Question], header: tuple[str, ...], *rows: list[object]) -> Checked:
    return check(kobo.sheet(header, rows), form, text_limit=LIMIT)


def given(checked: Checked, row: int = 0) -> dict[str, Given]:
    return {q.key: g for q, g in checked.submissions[row].answers}


PLAIN = kobo.PLAIN_HEADER


def test_a_kobo_export_reads_groups_metadata_and_option_columns(form: list[Question]) -> None:
    submissions = kobo.answers(6)
    checked = run(form, kobo.KOBO_HEADER, *kobo.kobo_rows(submissions))
    assert checked.problems == []
    assert checked.channel == "kobo"
    assert [s.key for s in checked.submissions][:2] == [
        "uuid:6b9e0f1c-0000-4000-8000-000000000000",
        "uuid:6b9e0f1c-0000-4000-8000-000000000001",
    ]
    first = given(checked)
    assert first["asked_when"] == Given(keys=("early",))
    assert first["equal_partner"] == Given(number=1.0)
    assert first["barriers"] == Given(keys=("funding", "red_tape"))
    assert first["told_back"] == Given(keys=("yes",))
    assert "what_stopped" not in first  # not asked: told_back is yes
    assert first["anything_else"] == Given(skipped=True)  # optional, left empty
    second = given(checked, 1)
    assert second["what_stopped"] == Given(text=kobo.STOPPED[1])
    assert second["anything_else"] == Given(text="Thank you for asking")


def test_odk_central_names_groups_with_hyphens_and_its_key_is_the_instance_id(
    form: list[Question],
) -> None:
    header = ("SubmissionDate", "g-asked_when", *PLAIN[1:], "meta-instanceID", "KEY", "Status")
    rows = [[" 2026-12-01", *kobo.plain_rows(kobo.answers(1))[0][:], "uuid:abc", "uuid:abc", ""]]
    checked = run(form, header, *rows)
    assert checked.problems == []
    assert checked.channel == "odk"
    assert checked.submissions[0].key == "uuid:abc"


def test_kobo_uuid_alone_is_the_same_key_as_the_instance_id(form: list[Question]) -> None:
    rows = kobo.plain_rows(kobo.answers(1))
    with_uuid = run(form, (*PLAIN, "_uuid"), [*rows[0], "abc"])
    with_instance = run(form, (*PLAIN, "meta/instanceID"), [*rows[0], "uuid:abc"])
    assert with_uuid.submissions[0].key == with_instance.submissions[0].key == "uuid:abc"


def test_a_sheet_without_ids_is_keyed_by_file_and_row(form: list[Question]) -> None:
    checked = run(form, PLAIN, *kobo.plain_rows(kobo.answers(2)))
    assert checked.channel == "paper"
    first, second = (s.key for s in checked.submissions)
    assert first.startswith("row:") and second.startswith("row:") and first != second


def test_option_columns_alone_give_the_choices(form: list[Question]) -> None:
    header = tuple(n for n in kobo.KOBO_HEADER if n != "barriers")
    rows = [r[:4] + r[5:] for r in kobo.kobo_rows(kobo.answers(2))]
    checked = run(form, header, *rows)
    assert checked.problems == []
    assert given(checked)["barriers"] == Given(keys=("funding", "red_tape"))


def test_option_columns_that_disagree_are_named(form: list[Question]) -> None:
    rows = kobo.kobo_rows(kobo.answers(1))
    rows[0][6] = 0  # barriers/red_tape, which column E lists
    rows[0][7] = "maybe"  # barriers/not_told
    checked = run(form, kobo.KOBO_HEADER, *rows)
    assert checked.problems == [
        "row 2, column G (barriers/red_tape): says red_tape was not chosen, but column E "
        "(barriers) lists funding red_tape",
        "row 2, column H (barriers/not_told): 'maybe' is not 1 or 0",
    ]


@pytest.mark.parametrize(
    ("column", "cell", "problem"),
    [
        (
            0,
            "After decisions are made",
            "'After decisions are made' looks like a label; export with XML values (here: late)",
        ),
        (0, "sometimes", "'sometimes': not an option of asked_when (its options: early late "),
        (0, "LATE", None),
        (1, "7", "7 is outside the scale, 1 to 5"),
        (1, "2.5", "'2.5' is not a whole number from 1 to 5"),
        (1, "Fully equal", "'Fully equal' looks like a label; export with XML values (a number"),
        (1, "4.0", None),
        (2, "funding,red_tape", "separate the choices with spaces, as Kobo and ODK do"),
        (
            2,
            "Short-term or late funding; Too many forms and checks",
            "looks like a label; export with XML values (here: funding red_tape)",
        ),
        (
            2,
            "Too many forms and checks Short-term or late funding",
            "looks like a label; export with XML values (here: funding red_tape)",
        ),
        (2, "none funding", "none goes alone: it cannot be chosen with funding"),
        (2, "funding lunch", "'lunch': not an option of barriers"),
        (2, "funding  funding", None),
        (3, "Yes", None),
        (3, "true", "'true': not an option of told_back (its options: yes no)"),
        (5, "x" * 301, "too long: 301 characters, at most 300"),
    ],
)
def test_each_kind_of_cell(
    form: list[Question], column: int, cell: str, problem: str | None
) -> None:
    row = kobo.plain_rows(kobo.answers(1))[0]
    row[column] = cell
    checked = run(form, PLAIN, row)
    if problem is None:
        assert checked.problems == []
        return
    letter = "ABCDEF"[column]
    assert len(checked.problems) == 1, checked.problems
    assert checked.problems[0].startswith(f"row 2, column {letter} ({PLAIN[column]}): ")
    assert problem in checked.problems[0]


def test_a_branch_not_taken_must_be_empty_and_one_taken_filled(form: list[Question]) -> None:
    yes, no = kobo.plain_rows(kobo.answers(2))  # told_back: yes, then no
    yes[4] = "Nobody wrote back"
    no[4] = ""
    checked = run(form, PLAIN, yes, no)
    assert checked.problems == [
        "row 2, column E (what_stopped): should be empty: asked only when ${told_back} = 'no'",
        "row 3, column E (what_stopped): empty, but the question is required (asked, as "
        "${told_back} = 'no')",
    ]


def test_a_branch_on_a_wrong_cell_is_not_judged(form: list[Question]) -> None:
    """told_back is wrong, so whether what_stopped was asked is unknown: one problem, not two."""
    row = kobo.plain_rows(kobo.answers(1))[0]
    row[3] = "perhaps"
    row[4] = "Nobody wrote back"
    checked = run(form, PLAIN, row)
    assert [p.split(":")[0] for p in checked.problems] == ["row 2, column D (told_back)"]


def test_every_problem_of_the_header_and_the_rows_at_once(form: list[Question]) -> None:
    header = ("asked_when", "equal_partner", "told_back", "favourite_colour", "", "asked_when")
    rows = [
        ["late", "9", "no", "blue", "", "late", "stray"],
        ["", "3", "yes", "", "note", "", ""],
    ]
    checked = run(form, header, *rows)
    assert checked.problems == [
        "row 1: no column for barriers, a required question",
        "row 1: no column for what_stopped, a required question",
        "row 1, column D (favourite_colour): not a question of this round's form, nor Kobo's "
        "or ODK's",
        "row 1, column E: a column without a name holds answers (row 3)",
        "row 1, column F (asked_when): a second column for asked_when (first: A)",
        "row 2, column B (equal_partner): 9 is outside the scale, 1 to 5",
        "row 2, column G: a cell right of the last named column",
        "row 3, column A (asked_when): empty, but the question is required",
    ]


def test_the_same_submission_twice_in_a_file(form: list[Question]) -> None:
    row = kobo.plain_rows(kobo.answers(1))[0]
    checked = run(form, (*PLAIN, "_uuid"), [*row, "abc"], [*row, "uuid:abc"])
    assert checked.problems == ["row 3, column G (_uuid): the same submission as row 2"]


def test_csv_places_are_lines_and_column_numbers(form: list[Question]) -> None:
    row = kobo.plain_rows(kobo.answers(1))[0]
    row[1] = "six"
    sheet = kobo.sheet(PLAIN, [row], workbook=False)
    checked = check(sheet, form, text_limit=LIMIT)
    assert checked.problems == [
        "line 2, column 2 (equal_partner): 'six' is not a whole number from 1 to 5"
    ]


def test_text_is_held_to_the_deployment_limit_too(form: list[Question]) -> None:
    row = kobo.plain_rows(kobo.answers(1))[0]
    row[5] = "y" * 120
    checked = check(kobo.sheet(PLAIN, [row]), form, text_limit=100)
    assert checked.problems == [
        "row 2, column F (anything_else): too long: 120 characters, at most 100"
    ]
