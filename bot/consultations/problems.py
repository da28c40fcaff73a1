"""Problems in consultation files, each named by file, line and field: ConsultationError, and
the source map that finds the line of a field in TOML text.

tomllib reports no positions for semantic problems, so :class:`SourceMap` rescans the (already
valid) TOML text to find the line of a key path; pydantic's wording is reworded for someone
editing a TOML file.
"""

from __future__ import annotations

import bisect
import contextlib
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from bot.kernel.i18n import _

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """Where a problem is and what it is. In a TOML file ``line`` is the line and ``field`` the
    key path; in a spreadsheet ``sheet`` names the sheet, ``line`` the row as the spreadsheet
    numbers it (header = row 1), ``column`` the column letter and ``field`` its header."""

    file: str
    line: int | None
    field: str | None
    message: str
    sheet: str | None = None
    column: str | None = None

    def __str__(self) -> str:
        """In the language being spoken: a coordinator reads it in chat in theirs, the CLI in
        the deployment's default. Sheet and column names are the file's own words."""
        if self.sheet is not None:
            return f"{self.file}: {self._cell()}: {self.message}"
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )

    def _cell(self) -> str:
        """Where in a spreadsheet: "survey row 7, column F (relevant)" and its shorter forms."""
        values = {"sheet": self.sheet, "row": self.line, "column": self.column, "field": self.field}
        if self.column is not None:
            if self.line is not None:
                if self.field:
                    return _("{sheet} row {row}, column {column} ({field})").format(**values)
                return _("{sheet} row {row}, column {column}").format(**values)
            if self.field:
                return _("{sheet} column {column} ({field})").format(**values)
            return _("{sheet} column {column}").format(**values)
        if self.line is not None:
            if self.field:
                return _("{sheet} row {row}, {field}").format(**values)
            return _("{sheet} row {row}").format(**values)
        return f"{self.sheet} {self.field}" if self.field else str(self.sheet)


