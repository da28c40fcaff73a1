"""A sheet of answers gathered elsewhere (bot.participation.sheets), checked against the round's
form: its questions, as XLSForm names them. Pure: every problem is found, none is stored
(bot.participation.imported stores what passes).

Columns, as KoboToolbox and ODK export them:

- a question's column is named by its key, alone or behind its groups (``group/q``; ODK
  Briefcase and Central write ``group-q``);
- Kobo's one column per option of a multi question (``q/option``, 1 or 0) must agree with the
  question's own column; a file that has only those columns is read from them;
- metadata is not read: any column starting with ``_`` (``_id``, ``_uuid``,
  ``_submission_time``, ``_index``...), ``meta/...`` and ``formhub/...``, and ``start``, ``end``,
  ``today``, ``deviceid``, ``__version__`` and ODK Central's ``KEY``, ``SubmissionDate``...;
  a submission's instance id (``meta/instanceID``, ODK Central's ``KEY``, Kobo's ``_uuid``) is
  its key, so importing it twice adds it once;
- any other column is a problem: the file was made from another form.

Cells: a single question holds an option's name (its XML value: ``late``, not "After decisions
are made"), a multi question the names of the options chosen with spaces between them, a
yes/no question ``yes`` or ``no``, a scale a whole number on the scale, a text question at most
the question's length. A question whose ``relevant`` condition does not hold for the row's
earlier answers must be empty; a required question whose condition holds must be filled.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from bot.consultations.conditions import Condition, Value, parse
from bot.consultations.xlsform_terms import DEVICE_METADATA
from bot.participation.decide import labels
from bot.participation.sheets import Sheet
from storage.models import Question

# Columns never read (besides any starting with "_"), as Kobo and ODK name them.
METADATA = frozenset(
    {
        *DEVICE_METADATA,
        "instanceID",
        "instanceName",
        "deprecatedID",
        "KEY",
        "SubmissionDate",
        "SubmitterID",
        "SubmitterName",
        "AttachmentsPresent",
        "AttachmentsExpected",
        "Status",
        "ReviewState",
        "DeviceID",
        "Edits",
        "FormVersion",
    }
)
METADATA_GROUPS = frozenset({"meta", "formhub"})
# A submission's own id, best first: the form's instance id (Kobo's meta/instanceID, ODK's
# meta-instanceID), ODK Central's KEY (the same id), Kobo's _uuid (the same, without "uuid:").
ID_COLUMNS = ("instanceID", "KEY", "_uuid")
ODK_CENTRAL = frozenset({"KEY", "SubmissionDate"})
KEY_LENGTH = 100  # Invitation.submission_key
_PATH = re.compile(r"[/-]")
_WHOLE = re.compile(r"[+-]?\d+(?:\.0*)?")
_TICKED = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


@dataclass(frozen=True)
class Given:
    """One question's answer in a submission, as the chat stores it (a skip: an optional
    question left empty)."""

    keys: tuple[str, ...] = ()
    number: float | None = None
    text: str | None = None
    skipped: bool = False


@dataclass(frozen=True)
class Submission:
    row: int
    key: str  # Invitation.submission_key
    answers: tuple[tuple[Question, Given], ...]  # the questions asked, in the form's order


@dataclass
class Checked:
    submissions: list[Submission]
    problems: list[str]  # every one, in row and column order, with its place
    channel: str  # the channel the file looks like it came from: odk, kobo or paper


@dataclass
class _Layout:
    columns: dict[str, int] = field(default_factory=dict)  # question key -> column
    ticks: dict[str, dict[str, int]] = field(default_factory=dict)  # multi -> option -> column
    ids: list[int] = field(default_factory=list)  # instance id columns, best first


class _Problems:
    def __init__(self, sheet: Sheet) -> None:
        self.sheet = sheet
        self.found: list[tuple[int, int, str]] = []

    def add(self, row: int, column: int | None, message: str) -> None:
        if column is None:
            place = f"{'row' if self.sheet.workbook else 'line'} {row}"
            self.found.append((row, -1, f"{place}: {message}"))
        else:
            self.found.append((row, column, f"{self.sheet.where(row, column)}: {message}"))

    def sorted(self) -> list[str]:
        return [text for _, _, text in sorted(self.found, key=lambda p: (p[0], p[1]))]


def check(sheet: Sheet, questions: Sequence[Question], *, text_limit: int) -> Checked:
    """Every submission of `sheet` checked against `questions` (in the form's order): what
    each answered, and every problem, with its row and column. `text_limit`: the most
    characters any text answer may have (privacy.max_text_length, as in the chat)."""
    problems = _Problems(sheet)
    layout = _layout(sheet, questions, problems)
    conditions = {q.key: parse(q.relevant) for q in questions if q.relevant}
    missing: set[str] = set()  # required questions without a column that a row needed
    seen: dict[str, int] = {}
    submissions: list[Submission] = []
    for row, cells in sheet.rows:
        for index in range(len(sheet.header), len(cells)):
            if cells[index].strip():
                problems.add(row, index, "a cell right of the last named column")
        answers = _row(row, cells, layout, questions, conditions, text_limit, problems, missing)
        key = _key(sheet, layout, row, cells, problems)
        if key in seen:
            problems.add(row, layout.ids[0], f"the same submission as row {seen[key]}")
            continue
        seen[key] = row
        submissions.append(Submission(row, key, tuple(answers)))
    for q in questions:
        if q.key in missing:
            problems.add(1, None, f"no column for {q.key}, a required question")
    if not sheet.rows:
        problems.add(1, None, "no submissions: the file has a header and nothing under it")
    header = set(sheet.header)
    channel = "odk" if header & ODK_CENTRAL else "kobo" if layout.ids else "paper"
    return Checked(submissions, problems.sorted(), channel)


def _layout(sheet: Sheet, questions: Sequence[Question], problems: _Problems) -> _Layout:
    """Which column holds which question, which are Kobo's option columns and which hold
    instance ids; problems with the header (unknown or repeated columns)."""
    by_key = {q.key: q for q in questions}
    layout = _Layout()
    ids: dict[int, int] = {}  # column -> rank in ID_COLUMNS
    for index, name in enumerate(sheet.header):
        parts = [p for p in _PATH.split(name) if p] or [name]
        if not name:
            used = next((row for row, cells in sheet.rows if _cell(cells, index)), None)
            if used is not None:
                problems.add(1, index, f"a column without a name holds answers (row {used})")
            continue
        if parts[-1] in ID_COLUMNS:
            ids[index] = ID_COLUMNS.index(parts[-1])
        question = by_key.get(name)
        if question is None and len(parts) >= 2:
            owner = by_key.get(parts[-2])
            if owner is not None and owner.type == "multi" and parts[-1] in labels(owner):
                ticks = layout.ticks.setdefault(owner.key, {})
                if parts[-1] in ticks:
                    problems.add(1, index, f"a second column for option {parts[-1]}")
                ticks[parts[-1]] = index
                continue
            question = by_key.get(parts[-1]) if parts[0] not in METADATA_GROUPS else None
        if question is not None:
            if question.key in layout.columns:
                first = sheet.column(layout.columns[question.key])
                problems.add(1, index, f"a second column for {question.key} (first: {first})")
                continue
            layout.columns[question.key] = index
        elif not (name.startswith("_") or name in METADATA or parts[0] in METADATA_GROUPS):
            problems.add(1, index, "not a question of this round's form, nor Kobo's or ODK's")
    layout.ids = sorted(ids, key=lambda index: (ids[index], index))
    return layout


def _cell(cells: tuple[str, ...], index: int | None) -> str:
    return cells[index].strip() if index is not None and index < len(cells) else ""


def _row(
    row: int,
    cells: tuple[str, ...],
    layout: _Layout,
    questions: Sequence[Question],
    conditions: dict[str, Condition],
    text_limit: int,
    problems: _Problems,
    missing: set[str],
) -> list[tuple[Question, Given]]:
    """One row's answers, question by question in the form's order, so that each condition
    reads the answers before it; problems are added to `problems`."""
    values: dict[str, Value] = {}
    unknown: set[str] = set()  # questions whose cell is wrong: what depends on them is unknown
    answers: list[tuple[Question, Given]] = []
    for q in questions:
        column = layout.columns.get(q.key)
        raw = _cell(cells, column)
        if column is None and q.key in layout.ticks:
            column, raw = _from_ticks(row, cells, layout.ticks[q.key], problems)
        condition = conditions.get(q.key)
        if condition is not None and condition.names() & unknown:
            unknown.add(q.key)
            continue
        if condition is not None and not condition.holds(values):
            if raw:
                problems.add(row, column, f"should be empty: asked only when {q.relevant}")
            continue
        if not raw:
            if not q.required:
                answers.append((q, Given(skipped=True)))
            elif column is None:
                missing.add(q.key)
                unknown.add(q.key)
            else:
                when = f" (asked, as {q.relevant})" if condition is not None else ""
                problems.add(row, column, f"empty, but the question is required{when}")
                unknown.add(q.key)
            continue
        try:
            given, value = _given(q, raw, text_limit)
        except ValueError as exc:
            problems.add(row, column, str(exc))
            unknown.add(q.key)
            continue
        if q.key in layout.ticks and layout.columns.get(q.key) is not None:
            _ticks_agree(row, cells, q, given.keys, layout, problems)
        answers.append((q, given))
        values[q.key] = value
    return answers


def _from_ticks(
    row: int, cells: tuple[str, ...], ticks: dict[str, int], problems: _Problems
) -> tuple[int, str]:
    """A multi question's cell made from Kobo's option columns, when the file has no column of
    the question's own: (the first option column, the names ticked)."""
    chosen = []
    for option, index in ticks.items():
        if _ticked(row, cells, index, problems):
            chosen.append(option)
    return min(ticks.values()), " ".join(chosen)


def _ticked(row: int, cells: tuple[str, ...], index: int, problems: _Problems) -> bool:
    mark = _cell(cells, index).casefold()
    if mark not in _TICKED and mark != "":
        problems.add(row, index, f"{_shown(mark)} is not 1 or 0")
    return _TICKED.get(mark, False)


def _ticks_agree(
    row: int,
    cells: tuple[str, ...],
    q: Question,
    keys: tuple[str, ...],
    layout: _Layout,
    problems: _Problems,
) -> None:
    """Kobo's option columns of a multi question say what its own column says."""
    own = f"column {problems.sheet.column(layout.columns[q.key])} ({q.key})"
    listed = " ".join(keys) or "nothing"
    for option, index in layout.ticks[q.key].items():
        ticked = _ticked(row, cells, index, problems)
        if ticked != (option in keys):
            says = "chosen" if ticked else "not chosen"
            problems.add(row, index, f"says {option} was {says}, but {own} lists {listed}")


def _given(q: Question, raw: str, text_limit: int) -> tuple[Given, Value]:
    """A filled cell as the answer it is (and as a condition reads it); ValueError, saying
    what is wrong, when it is none."""
    if q.type == "text":
        limit = min(q.max_length or text_limit, text_limit)
        if len(raw) > limit:
            raise ValueError(f"too long: {len(raw)} characters, at most {limit}")
        return Given(text=raw), raw
    if q.type == "scale":
        return _number(q, raw)
    names = {key.casefold(): key for key in labels(q)}
    if q.type in ("single", "yesno"):
        key = names.get(raw.casefold())
        if key is None:
            raise ValueError(_not_an_option(q, raw, [raw]))
        return Given(keys=(key,)), key
    words = raw.split()
    strange = [word for word in words if word.casefold() not in names]
    if strange:
        raise ValueError(_not_an_option(q, raw, strange))
    chosen = {names[word.casefold()] for word in words}
    keys = tuple(key for key in labels(q) if key in chosen)
    alone = [o for o in q.options if o.get("exclusive") and o["id"] in chosen]
    if alone and len(keys) > 1:
        others = " ".join(k for k in keys if k != alone[0]["id"])
        raise ValueError(f"{alone[0]['id']} goes alone: it cannot be chosen with {others}")
    return Given(keys=keys), frozenset(keys)


def _number(q: Question, raw: str) -> tuple[Given, Value]:
    scale = q.scale or {}
    low, high = int(scale.get("min", 1)), int(scale.get("max", 5))
    if not _WHOLE.fullmatch(raw):
        ends = {str(scale.get(end, "")).casefold() for end in ("min_label", "max_label")}
        if raw.casefold() in ends:
            raise ValueError(
                f"{_shown(raw)} looks like a label; export with XML values "
                f"(a number from {low} to {high})"
            )
        raise ValueError(f"{_shown(raw)} is not a whole number from {low} to {high}")
    number = int(float(raw))
    if not low <= number <= high:
        raise ValueError(f"{number} is outside the scale, {low} to {high}")
    return Given(number=float(number)), float(number)


def _not_an_option(q: Question, raw: str, strange: list[str]) -> str:
    """Why a choice cell is no answer: labels written for names (Kobo's export "with labels",
    however it joins several), choices separated by commas, or names the question lacks."""
    names = labels(q)
    rest, found = raw.casefold(), set()
    for key, label in sorted(names.items(), key=lambda kv: -len(kv[1])):  # longest first
        if label.casefold() in rest:
            found.add(key)
            rest = rest.replace(label.casefold(), " ")
    if found and not rest.strip(" ,;\n"):
        here = " ".join(key for key in names if key in found)
        return f"{_shown(raw)} looks like a label; export with XML values (here: {here})"
    parts = [p.strip() for p in re.split(r"[;,\n]", raw) if p.strip()]
    if len(parts) > 1 and all(p.casefold() in {k.casefold() for k in names} for p in parts):
        return "separate the choices with spaces, as Kobo and ODK do"
    what = " ".join(_shown(word) for word in strange)
    return f"{what}: not an option of {q.key} (its options: {' '.join(names)})"


def _shown(text: str) -> str:
    """A cell's words in a message: quoted, and cut short when long."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


def _key(
    sheet: Sheet, layout: _Layout, row: int, cells: tuple[str, ...], problems: _Problems
) -> str:
    """The submission's key: its instance id ("uuid:..." whichever column gave it), or for a
    file without one a hash of the file and the row, so the same file imported twice adds
    each row once."""
    for index in layout.ids:
        value = _cell(cells, index)
        if value:
            bare = value[5:] if value.casefold().startswith("uuid:") else value
            key = f"uuid:{bare}"
            if len(key) > KEY_LENGTH:
                problems.add(row, index, f"an instance id longer than {KEY_LENGTH - 5} characters")
            return key[:KEY_LENGTH]
    return "row:" + hashlib.sha256(f"{sheet.content_hash}:{row}".encode()).hexdigest()
