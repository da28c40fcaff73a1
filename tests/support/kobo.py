"""A form with a branch, and sheets of answers to it as KoboToolbox, ODK and a person typing up
paper forms would make them (for `consultbot answers import`)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from sqlalchemy.orm import Session

from bot.consultations.catalogue import import_consultation
from bot.consultations.sets import load_consultation
from bot.participation.sheets import Sheet
from storage.models import Consultation, Question

FORM = """
id = "street-survey"
version = 1
title = "Street survey"
intro = "A few questions about working with the partnership."
estimated_minutes = 3
audience_hint = "everyone"

[[questions]]
id = "asked_when"
type = "single"
text = "When do partners usually ask for your views?"
options = [
  { id = "early", label = "Early, while plans can change" },
  { id = "late", label = "After decisions are made", codes = ["ext.engagement"] },
  { id = "not_asked", label = "We are not asked", codes = ["ext.engagement"] },
]

[[questions]]
id = "equal_partner"
type = "scale"
text = "How much do you feel like an equal partner?"
scale = { min = 1, max = 5, min_label = "Not at all", max_label = "Fully equal" }
codes = ["ext.engagement"]
codes_at_most = 2

[[questions]]
id = "barriers"
type = "multi"
text = "What gets in the way?"
options = [
  { id = "funding", label = "Short-term or late funding", codes = ["ext.funding"] },
  { id = "red_tape", label = "Too many forms and checks", codes = ["ext.red_tape"] },
  { id = "not_told", label = "Not told about things in time", codes = ["ext.information"] },
  { id = "none", label = "None of these", exclusive = true },
]

[[questions]]
id = "told_back"
type = "yesno"
text = "Were you told what happened to your views?"
codes = ["ext.engagement"]
codes_when = "no"

[[questions]]
id = "what_stopped"
type = "text"
text = "What stopped you hearing back?"
relevant = "${told_back} = 'no'"
max_length = 200

[[questions]]
id = "anything_else"
type = "text"
text = "Anything else?"
required = false
max_length = 300
"""
OPTIONS = ("funding", "red_tape", "not_told", "none")
KOBO_HEADER = (
    "start",
    "end",
    "group_intro/asked_when",
    "group_intro/equal_partner",
    "barriers",
    *(f"barriers/{option}" for option in OPTIONS),
    "told_back",
    "what_stopped",
    "anything_else",
    "meta/instanceID",
    "_id",
    "_uuid",
    "_submission_time",
    "_validation_status",
    "_notes",
    "_status",
    "_submitted_by",
    "__version__",
    "_tags",
    "_index",
)
PLAIN_HEADER = (
    "asked_when",
    "equal_partner",
    "barriers",
    "told_back",
    "what_stopped",
    "anything_else",
)
STOPPED = (
    "Nobody from the council ever wrote back to us",
    "We never heard what happened to the funding bid",
    "The forms were too long so we gave up",
)


def form(session: Session, tmp: Path) -> Consultation:
    path = tmp / "street-survey.toml"
    path.write_text(FORM)
    row, _ = import_consultation(session, load_consultation(path))
    return row


def answers(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` valid submissions, varied: every option and branch used."""
    out = []
    for i in range(seed, seed + n):
        told = "no" if i % 3 else "yes"
        barriers = [("funding", "red_tape"), ("not_told",), ("none",), ("funding",)][i % 4]
        out.append(
            {
                "asked_when": ("early", "late", "not_asked")[i % 3],
                "equal_partner": 1 + i % 5,
                "barriers": " ".join(barriers),
                "told_back": told,
                "what_stopped": STOPPED[i % 3] if told == "no" else "",
                "anything_else": "Thank you for asking" if i % 2 else "",
            }
        )
    return out


def kobo_rows(submissions: Sequence[dict[str, Any]], seed: int = 0) -> list[list[Any]]:
    """Rows under KOBO_HEADER: Kobo's metadata and its 1/0 column per option."""
    rows = []
    for i, s in enumerate(submissions, seed):
        uuid = f"6b9e0f1c-0000-4000-8000-{i:012d}"
        chosen = s["barriers"].split()
        rows.append(
            [
                "2026-12-01T10:00:00.000+00:00",
                "2026-12-01T10:04:00.000+00:00",
                s["asked_when"],
                s["equal_partner"],
                s["barriers"],
                *(1 if option in chosen else 0 for option in OPTIONS),
                s["told_back"],
                s["what_stopped"],
                s["anything_else"],
                f"uuid:{uuid}",
                1000 + i,
                uuid,
                "2026-12-01T10:05:00",
                "",
                "",
                "submitted_via_web",
                "",
                "vGh7Ktq3",
                "",
                i + 1,
            ]
        )
    return rows


def xlsx(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Street survey"
    sheet.append(list(header))
    for row in rows:
        sheet.append([None if value == "" else value for value in row])
    book.save(path)
    return path


def csv_file(
    path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]], delimiter: str = ";"
) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def plain_rows(submissions: Sequence[dict[str, Any]]) -> list[list[Any]]:
    return [[s[key] for key in PLAIN_HEADER] for s in submissions]


def questions(tmp: Path) -> list[Question]:
    """The form's questions as stored rows (not in a database: for the pure checks), as
    bot.consultations.catalogue stores them."""
    path = tmp / "street-survey.toml"
    path.write_text(FORM)
    spec = load_consultation(path)
    return [
        Question(
            id=position + 1,
            key=q.id,
            position=position,
            type=q.type.value,
            text=q.text,
            required=q.required,
            options=[option.model_dump() for option in q.options or []],
            scale=q.scale.model_dump() if q.scale else None,
            max_length=q.max_length,
            coding={
                "codes": list(q.codes),
                "codes_when": q.codes_when,
                "codes_at_most": q.codes_at_most,
            },
            relevant=q.relevant,
        )
        for position, q in enumerate(spec.questions)
    ]


def sheet(header: Sequence[str], rows: Sequence[Sequence[Any]], *, workbook: bool = True) -> Sheet:
    """A sheet as bot.participation.sheets reads one, rows numbered from 2 (under the header)."""
    text = [tuple("" if v is None else str(v) for v in row) for row in rows]
    return Sheet(
        "answers.xlsx" if workbook else "answers.csv",
        workbook,
        tuple(header),
        tuple((n, cells) for n, cells in enumerate(text, 2)),
        "0" * 64,
    )