class ConsultationError(ValueError):
    """One or more problems in consultation files; ``str()`` gives one line per problem."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))

    @property
    def file(self) -> str:
        return self.problems[0].file

    @property
    def line(self) -> int | None:
        return self.problems[0].line

    @property
    def field(self) -> str | None:
        return self.problems[0].field


def _format_path(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _friendly(error: Mapping[str, Any], hints: Mapping[str, str]) -> str:
    """pydantic's wording, reworded for someone editing a TOML file (or a spreadsheet), in the
    language being spoken; ``hints`` are N_()-marked and translated here."""
    kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
    got = repr(value)
    if kind == "string_too_long":
        return _("at most {limit} characters (got {length})").format(
            limit=ctx["max_length"], length=len(value)
        )
    if kind == "string_too_short":
        return _("must not be empty")
    if kind == "too_short":
        return _("at least {limit} items (got {length})").format(
            limit=ctx["min_length"], length=ctx["actual_length"]
        )
    if kind == "too_long":
        return _("at most {limit} items (got {length})").format(
            limit=ctx["max_length"], length=ctx["actual_length"]
        )
    if kind == "missing":
        return _("required field is missing")
    if kind == "extra_forbidden":
        return _("unknown field (misspelt? see the format in bot/consultations/sets.py)")
    if kind in ("enum", "literal_error"):
        # pydantic lists them in English ("'a', 'b' or 'c'"): said again with the "or" translated.
        expected = re.findall(r"'[^']*'", str(ctx["expected"]))
        if len(expected) >= 2:
            return _("must be one of {choices} or {last} (got {value})").format(
                choices=", ".join(expected[:-1]), last=expected[-1], value=got
            )
        return _("must be one of {expected} (got {value})").format(
            expected=ctx["expected"], value=got
        )
    if kind == "string_pattern_mismatch":
        pattern = ctx.get("pattern", "")
        if pattern in hints:
            return _("{hint} (got {value})").format(hint=_(hints[pattern]), value=got)
        return _("must match {pattern} (got {value})").format(pattern=pattern, value=got)
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return _("must be a whole number without quotes (got {value})").format(value=got)
    if kind == "bool_type":
        return _("must be true or false without quotes (got {value})").format(value=got)
    if kind == "string_type":
        return _("must be text in quotes (got {value})").format(value=got)
    if kind == "list_type":
        return _("must be a list: [ ... ]")
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return _("must be a table: { ... } or a [section]")
    if kind == "greater_than_equal":
        return _("must be at least {limit} (got {value})").format(limit=ctx["ge"], value=got)
    if kind == "less_than_equal":
        return _("must be at most {limit} (got {value})").format(limit=ctx["le"], value=got)
    return str(error["msg"])


class _ScanStop(Exception):
    pass


class SourceMap:
    """Line numbers of key paths in TOML text that tomllib has already accepted.

    A small scanner, not a parser: it follows table headers (``[a.b]``), arrays of tables
    (``[[questions]]``, indexed in order), dotted keys, inline tables and arrays (including
    arrays of inline tables over several lines), and skips strings and comments so a '#' or a
    bracket inside a string does not mislead it. Each key records the line where it starts;
    each array element the line where it starts.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.lines: dict[KeyPath, int] = {}
        self._aot: dict[KeyPath, int] = {}
        self._newlines = [k for k, c in enumerate(text) if c == "\n"]
        # Whatever was mapped before a surprise is still right, so keep it.
        with contextlib.suppress(_ScanStop, IndexError):
            self._document()

    def locate(self, path: KeyPath) -> int | None:
        """Line of ``path``, or of its nearest mapped parent (a missing field -> its table)."""
        for n in range(len(path), 0, -1):
            if path[:n] in self.lines:
                return self.lines[path[:n]]
        return None

    # -- scanning --

    def _line(self, pos: int) -> int:
        return bisect.bisect_left(self._newlines, pos) + 1

    def _record(self, path: KeyPath, pos: int) -> None:
        self.lines.setdefault(path, self._line(pos))

    def _peek(self, s: str) -> bool:
        return self.text.startswith(s, self.i)

    def _expect(self, s: str) -> None:
        if not self._peek(s):
            raise _ScanStop
        self.i += len(s)

    def _skip(self, newlines: bool) -> None:
        text, n = self.text, len(self.text)
        while self.i < n:
            c = text[self.i]
            if c in " \t" or (newlines and c in "\r\n"):
                self.i += 1
            elif c == "#":
                end = text.find("\n", self.i)
                self.i = n if end < 0 else end
            else:
                return

    def _document(self) -> None:
        table: KeyPath = ()
        while True:
            self._skip(newlines=True)
            if self.i >= len(self.text):
                return
            start = self.i
            if self._peek("[["):
                self.i += 2
                keys = self._keys()
                self._skip(newlines=False)
                self._expect("]]")
                parent = self._resolve(keys[:-1])
                array = (*parent, keys[-1])
                index = self._aot.get(array, -1) + 1
                self._aot[array] = index
                table = (*array, index)
                self._record(array, start)
                self._record(table, start)
            elif self._peek("["):
                self.i += 1
                keys = self._keys()
                self._skip(newlines=False)
                self._expect("]")
                table = self._resolve(keys)
                self._record(table, start)
            else:
                self._keyval(table)

    def _resolve(self, keys: list[str]) -> KeyPath:
        # In [questions.scale], "questions" means the latest [[questions]] element.
        path: KeyPath = ()
        for key in keys:
            path = (*path, key)
            if path in self._aot:
                path = (*path, self._aot[path])
        return path

    def _keyval(self, table: KeyPath) -> None:
        start = self.i
        keys = self._keys()
        for n in range(1, len(keys) + 1):
            self._record((*table, *keys[:n]), start)
        self._skip(newlines=False)
        self._expect("=")
        self._value((*table, *keys))

    def _keys(self) -> list[str]:
        keys: list[str] = []
        while True:
            self._skip(newlines=False)
            if self._peek('"') or self._peek("'"):
                start = self.i
                self._string()
                keys.append(tomllib.loads(f"k = {self.text[start : self.i]}")["k"])
            else:
                m = re.compile(r"[A-Za-z0-9_-]+").match(self.text, self.i)
                if not m:
                    raise _ScanStop
                keys.append(m.group())
                self.i = m.end()
            self._skip(newlines=False)
            if not self._peek("."):
                return keys
            self.i += 1

    def _string(self) -> None:
        text = self.text
        for quote in ('"""', "'''"):
            if self._peek(quote):
                self.i += 3
                while not self._peek(quote):
                    self.i += 2 if quote == '"""' and text[self.i] == "\\" else 1
                    if self.i >= len(text):
                        raise _ScanStop
                self.i += 3
                while self.i < len(text) and text[self.i] == quote[0]:
                    self.i += 1  # up to two quotes may end the content: """a""""
                return
        quote = text[self.i]
        self.i += 1
        while text[self.i] != quote:
            self.i += 2 if quote == '"' and text[self.i] == "\\" else 1
        self.i += 1

    def _value(self, path: KeyPath) -> None:
        self._skip(newlines=False)
        c = self.text[self.i]
        if c in "\"'":
            self._string()
        elif c == "[":
            self.i += 1
            index = 0
            while True:
                self._skip(newlines=True)
                if self._peek("]"):
                    self.i += 1
                    return
                self._record((*path, index), self.i)
                before = self.i
                self._value((*path, index))
                if self.i == before:
                    raise _ScanStop
                index += 1
                self._skip(newlines=True)
                if self._peek(","):
                    self.i += 1
        elif c == "{":
            self.i += 1
            while True:
                self._skip(newlines=True)
                if self._peek("}"):
                    self.i += 1
                    return
                self._keyval(path)
                self._skip(newlines=True)
                if self._peek(","):
                    self.i += 1
        else:
            # Numbers, booleans, dates: run to the next delimiter.
            m = re.compile(r"[^,\]}\r\n#]*").match(self.text, self.i)
            assert m is not None
            self.i = m.end()


def problems_from(
    error: ValidationError, text: str, file: str, hints: Mapping[str, str]
) -> list[Problem]:
    """One Problem per validation error, with its line; ``hints`` explain id patterns."""
    source = SourceMap(text)
    problems: list[Problem] = []
    for item in error.errors():
        path: KeyPath = tuple(item["loc"])
        if item["type"] == "consultation":
            ctx = item["ctx"]
            extra = [int(p) if p.isdigit() else p for p in str(ctx["at"]).split(".") if p]
            path = (*path, *extra)
            message = str(ctx["message"])
        else:
            message = _friendly(item, hints)
        problems.append(Problem(file, source.locate(path), _format_path(path) or None, message))
    problems.sort(key=lambda p: p.line or 0)
    return problems
