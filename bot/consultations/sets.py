"""Consultation sets: short question lists kept as TOML files, loaded and checked here.

Sets may also be written as XLSForm spreadsheets (.xlsx): bot/consultations/xlsform.py maps them
onto this same model, and bot/consultations/files.py picks the reader by suffix.

A consultation set is what a round asks: 3–6 prompts (1–12 allowed; a pulse may have one),
answered with buttons and short text on a phone. Sets live as TOML files (the shipped examples
are under ``templates/consultations/``) so a coordinator can edit wording without touching code.

File format
-----------

.. code-block:: toml

    id = "partnership-health-check"   # stable slug: a-z, 0-9 and '-', at most 64 characters
    version = 1                       # bump when the meaning of a question changes
    title = "Partnership health check"           # at most 80 characters
    intro = "Who is asking and why..."           # plain text, at most 1000 characters
    estimated_minutes = 4                        # 1-30
    audience_hint = "organisations"              # organisations | service_users | everyone

    [[questions]]                     # 1-12 questions, asked in file order
    id = "engaged_early"              # stable, unique in the set: a-z, 0-9, '_', at most 32
    type = "single"                   # single | multi | scale | yesno | text
    text = "When do partners usually ask your group's view?"   # at most 300 characters
    help = "..."                      # optional, at most 300 characters
    required = true                   # default true; only text questions may be optional
    options = [                       # single and multi only: 2-8 options
      { id = "early", label = "Early, while plans can change" },
      { id = "late", label = "After decisions are made", codes = ["ext.engagement"] },
      { id = "none", label = "None of these", exclusive = true },   # multi only, see below
    ]

    [[questions]]
    id = "rating"
    type = "scale"
    text = "..."
    scale = { min = 1, max = 5, min_label = "Poor", max_label = "Excellent" }
    codes = ["ext.engagement"]        # scale: attached to answers <= codes_at_most
    codes_at_most = 2

    [[questions]]
    id = "feedback"
    type = "yesno"
    text = "Were you told what happened to your views?"
    codes = ["ext.engagement"]        # yesno: attached to the answer named by codes_when
    codes_when = "no"                 # "yes" (default) or "no"

    [[questions]]
    id = "obstacle"
    type = "text"
    text = "..."
    required = false                  # shows a Skip button
    max_length = 800                  # text only: default 800, at most 2000
    relevant = "${feedback} = 'no'"   # optional: asked only when this holds (see below)

    closing = "Thank you..."          # optional, top level: said after the summary
    language = "en"                   # optional, top level: the language the texts are in
    [translations.cy]                 # optional: other languages, by text key (see below)
    title = "..."
    "feedback.text" = "..."
    "obstacle.o.early" = "..."        # an option's label

Rules worth knowing
-------------------

* Option labels are at most 40 characters: they are buttons, and an old phone shows little more.
* Ids are short (question and option ids at most 32 characters) and never shown to people; they
  are what answers are stored against, so keep them stable once a set has been used.
* ``codes`` are barrier (``ext.*``, ``int.*``) or success (``success.*``) codes from the
  taxonomy in the codebook. On single/multi questions they sit on the options; a yes/no question
  carries them for one answer (``codes_when``); a scale for low ratings (``codes_at_most``).
  Text questions carry none: free text is coded answer by answer by the barrier coder, and a
  question-level code would claim a barrier the person may not have named.
* ``exclusive = true`` (multi only) marks an option such as "None of these" that clears the
  others when chosen, and is cleared when another is chosen.
* ``relevant`` is a condition on answers given earlier (bot/consultations/conditions.py has the
  grammar: ``${q} = 'x'``, ``selected(${q}, 'x')``, ``${scale} >= 3``, ``and``, ``or``,
  ``not()``). A question whose condition does not hold is not asked; it may refer only to
  questions before it.
* ``translations`` maps a language code to texts by key: ``title``, ``intro``, ``closing``,
  ``<question>.text``, ``<question>.help``, ``<question>.min_label``, ``<question>.max_label``
  and ``<question>.o.<option>``. Each has the same length limit as the text it translates.
* Unknown fields are errors, so a misspelt ``requried = false`` is caught, not ignored.

Errors come back as :class:`ConsultationError`, one line per problem, in the form
``path/to/file.toml:14: questions[1].options[2].label: at most 40 characters (got 57)``.
Indexes are 0-based, like the JSON snapshot. tomllib reports no positions for semantic problems,
so bot/consultations/problems.py rescans the (already valid) TOML text for the line of a key.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from bot.consultations.conditions import ConditionError, parse
from bot.consultations.problems import ConsultationError, Problem, problems_from
from bot.kernel.i18n import N_, _

DEFAULT_TEXT_MAX_LENGTH = 800
MAX_TEXT_MAX_LENGTH = 2000
# Part of the hashed payload: if the snapshot format itself changes, every hash changes, so an
# import re-snapshots sets whose stored form is stale even though their files did not change.
SNAPSHOT_FORMAT = 1

_SET_ID = r"^[a-z0-9]+(-[a-z0-9]+)*$"
_ITEM_ID = r"^[a-z0-9_]+$"
_CODE = r"^[a-z]+\.[a-z][a-z_]*$"
_LANGUAGE = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$"
# Marked here, translated with _() where a problem says them.
_PATTERN_HINTS = {
    _SET_ID: N_("use lowercase letters, digits and single '-' between words"),
    _ITEM_ID: N_("use lowercase letters, digits and '_'"),
    _CODE: N_("a code looks like 'ext.funding' or 'int.capacity'"),
    _LANGUAGE: N_("a language code looks like 'en', 'cy' or 'pt-BR'"),
}

SetId = Annotated[str, StringConstraints(strict=True, pattern=_SET_ID, max_length=64)]
ItemId = Annotated[str, StringConstraints(strict=True, pattern=_ITEM_ID, max_length=32)]
Code = Annotated[str, StringConstraints(strict=True, pattern=_CODE, max_length=64)]
Language = Annotated[str, StringConstraints(strict=True, pattern=_LANGUAGE, max_length=16)]


def _text(max_length: int) -> Any:
    # Stripped first, so "   " counts as empty and trailing spaces do not change the hash.
    return Annotated[
        str,
        StringConstraints(strict=True, strip_whitespace=True, min_length=1, max_length=max_length),
    ]


Label = _text(40)
Prompt = _text(300)
HelpText = _text(300)
Title = _text(80)
Intro = _text(1000)


def _problem(at: str, message: str) -> PydanticCustomError:
    """A validation error that also says which field under the validated model is at fault.

    pydantic puts a model validator's error at the model itself; ``at`` (dotted, digits for
    indexes) carries the rest of the path so the loader can point at the right line.
    ``message`` is already in the language being spoken (a file is checked as it is loaded,
    for whoever sent it).
    """
    return PydanticCustomError("consultation", "{message}", {"message": message, "at": at})


def _check_codes(codes: list[str], info: ValidationInfo) -> list[str]:
    known = (info.context or {}).get("known_codes")
    seen: set[str] = set()
    for k, code in enumerate(codes):
        if code in seen:
            raise _problem(str(k), _("code {code} is listed twice").format(code=repr(code)))
        seen.add(code)
        if known is not None and code not in known:
            raise _problem(
                str(k), _("unknown code {code} (not in the codebook)").format(code=repr(code))
            )
    return codes


class QuestionType(StrEnum):
    SINGLE = "single"
    MULTI = "multi"
    SCALE = "scale"
    YESNO = "yesno"
    TEXT = "text"


class Audience(StrEnum):
    ORGANISATIONS = "organisations"
    SERVICE_USERS = "service_users"
    EVERYONE = "everyone"


class _Model(BaseModel):
    # Frozen: a loaded set is a snapshot of a file; nothing should edit it in passing.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Option(_Model):
    id: ItemId
    label: Label
    codes: list[Code] = Field(default_factory=list)
    exclusive: StrictBool = False

    @field_validator("codes")
    @classmethod
    def _known_codes(cls, codes: list[str], info: ValidationInfo) -> list[str]:
        return _check_codes(codes, info)


class ScaleSpec(_Model):
    min: StrictInt = Field(ge=0, le=10)
    max: StrictInt = Field(ge=1, le=10)
    min_label: Label
    max_label: Label

    @model_validator(mode="after")
    def _range(self) -> ScaleSpec:
        if self.min >= self.max:
            raise _problem(
                "max",
                _("must be greater than min (min {min}, max {max})").format(
                    min=self.min, max=self.max
                ),
            )
        return self

    def values(self) -> list[int]:
        return list(range(self.min, self.max + 1))


_CHOICE_TYPES = (QuestionType.SINGLE, QuestionType.MULTI)


class Question(_Model):
    id: ItemId
    type: QuestionType
    text: Prompt
    help: HelpText | None = None
    required: StrictBool = True
    options: list[Option] | None = Field(default=None, min_length=2, max_length=8)
    scale: ScaleSpec | None = None
    max_length: StrictInt | None = Field(default=None, ge=1, le=MAX_TEXT_MAX_LENGTH)
    codes: list[Code] = Field(default_factory=list)
    codes_when: Literal["yes", "no"] | None = None
    codes_at_most: StrictInt | None = None
    relevant: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None
    # Said instead of the standard "too long" when a typed answer is over max_length.
    constraint_message: HelpText | None = None

    @field_validator("codes")
    @classmethod
    def _known_codes(cls, codes: list[str], info: ValidationInfo) -> list[str]:
        return _check_codes(codes, info)

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        # Defaults that depend on the type are filled in here, before freezing, so the snapshot
        # and the hash are the same whether or not the file spelled the default out.
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        if data.get("type") == "text" and "max_length" not in data:
            data["max_length"] = DEFAULT_TEXT_MAX_LENGTH
        if data.get("type") == "yesno" and data.get("codes") and "codes_when" not in data:
            data["codes_when"] = "yes"
        return data

    @model_validator(mode="after")
    def _fits_type(self) -> Question:
        t = self.type
        if t in _CHOICE_TYPES:
            if self.options is None:
                raise _problem("options", _("a {type} question needs 2–8 options").format(type=t))
            seen: dict[str, int] = {}
            for j, option in enumerate(self.options):
                if option.id in seen:
                    raise _problem(
                        f"options.{j}.id",
                        _("duplicate option id {id} (also options[{index}])").format(
                            id=repr(option.id), index=seen[option.id]
                        ),
                    )
                seen[option.id] = j
                if option.exclusive and t is not QuestionType.MULTI:
                    raise _problem(
                        f"options.{j}.exclusive", _("only multi questions use exclusive")
                    )
            if self.codes:
                raise _problem(
                    "codes",
                    _("a {type} question carries codes on its options, not here").format(type=t),
                )
        elif self.options is not None:
            raise _problem(
                "options",
                _("only single and multi questions have options, not {type}").format(type=t),
            )

        if t is QuestionType.SCALE:
            if self.scale is None:
                raise _problem("scale", _("a scale question needs scale = { min, max, ... }"))
        elif self.scale is not None:
            raise _problem(
                "scale", _("only scale questions have a scale, not {type}").format(type=t)
            )

        if t is not QuestionType.TEXT:
            if self.max_length is not None:
                raise _problem(
                    "max_length",
                    _("only text questions have max_length, not {type}").format(type=t),
                )
            if not self.required:
                # Buttons always give an answer cheaply; a Skip button is for writing.
                raise _problem("required", _("only text questions may be optional"))

        if t is QuestionType.TEXT and self.codes:
            raise _problem(
                "codes", _("text answers are coded one by one by the barrier coder, not here")
            )
        if self.constraint_message is not None and t is not QuestionType.TEXT:
            raise _problem("constraint_message", _("only text questions have a length to check"))
        if self.codes_when is not None and t is not QuestionType.YESNO:
            raise _problem("codes_when", _("only yesno questions use codes_when"))
        if self.codes_at_most is not None:
            if t is not QuestionType.SCALE:
                raise _problem("codes_at_most", _("only scale questions use codes_at_most"))
            if not self.codes:
                raise _problem("codes_at_most", _("has no effect without codes"))
            assert self.scale is not None
            if not self.scale.min <= self.codes_at_most < self.scale.max:
                raise _problem(
                    "codes_at_most",
                    _("must be from {low} to {high} (got {value})").format(
                        low=self.scale.min, high=self.scale.max - 1, value=self.codes_at_most
                    ),
                )
        elif t is QuestionType.SCALE and self.codes:
            raise _problem("codes", _("a scale question with codes needs codes_at_most"))
        return self

    # -- helpers for handlers and the importer ---------------------------------------------

    def option(self, option_id: str) -> Option | None:
        return next((o for o in self.options or () if o.id == option_id), None)


class ConsultationSet(_Model):
    id: SetId
    version: StrictInt = Field(ge=1)
    title: Title
    intro: Intro
    estimated_minutes: StrictInt = Field(ge=1, le=30)
    audience_hint: Audience
    questions: list[Question] = Field(min_length=1, max_length=12)
    closing: Intro | None = None
    language: Language = "en"
    translations: dict[Language, dict[str, str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique_questions(self) -> ConsultationSet:
        seen: dict[str, int] = {}
        earlier: dict[str, tuple[str, frozenset[str]]] = {}
        for i, question in enumerate(self.questions):
            if question.id in seen:
                raise _problem(
                    f"questions.{i}.id",
                    _("duplicate question id {id} (also questions[{index}])").format(
                        id=repr(question.id), index=seen[question.id]
                    ),
                )
            seen[question.id] = i
            if question.relevant:
                try:
                    parse(question.relevant).check(earlier)
                except ConditionError as exc:
                    raise _problem(f"questions.{i}.relevant", str(exc)) from None
            earlier[question.id] = (question.type.value, frozenset(labels_of(question)))
        for language, texts in self.translations.items():
            limits = self.translatable()
            for key, text in texts.items():
                limit = limits.get(key)
                if limit is None:
                    raise _problem(
                        f"translations.{language}",
                        _("{key} is no text of this consultation").format(key=repr(key)),
                    )
                if not text.strip():
                    raise _problem(
                        f"translations.{language}", _("{key} is empty").format(key=repr(key))
                    )
                if len(text) > limit:
                    raise _problem(
                        f"translations.{language}",
                        _("{key}: at most {limit} characters (got {length})").format(
                            key=repr(key), limit=limit, length=len(text)
                        ),
                    )
        return self

    def translatable(self) -> dict[str, int]:
        """Every text key a translation may give, with its length limit."""
        keys = {"title": 80, "intro": 1000, "closing": 1000}
        for q in self.questions:
            keys[f"{q.id}.text"] = 300
            keys[f"{q.id}.help"] = 300
            if q.scale is not None:
                keys[f"{q.id}.min_label"] = keys[f"{q.id}.max_label"] = 40
            for o in q.options or ():
                keys[f"{q.id}.o.{o.id}"] = 40
        return keys

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.questions if q.id == question_id), None)

    def all_codes(self) -> set[str]:
        """Every code the set can attach, e.g. to check against the codebook at import."""
        out: set[str] = set()
        for q in self.questions:
            out.update(q.codes)
            for o in q.options or ():
                out.update(o.codes)
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-able snapshot (defaults filled in), stored with each version of the set."""
        return self.model_dump(mode="json")


