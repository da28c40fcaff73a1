"""Consultation sets written as XLSForm spreadsheets (.xlsx): read here, written by
bot/consultations/xlsform_write.py.

pyxform reads the workbook (``get_xlsform``: the sheets as rows, blank rows kept so row numbers
hold) and, once consultbot's own checks pass, confirms it is valid XLSForm (``workbook_to_json``).
pyxform stops at its first error, so the checks below go row by row first and report every
problem at once, each as ``file: sheet row N, column X (header): message`` (the header is row 1),
in the language being spoken: a coordinator who sends the file in chat reads them in theirs.
Nothing is built unless the whole file is valid.

How XLSForm maps onto a consultation
------------------------------------

survey sheet, ``type``:

* ``select_one L``: a single question with the options of list L, except that a list whose
  names are exactly ``yes`` and ``no`` makes a yes/no question (its buttons say the bot's own
  Yes and No, in the person's language; codes on one of the two choices are that question's
  codes, given for that answer).
* ``select_multiple L``: a multi question; the choices column ``exclusive`` (yes) marks an
  option such as "None of these" that clears the others.
* ``range`` with ``parameters`` ``start=1 end=5`` (step 1 only): a scale; ``min_label`` and
  ``max_label`` columns name its ends. ``integer`` is a scale too when its ``constraint``
  bounds it (``. >= 1 and . <= 5``); an unbounded integer cannot be buttons and is refused.
* ``text``: a typed answer; ``constraint`` ``string-length(.) <= N`` sets its longest
  (default 800), ``constraint_message`` is said when it is too long. As in XLSForm a text
  question is optional unless ``required`` is yes; a question with buttons is always required.
* ``note`` rows before the first question are the intro, after the last one the closing text
  (several are joined with a blank line); a note between questions is refused.
* ``relevant``: the conditions of bot/consultations/conditions.py, on earlier questions only.
* consultbot columns: ``codes`` (taxonomy codes, space- or comma-separated) on the choices
  sheet and, for a scale, on the survey with ``codes_at_most``.

settings sheet: ``form_id`` (the set's id), ``version`` (a whole number from 1 to 2147483647,
so a date such as 2026120601 fits; 1 when left out), ``form_title``, ``default_language``
(``English (en)``: the code in brackets is what counts), and consultbot's ``audience``
(organisations | service_users | everyone, required) and ``estimated_minutes`` (default: about
40 seconds a question, rounded up).

Translations: ``label::Welsh (cy)``, ``hint::Welsh (cy)``, ``min_label::Welsh (cy)``,
``max_label::Welsh (cy)`` on the survey, ``label::Welsh (cy)`` on choices and
``form_title::Welsh (cy)`` on settings. The language code in brackets is required. The
default language's column (``label`` or ``label::English (en)``) is the main text.

Refused, with the cell that uses it: groups (a chat asks one question at a time, never a screen
of several), repeats, media (image, audio, video), locations, calculations, dates and times,
barcodes, files, acknowledge, decimal, rank, metadata rows (start, end, deviceid...), or_other,
``default``, ``choice_filter``, ``calculation``, ``read_only``, ``trigger``, parameters other
than a range's, and any column consultbot does not know. ``appearance`` is ignored (how a
phone app draws a question means nothing in a chat) except the values that put several
questions on one screen (field-list, table-list...), which are refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from io import BytesIO
from pathlib import Path

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from pyxform.errors import PyXFormError
from pyxform.xls2json import workbook_to_json
from pyxform.xls2json_backends import DefinitionData, get_xlsform

from bot.consultations.problems import ConsultationError, Problem
from bot.consultations.sets import ConsultationSet
from bot.consultations.xlsform_rows import FormReader
from bot.consultations.xlsform_terms import SHEETS, Sheet
from bot.kernel.i18n import _

_PYXFORM_ROW = re.compile(r"\[row : (\d+)\]\s*")


def read_xlsform(
    source: Path | bytes, name: str, known_codes: set[str] | None = None
) -> ConsultationSet:
    """Read an XLSForm workbook; ConsultationError lists every problem, each with its cell.

    ``name`` is what problems call the file (a path, or an uploaded file's name)."""
    try:
        data = source.read_bytes() if isinstance(source, Path) else source
    except OSError as exc:
        message = _("cannot read: {error}").format(error=exc)
        raise ConsultationError([Problem(name, None, None, message)]) from exc
    try:
        book = get_xlsform(data, file_type=".xlsx")
        letters = _header_letters(data)
    except (PyXFormError, OSError, ValueError, KeyError) as exc:
        message = _("not an .xlsx XLSForm workbook ({error})").format(error=exc)
        raise ConsultationError([Problem(name, None, None, message)]) from None
    # pyxform reads these sheets too, but nothing in a chat can use them.
    unused = [
        s for s in book.sheet_names or () if s.lower() in {"external_choices", "osm", "entities"}
    ]
    reader = FormReader(name, _sheets(book, letters), unused, known_codes)
    spec = reader.read()
    problems = reader.problems
    if spec is not None and not problems:
        problems = _pyxform_check(name, book)
    if problems or spec is None:
        raise ConsultationError(sorted(set(problems), key=_order))
    return spec


def _order(p: Problem) -> tuple[int, int, int, str, str, str]:
    sheet = SHEETS.index(p.sheet) if p.sheet in SHEETS else len(SHEETS)
    column = p.column or ""
    return (sheet, p.line or 0, len(column), column, p.field or "", p.message)


def _header_letters(data: bytes) -> dict[str, dict[str, str]]:
    """Sheet (lower case) -> header -> column letter; pyxform's rows keep headers, not places."""
    book = load_workbook(BytesIO(data), read_only=True)
    try:
        out: dict[str, dict[str, str]] = {}
        for sheet in book.worksheets:
            letters: dict[str, str] = {}
            for row in sheet.iter_rows(min_row=1, max_row=1, values_only=True):
                for k, value in enumerate(row):
                    if isinstance(value, str) and value.strip():
                        letters.setdefault(
                            re.sub(r" +", " ", value.strip()), get_column_letter(k + 1)
                        )
            out[sheet.title.lower()] = letters
        return out
    finally:
        book.close()


def _sheets(book: DefinitionData, letters: Mapping[str, dict[str, str]]) -> dict[str, Sheet]:
    out = {}
    for name in SHEETS:
        rows = list(getattr(book, name) or [])
        headers = getattr(book, f"{name}_header") or []
        sheet = Sheet(name, [dict(r) for r in rows], dict(letters.get(name, {})))
        for header in headers[0] if headers else {}:
            sheet.letters.setdefault(header, "")
        out[name] = sheet
    return out


def _pyxform_check(file: str, book: DefinitionData) -> list[Problem]:
    """pyxform's own verdict on a file that passed consultbot's checks."""
    try:
        workbook_to_json(book, warnings=[])
    except PyXFormError as exc:
        text = str(exc)
        m = _PYXFORM_ROW.search(text)
        row = int(m.group(1)) if m else None
        message = _PYXFORM_ROW.sub("", text).strip()
        return [Problem(file, row, None, f"XLSForm: {message}", "survey" if row else None)]
    return []
