"""The row by row reading of an XLSForm workbook (the mapping is in bot/consultations/xlsform.py):
every problem is gathered with its sheet, row and column before anything is built."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from bot.consultations.problems import Problem
from bot.consultations.sets import _LANGUAGE, _PATTERN_HINTS, ConsultationSet
from bot.consultations.xlsform_terms import (
    COLUMNS,
    GROUPS,
    MAX_VERSION,
    REFUSED_COLUMNS,
    REFUSED_TYPES,
    SCREENS,
    SELECT,
    SHEETS,
    TRANSLATED,
    YES_NO,
    Cell,
    Sheet,
    condition_problem,
    estimated_minutes,
    integer_bounds,
    is_language_code,
    parse_bool,
    parse_codes,
    parse_language,
    parse_parameters,
    string_length,
    validation_problems,
    whole_parameter,
)
from bot.kernel.i18n import N_, _

# A note is the intro or the closing text by where it stands; each says which, as a whole
# sentence for the catalogs (N_ here, _() where it is said).
_NOTE_HAS_NO = {
    "intro": N_("a note (the intro) has no {column}"),
    "closing": N_("a note (the closing) has no {column}"),
}
_OTHERS_TRANSLATED = {
    "intro": N_("the other intro notes are translated"),
    "closing": N_("the other closing notes are translated"),
}
_TOO_LONG = {
    "intro": N_("the intro is at most 1000 characters (got {length})"),
    "closing": N_("the closing is at most 1000 characters (got {length})"),
}

# -- the reader -----------------------------------------------------------------------------


class FormReader:
    """One pass over a workbook's rows: ``read()`` gives the set, or None, and ``problems``
    every problem found on the way, each said in the language being spoken (a coordinator's in
    chat, the deployment's default in the CLI). XLSForm's own words (sheet, column and type
    names) stay as they are inside a translated sentence: they are the file's."""

    def __init__(
        self,
        file: str,
        sheets: dict[str, Sheet],
        unused_sheets: list[str],
        known_codes: set[str] | None = None,
    ) -> None:
        self.file = file
        self.survey, self.choices, self.settings = (sheets[s] for s in SHEETS)
        self.unused_sheets = unused_sheets
        self.known_codes = known_codes
        self.problems: list[Problem] = []
        self.where: dict[tuple[Any, ...], Cell] = {}
        self.translations: dict[str, dict[str, str]] = {}
        self.language = "en"
        self.default_language: str | None = None
        self.broken: set[str] = set()  # questions refused: conditions on them are not checked

    def fail(self, cell: Cell, message: str) -> None:
        self.problems.append(cell.problem(self.file, message))

    def read(self) -> ConsultationSet | None:
        for sheet in self.unused_sheets:
            self.problems.append(
                Problem(self.file, None, None, _("consultbot does not use this sheet"), sheet)
            )
        settings_row = self._settings_row()
        self._language(settings_row)
        for sheet in (self.survey, self.choices, self.settings):
            self._columns(sheet)
        data = self._settings(settings_row)
        lists = self._lists()
        data.update(self._survey(lists))
        if "estimated_minutes" not in data:
            data["estimated_minutes"] = estimated_minutes(len(data["questions"]))
        translations = {code: texts for code, texts in self.translations.items() if texts}
        if translations:
            data["translations"] = translations
        # Validated even when rows were refused, so a label too long is said in the same run;
        # a cell already at fault says its first problem only.
        context = {"known_codes": frozenset(self.known_codes)} if self.known_codes else None
        try:
            spec = ConsultationSet.model_validate(data, context=context)
        except ValidationError as exc:
            fallback = Cell("survey", None, None, None)
            taken = {(p.sheet, p.line, p.column, p.field) for p in self.problems}
            for problem in validation_problems(exc, self.file, self.where, fallback):
                key = (problem.sheet, problem.line, problem.column, problem.field)
                # "at least 1 question" says nothing new when the questions were refused.
                consequence = self.broken and key == ("survey", None, None, None)
                if key not in taken and not consequence:
                    self.problems.append(problem)
            return None
        return None if self.problems else spec

    # -- columns and languages --

    def _settings_row(self) -> tuple[int, dict[str, str]]:
        rows = self.settings.numbered()
        return rows[0] if rows else (2, {})

    def _language(self, settings_row: tuple[int, dict[str, str]]) -> None:
        row, values = settings_row
        header = next((h for h in values if h.strip().lower() == "default_language"), None)
        if header is None:
            return
        value = values[header].strip()
        cell = Cell("settings", row, header, self.settings.letters.get(header))
        parsed = parse_language(value)
        if parsed is None or not is_language_code(parsed[1]):
            self.fail(
                cell,
                _("write the language with its code, like 'English (en)' (got {value})").format(
                    value=repr(value)
                ),
            )
            return
        self.default_language, self.language = value, parsed[1]

    def _columns(self, sheet: Sheet) -> None:
        known, translated = COLUMNS[sheet.name], TRANSLATED[sheet.name]
        for header, letter in sheet.letters.items():
            cell = Cell(sheet.name, 1, header, letter)
            base, sep, language = header.partition("::")
            base = base.strip().lower().replace("list name", "list_name")
            if base in REFUSED_COLUMNS or base.startswith(("media", "body", "bind", "instance")):
                self._refused_column(sheet, header, base)
                continue
            if base not in known:
                self.fail(cell, _("consultbot does not know this column (see the README's list)"))
                continue
            code = None
            if sep:
                parsed = parse_language(language)
                if base not in translated:
                    self.fail(cell, _("{column} is not translated").format(column=base))
                    continue
                if parsed is None:
                    self.fail(
                        cell, _("give the language code in brackets, like 'label::Welsh (cy)'")
                    )
                    continue
                if not is_language_code(parsed[1]):
                    self.fail(cell, f"{parsed[1]!r}: {_(_PATTERN_HINTS[_LANGUAGE])}")
                    continue
                code = None if parsed[1] == self.language else parsed[1]
            if code is None:
                if base in sheet.main:
                    self.fail(
                        cell,
                        _("a second column for {column} (also {header})").format(
                            column=base, header=sheet.main[base]
                        ),
                    )
                    continue
                sheet.main[base] = header
            else:
                sheet.translated[(base, code)] = header

    def _refused_column(self, sheet: Sheet, header: str, base: str) -> None:
        reason = (
            _(REFUSED_COLUMNS[base])
            if base in REFUSED_COLUMNS
            else _("consultbot does not use this column")
        )
        for row, values in sheet.numbered():
            if values.get(header, "").strip():
                self.fail(Cell(sheet.name, row, header, sheet.letters.get(header)), reason)

    def _translate(
        self, sheet: Sheet, row: int, values: dict[str, str], base: str, key: str, limit: int
    ) -> None:
        for b, code in sheet.translated:
            text = sheet.get(values, base, code) if b == base else None
            if text is None:
                continue
            if len(text) > limit:
                message = _("at most {limit} characters (got {length})").format(
                    limit=limit, length=len(text)
                )
                self.fail(sheet.cell(row, base, code), message)
                continue
            self.translations.setdefault(code, {})[key] = text

    # -- settings --

    def _settings(self, settings_row: tuple[int, dict[str, str]]) -> dict[str, Any]:
        s, (row, values) = self.settings, settings_row
        data: dict[str, Any] = {"language": self.language}
        for base, key in (
            ("form_id", "id"),
            ("form_title", "title"),
            ("audience", "audience_hint"),
        ):
            self.where[(key,)] = s.cell(row, base)
            value = s.get(values, base)
            if value is None:
                self.fail(
                    s.cell(row, base),
                    _("{column} is required on the settings sheet").format(column=base),
                )
            else:
                data[key] = value
        self._translate(s, row, values, "form_title", "title", 80)
        self.where[("language",)] = s.cell(row, "default_language")
        for base, default in (("version", 1), ("estimated_minutes", None)):
            self.where[(base,)] = s.cell(row, base)
            value = s.get(values, base)
            if value is None:
                if default is not None:
                    data[base] = default
                continue
            if not value.isdigit() or not 1 <= int(value) <= MAX_VERSION:
                self.fail(
                    s.cell(row, base),
                    _("a whole number from 1 to {highest} (got {value})").format(
                        highest=MAX_VERSION, value=repr(value)
                    ),
                )
            else:
                data[base] = int(value)
        return data

    # -- choices --

    def _lists(self) -> dict[str, list[tuple[int, dict[str, str]]]]:
        c = self.choices
        lists: dict[str, list[tuple[int, dict[str, str]]]] = {}
        seen: dict[tuple[str, str], int] = {}
        for row, values in c.numbered():
            list_name, name = c.get(values, "list_name"), c.get(values, "name")
            if list_name is None:
                self.fail(c.cell(row, "list_name"), _("a choice needs the name of its list"))
                continue
            if name is None:
                self.fail(c.cell(row, "name"), _("a choice needs a name"))
                continue
            if (list_name, name) in seen:
                first = seen[(list_name, name)]
                message = _("duplicate name {name} in list {list} (also row {row})").format(
                    name=repr(name), list=repr(list_name), row=first
                )
                self.fail(c.cell(row, "name"), message)
                continue
            seen[(list_name, name)] = row
            try:
                parse_bool(c.get(values, "exclusive"))
            except ValueError as exc:
                self.fail(c.cell(row, "exclusive"), str(exc))
                continue
            lists.setdefault(list_name, []).append((row, values))
        return lists

    # -- survey --

    def _survey(self, lists: dict[str, list[tuple[int, dict[str, str]]]]) -> dict[str, Any]:
        s = self.survey
        if "label" not in s.main:
            self.fail(Cell("survey", 1, None, None), _("no label column for the main language"))
        rows: list[tuple[int, dict[str, str], str]] = []  # row, values, kind
        names: dict[str, int] = {}
        for row, values in s.numbered():
            kind = self._kind(row, values)
            name = s.get(values, "name")
            if name is not None:
                if name in names:
                    self.fail(
                        s.cell(row, "name"),
                        _("duplicate name {name} (also row {row})").format(
                            name=repr(name), row=names[name]
                        ),
                    )
                    continue
                names[name] = row
            elif kind != "note":
                self.fail(s.cell(row, "name"), _("a question needs a name"))
                continue
            if kind is not None:
                rows.append((row, values, kind))
            elif name is not None:
                self.broken.add(name)
            self._appearance(row, values)
        asked = [k for k, row_kind in enumerate(rows) if row_kind[2] != "note"]
        first, last = (asked[0], asked[-1]) if asked else (len(rows), len(rows))
        data: dict[str, Any] = {"questions": []}
        earlier: dict[str, tuple[str, frozenset[str]]] = {}
        for k, (row, values, kind) in enumerate(rows):
            if kind == "note":
                self._note(
                    row, values, "intro" if k < first else "closing" if k > last else None, data
                )
            else:
                question = self._question(row, values, kind, lists, earlier, len(data["questions"]))
                if question is not None:
                    data["questions"].append(question)
        if "intro" not in data:
            self.where[("intro",)] = Cell("survey", None, None, None)
            self.fail(
                self.where[("intro",)], _("the intro is missing: a note before the first question")
            )
        return data

    def _kind(self, row: int, values: dict[str, str]) -> str | None:
        """The row's type as note | select_one | select_multiple | range | integer | text."""
        s = self.survey
        type_ = s.get(values, "type")
        cell = s.cell(row, "type")
        if type_ is None:
            self.fail(cell, _("a row needs a type"))
            return None
        lowered = type_.lower()
        m = SELECT.match(lowered)
        if m:
            if m.group(3):
                self.fail(
                    cell, _("or_other adds a typed answer to buttons: ask a text question after it")
                )
                return None
            if not m.group(2):
                self.fail(
                    cell,
                    _("{type} needs the name of a list, like 'select_one yes_no'").format(
                        type=type_
                    ),
                )
                return None
            return f"select_{m.group(1)}"
        if lowered.startswith("select_") and "from_file" in lowered:
            self.fail(
                cell, _("choices from a file are not supported: list them on the choices sheet")
            )
            return None
        if lowered in ("note", "text", "integer", "range"):
            return lowered
        if lowered in REFUSED_TYPES:
            self.fail(cell, f"{type_}: {_(REFUSED_TYPES[lowered])}")
            return None
        self.fail(
            cell,
            _(
                "unknown type {type} (consultbot asks select_one, select_multiple, range, "
                "integer, text and note)"
            ).format(type=repr(type_)),
        )
        return None

    def _appearance(self, row: int, values: dict[str, str]) -> None:
        appearance = self.survey.get(values, "appearance")
        if appearance and set(appearance.lower().split()) & SCREENS:
            self.fail(self.survey.cell(row, "appearance"), _(GROUPS))

    def _note(
        self, row: int, values: dict[str, str], part: str | None, data: dict[str, Any]
    ) -> None:
        s = self.survey
        if part is None:
            self.fail(
                s.cell(row, "type"),
                _(
                    "a note between questions cannot be shown: notes before the first question "
                    "are the intro, after the last one the closing text"
                ),
            )
            return
        for base in ("hint", "required", "relevant", "constraint", "codes", "parameters"):
            if s.get(values, base) is not None:
                self.fail(s.cell(row, base), _(_NOTE_HAS_NO[part]).format(column=base))
        text = s.get(values, "label")
        if text is None:
            self.fail(s.cell(row, "label"), _("a note needs its text in the label"))
            return
        self.where.setdefault((part,), s.cell(row, "label"))
        data[part] = f"{data[part]}\n\n{text}" if part in data else text
        for base, code in s.translated:
            if base != "label":
                continue
            translated = s.get(values, base, code)
            texts = self.translations.setdefault(code, {})
            if translated is None:
                if part in texts:
                    self.fail(s.cell(row, base, code), _(_OTHERS_TRANSLATED[part]))
                continue
            texts[part] = f"{texts[part]}\n\n{translated}" if part in texts else translated
            if len(texts[part]) > 1000:
                message = _(_TOO_LONG[part]).format(length=len(texts[part]))
                self.fail(s.cell(row, base, code), message)

    def _question(
        self,
        row: int,
        values: dict[str, str],
        kind: str,
        lists: dict[str, list[tuple[int, dict[str, str]]]],
        earlier: dict[str, tuple[str, frozenset[str]]],
        index: int,
    ) -> dict[str, Any] | None:
        s, at = self.survey, ("questions", index)
        name = s.get(values, "name") or ""
        q: dict[str, Any] = {"id": name}
        for base, key in (
            ("type", ()),
            ("name", ("id",)),
            ("label", ("text",)),
            ("hint", ("help",)),
        ):
            self.where[(*at, *key)] = s.cell(row, base)
        for base in ("required", "relevant", "codes", "codes_at_most", "constraint_message"):
            self.where[(*at, base)] = s.cell(row, base)
        if s.get(values, "label") is not None:  # else pydantic says it is missing, at its cell
            q["text"] = s.get(values, "label")
        if s.get(values, "hint") is not None:
            q["help"] = s.get(values, "hint")
        self._translate(s, row, values, "label", f"{name}.text", 300)
        self._translate(s, row, values, "hint", f"{name}.help", 300)
        try:
            required = parse_bool(s.get(values, "required"))
        except ValueError as exc:
            self.fail(s.cell(row, "required"), str(exc))
            return None
        if required is not None or kind == "text":
            q["required"] = bool(required)  # XLSForm: a text is optional unless required
        if s.get(values, "constraint_message") is not None:
            q["constraint_message"] = s.get(values, "constraint_message")
        options: list[str] = []
        ok = True
        if kind in ("select_one", "select_multiple"):
            ok = self._select(row, values, kind, lists, q, at)
            options = [o["id"] for o in q.get("options", [])]
        elif kind in ("range", "integer"):
            ok = self._scale(row, values, kind, q, at, name)
        else:
            q["type"] = "text"
            ok = self._text(row, values, q, at)
        if kind not in ("range", "integer"):
            for base in ("min_label", "max_label", "codes_at_most"):
                if s.get(values, base) is not None:
                    self.fail(
                        s.cell(row, base),
                        _("only a scale (range or integer) has {column}").format(column=base),
                    )
                    ok = False
        relevant = s.get(values, "relevant")
        if relevant is not None:
            problem = condition_problem(relevant, earlier, self.broken)
            if problem:
                self.fail(s.cell(row, "relevant"), problem)
            elif problem is None:
                # Kept only when it checked out here: pydantic would say the same again.
                q["relevant"] = relevant
        if ok:
            earlier[name] = (q["type"], frozenset(options if q["type"] != "yesno" else YES_NO))
            return q
        self.broken.add(name)
        return None

    def _select(
        self,
        row: int,
        values: dict[str, str],
        kind: str,
        lists: dict[str, list[tuple[int, dict[str, str]]]],
        q: dict[str, Any],
        at: tuple[Any, ...],
    ) -> bool:
        s, c = self.survey, self.choices
        list_name = (s.get(values, "type") or "").split()[-1]
        for base in ("constraint", "parameters"):
            if s.get(values, base) is not None:
                self.fail(
                    s.cell(row, base),
                    _("consultbot reads no {column} on a choice question").format(column=base),
                )
                return False
        choices = lists.get(list_name)
        if not choices:
            self.fail(
                s.cell(row, "type"),
                _("no list {list} on the choices sheet").format(list=repr(list_name)),
            )
            return False
        names = [c.get(v, "name") for _row, v in choices]
        if kind == "select_one" and set(names) == YES_NO and len(names) == 2:
            return self._yes_no(row, values, choices, q, at)
        q["type"] = "single" if kind == "select_one" else "multi"
        self.where[(*at, "options")] = s.cell(row, "type")
        q["options"] = []
        for j, (crow, cvalues) in enumerate(choices):
            option: dict[str, Any] = {"id": c.get(cvalues, "name")}
            if c.get(cvalues, "label") is not None:
                option["label"] = c.get(cvalues, "label")
            codes = parse_codes(c.get(cvalues, "codes"))
            if codes:
                option["codes"] = codes
            if parse_bool(c.get(cvalues, "exclusive")):
                option["exclusive"] = True
            where = (*at, "options", j)
            self.where[where] = c.cell(crow, "name")
            for base, key in (
                ("name", "id"),
                ("label", "label"),
                ("codes", "codes"),
                ("exclusive", "exclusive"),
            ):
                self.where[(*where, key)] = c.cell(crow, base)
            self._translate(c, crow, cvalues, "label", f"{q['id']}.o.{option['id']}", 40)
            q["options"].append(option)
        if s.get(values, "codes") is not None:
            q["codes"] = parse_codes(s.get(values, "codes"))
        return True

    def _yes_no(
        self,
        row: int,
        values: dict[str, str],
        choices: list[tuple[int, dict[str, str]]],
        q: dict[str, Any],
        at: tuple[Any, ...],
    ) -> bool:
        s, c = self.survey, self.choices
        q["type"] = "yesno"
        if s.get(values, "codes") is not None:
            self.fail(
                s.cell(row, "codes"), _("a yes/no question's codes go on its yes or no choice")
            )
            return False
        coded = [(crow, v) for crow, v in choices if parse_codes(c.get(v, "codes"))]
        for crow, v in choices:
            if parse_bool(c.get(v, "exclusive")):
                self.fail(c.cell(crow, "exclusive"), _("only select_multiple uses exclusive"))
                return False
        if len(coded) > 1:
            self.fail(c.cell(coded[1][0], "codes"), _("codes go on one of yes and no, not both"))
            return False
        if coded:
            crow, v = coded[0]
            q["codes"] = parse_codes(c.get(v, "codes"))
            q["codes_when"] = c.get(v, "name")
            self.where[(*at, "codes")] = self.where[(*at, "codes_when")] = c.cell(crow, "codes")
        return True

    def _scale(
        self,
        row: int,
        values: dict[str, str],
        kind: str,
        q: dict[str, Any],
        at: tuple[Any, ...],
        name: str,
    ) -> bool:
        s = self.survey
        q["type"] = "scale"
        constraint, parameters = s.get(values, "constraint"), s.get(values, "parameters")
        if kind == "integer":
            bounds = integer_bounds(constraint) if constraint else None
            if parameters is not None:
                self.fail(s.cell(row, "parameters"), _("an integer takes no parameters; use range"))
                return False
            if bounds is None:
                cell = s.cell(row, "constraint" if constraint else "type")
                self.fail(
                    cell,
                    _(
                        "an integer is asked with buttons, so bound it with a constraint "
                        "like '. >= 1 and . <= 5' (from 0 to 10)"
                    ),
                )
                return False
            low, high = bounds
            bounds_cell = s.cell(row, "constraint")
        else:
            if constraint is not None:
                self.fail(s.cell(row, "constraint"), _("a range's bounds are its parameters"))
                return False
            try:
                params = parse_parameters(parameters or "")
                unknown = sorted(set(params) - {"start", "end", "step"})
                if unknown:
                    raise ValueError(_("unknown {names}").format(names=", ".join(unknown)))
                low = whole_parameter(params, "start", "1")
                high = whole_parameter(params, "end", "10")
                if whole_parameter(params, "step", "1") != 1:
                    raise ValueError(_("a chat's scale goes up in steps of 1"))
            except ValueError as exc:
                self.fail(
                    s.cell(row, "parameters"),
                    _("{problem} (write start=1 end=5)").format(problem=exc),
                )
                return False
            bounds_cell = s.cell(row, "parameters")
        scale: dict[str, Any] = {"min": low, "max": high}
        self.where[(*at, "scale")] = bounds_cell
        for base in ("min_label", "max_label"):
            self.where[(*at, "scale", base)] = s.cell(row, base)
            if s.get(values, base) is not None:
                scale[base] = s.get(values, base)
            self._translate(s, row, values, base, f"{name}.{base}", 40)
        q["scale"] = scale
        codes = parse_codes(s.get(values, "codes"))
        if codes:
            q["codes"] = codes
        at_most = s.get(values, "codes_at_most")
        if at_most is not None:
            if not at_most.lstrip("-").isdigit():
                self.fail(
                    s.cell(row, "codes_at_most"),
                    _("a whole number (got {value})").format(value=repr(at_most)),
                )
                return False
            q["codes_at_most"] = int(at_most)
        return True

    def _text(
        self, row: int, values: dict[str, str], q: dict[str, Any], at: tuple[Any, ...]
    ) -> bool:
        s = self.survey
        self.where[(*at, "max_length")] = s.cell(row, "constraint")
        for base in ("parameters", "codes"):
            if s.get(values, base) is not None:
                message = (
                    _("text answers are coded one by one by the barrier coder")
                    if base == "codes"
                    else _("a text question takes no parameters")
                )
                self.fail(s.cell(row, base), message)
                return False
        constraint = s.get(values, "constraint")
        if constraint is not None:
            longest = string_length(constraint)
            if longest is None:
                self.fail(
                    s.cell(row, "constraint"),
                    _(
                        "a text question's constraint is its longest answer: "
                        "string-length(.) <= 800"
                    ),
                )
                return False
            q["max_length"] = longest
        return True
