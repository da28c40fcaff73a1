"""Reading exports as a person sees them (bot.participation.sheets): workbook rows and column
letters, CSV lines and column numbers, Kobo's ';' and ODK's ','."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from bot.participation.sheets import SheetError, read_sheet
from tests.support import kobo


def test_a_workbook_keeps_row_numbers_and_shows_cells_as_text(tmp_path: Path) -> None:
    rows = [
        ["late", 3, 4.0, True, datetime(2026, 12, 1, 10, 5)],
        ["", "", "", "", ""],  # an empty row: left out, and the next keeps its number
        ["early", 2.5, "x", False, None],
    ]
    sheet = read_sheet(kobo.xlsx(tmp_path / "a.xlsx", ("a", "b", "c", "d", "e"), rows))
    assert sheet.workbook and sheet.header == ("a", "b", "c", "d", "e")
    assert sheet.rows == (
        (2, ("late", "3", "4", "true", "2026-12-01T10:05:00")),
        (4, ("early", "2.5", "x", "false", "")),
    )
    assert sheet.where(4, 27) == "row 4, column AB"
    assert sheet.where(4, 1) == "row 4, column B (b)"
    assert len(sheet.content_hash) == 64


@pytest.mark.parametrize("delimiter", [";", ",", "\t"])
def test_csv_lines_count_the_lines_a_quoted_cell_spans(tmp_path: Path, delimiter: str) -> None:
    path = kobo.csv_file(
        tmp_path / "a.csv",
        ("what_stopped", "told_back"),
        [["Two\nlines", "no"], ["", ""], ["One", "yes"]],
        delimiter=delimiter,
    )
    sheet = read_sheet(path)
    assert not sheet.workbook
    assert sheet.rows == ((2, ("Two\nlines", "no")), (5, ("One", "yes")))
    assert sheet.where(5, 1) == "line 5, column 2 (told_back)"


def test_csv_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes("\ufeffasked_when,told_back\nlate,no\n".encode())
    assert read_sheet(path).header == ("asked_when", "told_back")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("a.csv", b"asked_when\nd\xe9j\xe0\n", "a.csv: line 2 is not UTF-8 text"),
        ("a.xlsx", b"not a zip", "a.xlsx is not an .xlsx workbook"),
        ("a.ods", b"", "a.ods: give an .xlsx or a .csv file"),
        ("a.csv", b"", "a.csv is empty"),
    ],
)
def test_what_cannot_be_read_says_why(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(SheetError) as caught:
        read_sheet(path)
    assert str(caught.value).startswith(message)


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SheetError, match="cannot read"):
        read_sheet(tmp_path / "nowhere.csv")
