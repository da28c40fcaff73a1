"""Writing a consultation set as an XLSForm workbook that pyxform accepts and that
bot/consultations/xlsform.py reads back to the same set (the same content hash).

Every question's options go in a list named after the question; a yes/no question gets a list
of its own with the choices ``yes`` and ``no``. Defaults are written out (required, a text's
longest answer, estimated_minutes) so a coordinator sees them in the sheet.

``python -m bot.consultations.xlsform_write SRC OUT`` writes an .xlsx beside every TOML set of
SRC into OUT (``make xlsforms``: the shipped sets' spreadsheet copies).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO, Any

from babel import Locale, UnknownLocaleError
from openpyxl import Workbook
from openpyxl.styles import Font

from bot.consultations.files import load_directory
from bot.consultations.sets import ConsultationSet, Question, QuestionType

_SURVEY = [
    "type", "name", "label", "hint", "required", "relevant", "constraint",
    "constraint_message", "parameters", "min_label", "max_label", "codes", "codes_at_most",
]  # fmt: skip
_SURVEY_TRANSLATED = {
    "label": "text",
    "hint": "help",
    "min_label": "min_label",
    "max_label": "max_label",
}
_CHOICES = ["list_name", "name", "label", "codes", "exclusive"]
_SETTINGS = [
    "form_id", "version", "form_title", "default_language", "audience", "estimated_minutes",
]  # fmt: skip


def language_header(code: str) -> str:
    """'cy' -> 'Welsh (cy)': the name is for people; the code in brackets is what is read."""
    try:
        name = Locale.parse(code.replace("-", "_")).get_display_name("en") or code
    except (UnknownLocaleError, ValueError):
        name = code
    return f"{name} ({code})"


def _note_name(base: str, taken: set[str]) -> str:
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


def _survey_row(q: Question) -> dict[str, Any]:
    row: dict[str, Any] = {"name": q.id, "label": q.text, "hint": q.help}
    row["required"] = "yes" if q.required else "no"
    row["relevant"] = q.relevant
    if q.type in (QuestionType.SINGLE, QuestionType.YESNO):
        row["type"] = f"select_one {q.id}"
    elif q.type is QuestionType.MULTI:
        row["type"] = f"select_multiple {q.id}"
    elif q.type is QuestionType.SCALE:
        assert q.scale is not None
        row["type"] = "range"
        row["parameters"] = f"start={q.scale.min} end={q.scale.max} step=1"
        row["min_label"], row["max_label"] = q.scale.min_label, q.scale.max_label
        row["codes"] = " ".join(q.codes) or None
        row["codes_at_most"] = q.codes_at_most
    else:
        row["type"] = "text"
        row["constraint"] = f"string-length(.) <= {q.max_length}"
        row["constraint_message"] = q.constraint_message
    return row


def _choice_rows(q: Question, languages: list[str], spec: ConsultationSet) -> list[dict[str, Any]]:
    if q.type is QuestionType.YESNO:
        return [
            {
                "list_name": q.id,
                "name": answer,
                "label": answer.capitalize(),
                "codes": " ".join(q.codes) if q.codes and q.codes_when == answer else None,
            }
            for answer in ("yes", "no")
        ]
    rows = []
    for o in q.options or ():
        row: dict[str, Any] = {"list_name": q.id, "name": o.id, "label": o.label}
        row["codes"] = " ".join(o.codes) or None
        row["exclusive"] = "yes" if o.exclusive else None
        for code in languages:
            row[f"label::{language_header(code)}"] = spec.translations[code].get(f"{q.id}.o.{o.id}")
        rows.append(row)
    return rows


def _rows(spec: ConsultationSet) -> dict[str, list[dict[str, Any]]]:
    languages = sorted(spec.translations)
    taken = {q.id for q in spec.questions}

    def note(part: str, text: str) -> dict[str, Any]:
        row: dict[str, Any] = {"type": "note", "name": _note_name(part, taken), "label": text}
        for code in languages:
            row[f"label::{language_header(code)}"] = spec.translations[code].get(part)
        return row

    survey = [note("intro", spec.intro)]
    choices: list[dict[str, Any]] = []
    for q in spec.questions:
        row = _survey_row(q)
        for code in languages:
            texts = spec.translations[code]
            for base, key in _SURVEY_TRANSLATED.items():
                row[f"{base}::{language_header(code)}"] = texts.get(f"{q.id}.{key}")
        survey.append(row)
        choices.extend(_choice_rows(q, languages, spec))
    if spec.closing:
        survey.append(note("closing", spec.closing))
    settings: dict[str, Any] = {
        "form_id": spec.id,
        "version": spec.version,
        "form_title": spec.title,
        "default_language": language_header(spec.language),
        "audience": spec.audience_hint.value,
        "estimated_minutes": spec.estimated_minutes,
    }
    for code in languages:
        settings[f"form_title::{language_header(code)}"] = spec.translations[code].get("title")
    return {"survey": survey, "choices": choices, "settings": [settings]}


def _headers(rows: list[dict[str, Any]], first: list[str]) -> list[str]:
    """The columns some row fills, the usual ones first, translations after."""
    used = {k for row in rows for k, v in row.items() if v is not None}
    rest = sorted(used - set(first), key=lambda h: (h.split("::")[-1], h))
    return [h for h in first if h in used] + rest


def write_xlsform(spec: ConsultationSet, out: Path | IO[bytes]) -> None:
    """Write `spec` as an XLSForm workbook (survey, choices and settings sheets)."""
    book = Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    first = {"survey": _SURVEY, "choices": _CHOICES, "settings": _SETTINGS}
    for name, rows in _rows(spec).items():
        sheet = book.create_sheet(name)
        headers = _headers(rows, first[name])
        sheet.append(headers)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for r, row in enumerate(rows, start=2):
            for k, header in enumerate(headers, start=1):
                cell = sheet.cell(r, k, row.get(header))
                if isinstance(cell.value, str) and cell.value.startswith("="):
                    # Text, never a formula: "=0" stays what was written, and a spreadsheet
                    # program does not run what a set's text happens to hold.
                    cell.data_type = "s"
        for k, header in enumerate(headers):
            width = max(len(str(row.get(header) or "")) for row in [{header: header}, *rows])
            sheet.column_dimensions[sheet.cell(1, k + 1).column_letter].width = min(
                max(width, 8) + 2, 60
            )
    book.save(out)


def write_shipped(source: Path, out: Path) -> list[Path]:
    """An .xlsx copy of every TOML set in `source`, named by set id, in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in load_directory(source):
        path = out / f"{spec.id}.xlsx"
        write_xlsform(spec, path)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_shipped(Path(sys.argv[1]), Path(sys.argv[2])):
        print(f"wrote {path}")
