"""The words of an XLSForm as consultbot reads them: the columns and types it knows, refuses
or ignores (and why), a cell's position, and the small parsers of cell values."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from bot.consultations.conditions import ConditionError, parse
from bot.consultations.problems import Problem, _friendly
from bot.consultations.sets import _LANGUAGE, _PATTERN_HINTS
from bot.kernel.i18n import N_, _

SHEETS = ("survey", "choices", "settings")
MAX_VERSION = 2**31 - 1  # a database integer
SECONDS_PER_QUESTION = 40
YES_NO = frozenset({"yes", "no"})

# The question types an ODK or Kobo form uses to record the device and the session: never a
# question to a person, and columns an export carries beside the answers.
DEVICE_METADATA = (
    "start",
    "end",
    "today",
    "deviceid",
    "subscriberid",
    "simserial",
    "phonenumber",
    "username",
    "email",
    "audit",
)

_SURVEY = {
    "type", "name", "label", "hint", "required", "relevant", "constraint",
    "constraint_message", "parameters", "min_label", "max_label", "codes", "codes_at_most",
    "appearance",
}  # fmt: skip
_CHOICES = {"list_name", "name", "label", "codes", "exclusive"}
_SETTINGS = {
    "form_id", "version", "form_title", "default_language", "audience", "estimated_minutes",
    "style", "instance_name",
}  # fmt: skip
COLUMNS = {"survey": _SURVEY, "choices": _CHOICES, "settings": _SETTINGS}
TRANSLATED = {
    "survey": {"label", "hint", "min_label", "max_label"},
    "choices": {"label"},
    "settings": {"form_title"},
}
# Why a column or a type is refused: marked here (N_), translated with _() where a problem
# says it, in the language of whoever sent the file.
_MEDIA = N_("media (pictures and sound) cannot be shown on a chat's buttons")
REFUSED_COLUMNS = {
    "image": _MEDIA, "big-image": _MEDIA, "audio": _MEDIA, "video": _MEDIA, "media": _MEDIA,
    "default": N_("a default answer would answer for the person"),
    "choice_filter": N_("options filtered by earlier answers are not supported; use relevant"),
    "calculation": N_("calculations are not supported"),
    "read_only": N_("every question in a chat is answered by the person"),
    "trigger": N_("recalculation triggers are not supported"),
    "repeat_count": N_("repeats are not supported"),
    "required_message": N_("a chat's buttons always give an answer; say it in the hint instead"),
    "guidance_hint": N_("guidance hints are for printed forms; use hint"),
}  # fmt: skip
SCREENS = {"field-list", "table-list", "label", "list-nolabel", "list"}
GROUPS = N_("groups show several questions on one screen; a chat asks one question at a time")
REFUSED_TYPES = {
    **dict.fromkeys(["begin_group", "begin group", "end_group", "end group"], GROUPS),
    **dict.fromkeys(
        ["begin_repeat", "begin repeat", "end_repeat", "end repeat"],
        N_("repeats (the same questions again and again) are not supported"),
    ),
    **dict.fromkeys(["image", "audio", "video", "file", "background-audio"], _MEDIA),
    **dict.fromkeys(
        ["geopoint", "geotrace", "geoshape", "start-geopoint", "background-geopoint"],
        N_("locations are not asked in a chat"),
    ),
    "calculate": N_("calculations are not supported"),
    **dict.fromkeys(
        ["date", "time", "datetime"], N_("dates and times are not supported; ask a text question")
    ),
    "barcode": N_("barcodes cannot be scanned in a chat"),
    "acknowledge": N_("an acknowledgement is a note in a chat: make it part of the intro"),
    "decimal": N_("decimals cannot be buttons; use integer with bounds or range"),
    "rank": N_("ranking is not supported"),
    "hidden": N_("hidden values are not supported"),
    **dict.fromkeys(
        [*DEVICE_METADATA, "xml-external", "csv-external"],
        N_("device metadata is not collected in a chat"),
    ),
}
SELECT = re.compile(r"^select[_ ](one|multiple)(?:\s+(\S+))?(\s+or[_ ]other)?$")
_LANGUAGE_NAME = re.compile(r"^(?P<name>.*?)\s*\((?P<code>[^()]*)\)$")
_STRING_LENGTH = re.compile(r"^string-length\(\s*\.\s*\)\s*(<=|<)\s*(\d+)$")
_BOUND = re.compile(r"^\.\s*(>=|>|<=|<)\s*(-?\d+)$")
_TRUE, _FALSE = {"yes", "true", "true()"}, {"no", "false", "false()"}
LIMITS = {"title": 80, "intro": 1000, "closing": 1000, "text": 300, "help": 300}


@dataclass(frozen=True)
class Cell:
    sheet: str
    row: int | None
    header: str | None
    letter: str | None

    def problem(self, file: str, message: str) -> Problem:
        return Problem(file, self.row, self.header, message, self.sheet, self.letter)


@dataclass
class Sheet:
    name: str
    rows: list[dict[str, str]]
    letters: dict[str, str]
    main: dict[str, str] = field(default_factory=dict)  # base column -> header
    translated: dict[tuple[str, str], str] = field(default_factory=dict)  # (base, code) -> header

    def cell(self, row: int | None, base: str, code: str | None = None) -> Cell:
        header = self.main.get(base) if code is None else self.translated.get((base, code))
        return Cell(self.name, row, header or base, self.letters.get(header or "") or None)

    def get(self, row: dict[str, str], base: str, code: str | None = None) -> str | None:
        header = self.main.get(base) if code is None else self.translated.get((base, code))
        value = row.get(header) if header else None
        return value.strip() if isinstance(value, str) and value.strip() else None

    def numbered(self) -> list[tuple[int, dict[str, str]]]:
        return [(i + 2, row) for i, row in enumerate(self.rows) if row]


# -- small parsers --------------------------------------------------------------------------


def parse_language(header_part: str) -> tuple[str, str] | None:
    """'Welsh (cy)' -> ('Welsh', 'cy'); None when there is no code in brackets."""
    m = _LANGUAGE_NAME.match(header_part.strip())
    if not m or not m.group("code").strip():
        return None
    return m.group("name").strip(), m.group("code").strip()


def is_language_code(code: str) -> bool:
    return re.match(_LANGUAGE, code) is not None


def parse_bool(value: str | None) -> bool | None:
    if value is None:
        return None
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValueError(_("write yes or no"))


def parse_codes(value: str | None) -> list[str]:
    return [c for c in re.split(r"[\s,]+", value or "") if c]


def string_length(constraint: str) -> int | None:
    m = _STRING_LENGTH.match(constraint.strip())
    if not m:
        return None
    n = int(m.group(2))
    return n if m.group(1) == "<=" else n - 1


def integer_bounds(constraint: str) -> tuple[int, int] | None:
    """'. >= 1 and . <= 5' -> (1, 5); None unless both ends are bounded."""
    low = high = None
    for part in re.split(r"\s+and\s+", constraint.strip()):
        m = _BOUND.match(part.strip())
        if not m:
            return None
        op, n = m.group(1), int(m.group(2))
        if op in (">=", ">"):
            low = n if op == ">=" else n + 1
        else:
            high = n if op == "<=" else n - 1
    return (low, high) if low is not None and high is not None else None


def parse_parameters(value: str) -> dict[str, str]:
    out = {}
    for part in re.split(r"[\s,;]+", value.strip()):
        if part:
            key, sep, v = part.partition("=")
            if not sep:
                raise ValueError(_("{part} is not name=value").format(part=repr(part)))
            out[key.strip().lower()] = v.strip()
    return out


def whole_parameter(params: Mapping[str, str], name: str, default: str) -> int:
    """A range's start, end or step as a number; ValueError says which one is not."""
    value = params.get(name, default)
    try:
        return int(value)
    except ValueError:
        message = _("{name} is not a whole number (got {value})")
        raise ValueError(message.format(name=name, value=repr(value))) from None


