"""Spreadsheets of answers gathered elsewhere, read as text: an .xlsx workbook's first sheet
(openpyxl) or a .csv file (the csv module), header on the first row, one submission a row, as
KoboToolbox and ODK export them. What the cells mean is decided by bot.participation.imported.

Every cell keeps where a person finds it: a workbook's row number and column letter, a CSV
file's line and column number (a quoted cell may span lines: a record is found on the line
it starts on).
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException

# Kobo exports CSV with ';' between cells by default, ODK Central with ','.
_DELIMITERS = (",", ";", "\t")


class SheetError(Exception):
    """The file cannot be read as a sheet of answers; the text says why, for people."""


@dataclass(frozen=True)
class Sheet:
    name: str  # the file's name, for messages
    workbook: bool  # .xlsx: rows and column letters; .csv: lines and column numbers
    header: tuple[str, ...]
    # (row or line number, its cells as text), rows with nothing in them left out
    rows: tuple[tuple[int, tuple[str, ...]], ...]
    content_hash: str  # SHA-256 of the file's bytes

    def column(self, index: int) -> str:
        """Column `index` (0-based) as a person finds it: D, or 4 in a CSV file."""
        return get_column_letter(index + 1) if self.workbook else str(index + 1)

    def where(self, row: int, index: int) -> str:
        """'row 5, column D (asked_when)', or 'line 5, column 4 (asked_when)' in a CSV file."""
        name = self.header[index] if index < len(self.header) else ""
        place = f"{'row' if self.workbook else 'line'} {row}, column {self.column(index)}"
        return f"{place} ({name})" if name else place


def read_sheet(path: Path) -> Sheet:
    """Read `path` (.xlsx or .csv) into a Sheet; SheetError when it cannot be."""
    suffix = path.suffix.lower()
    if suffix not in (".xlsx", ".csv"):
        raise SheetError(f"{path.name}: give an .xlsx or a .csv file")
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise SheetError(f"cannot read {path}: {exc.strerror or exc}") from None
    digest = hashlib.sha256(content).hexdigest()
    table = _workbook(path.name, content) if suffix == ".xlsx" else _csv(path.name, content)
    if not table:
        raise SheetError(f"{path.name} is empty: it needs a header row and a row per submission")
    (_, first), *rest = table
    header = tuple(cell.strip() for cell in first)
    width = len(header)
    rows = tuple(
        (n, cells + ("",) * (width - len(cells)))  # a row's empty end may not be written
        for n, cells in rest
        if any(c.strip() for c in cells)
    )
    return Sheet(path.name, suffix == ".xlsx", header, rows, digest)


def _workbook(name: str, content: bytes) -> list[tuple[int, tuple[str, ...]]]:
    """The first sheet's rows (Kobo puts repeat groups on later sheets: they are not read)."""
    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, ValueError, OSError):
        raise SheetError(f"{name} is not an .xlsx workbook (Excel, Kobo or ODK)") from None
    try:
        sheet = book.worksheets[0]
        sheet.reset_dimensions()  # some writers record a wrong size; read what is there
        return [
            (number, tuple(_text(value) for value in values))
            for number, values in enumerate(sheet.iter_rows(min_row=1, values_only=True), 1)
        ]
    finally:
        book.close()


def _text(value: Any) -> str:
    """A cell's value as the text it shows."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def _csv(name: str, content: bytes) -> list[tuple[int, tuple[str, ...]]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = content[: exc.start].count(b"\n") + 1
        raise SheetError(
            f"{name}: line {line} is not UTF-8 text: save the file as CSV UTF-8"
        ) from None
    first_line = text.split("\n", 1)[0]
    delimiter = max(_DELIMITERS, key=first_line.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    table: list[tuple[int, tuple[str, ...]]] = []
    try:
        while True:
            start = reader.line_num + 1
            try:
                record = next(reader)
            except StopIteration:
                return table
            table.append((start, tuple(record)))
    except csv.Error as exc:
        raise SheetError(f"{name}: line {reader.line_num}: {exc}") from None