def labels_of(question: Question) -> dict[str, str]:
    """Option id -> label, the two answers of a yes/no question included."""
    if question.type is QuestionType.YESNO:
        return {"yes": "Yes", "no": "No"}
    return {o.id: o.label for o in question.options or ()}


# Fields added after sets were first stored: left out of the hash while they hold their
# default, so a set that does not use them keeps its hash (and is not imported again).
_LATER_DEFAULTS: dict[str, Any] = {"closing": None, "language": "en", "translations": {}}
_LATER_QUESTION_DEFAULTS: dict[str, Any] = {"relevant": None, "constraint_message": None}


def _hashed(snapshot: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in snapshot.items() if _LATER_DEFAULTS.get(k, ...) != v}
    out["questions"] = [
        {k: v for k, v in q.items() if _LATER_QUESTION_DEFAULTS.get(k, ...) != v}
        for q in snapshot["questions"]
    ]
    return out


def consultation_digest_hash(consultation: ConsultationSet) -> str:
    """SHA-256 hex of the set's meaning: comments, layout and spelled-out defaults do not count."""
    payload = {"format": SNAPSHOT_FORMAT, "set": _hashed(consultation.to_dict())}
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# -- loading -------------------------------------------------------------------------------

_TOML_POSITION = re.compile(r"at line (\d+), column \d+")


def load_consultation(path: Path, known_codes: set[str] | None = None) -> ConsultationSet:
    """Read one TOML file; raise ConsultationError naming file, line and field on any problem.

    With ``known_codes`` (the codebook's codes) every code in the set must be one of them.
    """
    file = str(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        message = _("not UTF-8 text ({error})").format(error=exc)
        raise ConsultationError([Problem(file, None, None, message)]) from exc
    except OSError as exc:
        message = _("cannot read: {error}").format(error=exc)
        raise ConsultationError([Problem(file, None, None, message)]) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_POSITION.search(str(exc))
        line = int(m.group(1)) if m else None
        message = _("TOML syntax: {error}").format(error=exc)
        raise ConsultationError([Problem(file, line, None, message)]) from exc
    context = {"known_codes": frozenset(known_codes)} if known_codes is not None else None
    try:
        return ConsultationSet.model_validate(data, context=context)
    except ValidationError as exc:
        raise ConsultationError(problems_from(exc, text, file, _PATTERN_HINTS)) from None