def estimated_minutes(questions: int) -> int:
    return max(1, math.ceil(questions * SECONDS_PER_QUESTION / 60))


def condition_problem(
    relevant: str, earlier: Mapping[str, tuple[str, frozenset[str]]], broken: set[str]
) -> str | None:
    """What is wrong with a condition; one that reads a question refused for another reason
    is only parsed, so that question's problem is not said twice."""
    try:
        condition = parse(relevant)
        if condition.names() & broken:
            return ""
        condition.check(earlier)
    except ConditionError as exc:
        return str(exc)
    return None


def validation_problems(
    exc: ValidationError, file: str, where: Mapping[tuple[Any, ...], Cell], fallback: Cell
) -> list[Problem]:
    """pydantic's errors, each put at the cell its value came from (or its nearest parent)."""
    out = []
    for item in exc.errors():
        path: tuple[Any, ...] = tuple(item["loc"])
        if item["type"] == "consultation":
            extra = [int(p) if p.isdigit() else p for p in str(item["ctx"]["at"]).split(".") if p]
            path = (*path, *extra)
            message = str(item["ctx"]["message"])
        else:
            message = _friendly(item, _PATTERN_HINTS)
        cell = next(
            (where[path[:n]] for n in range(len(path), 0, -1) if path[:n] in where), fallback
        )
        if item["type"] == "missing":
            message = _("required, but empty") if cell.letter else _("required: add this column")
        out.append(cell.problem(file, message))
    return out
