"""The codebook: the barrier and success codes, their cues and topics, and the lexicons of
negators and problem markers, read from TOML and checked; with the text model's artefact when
the codebook names a training file.

A codebook (TOML) lists, per code, two kinds of cue (their mini-language is in cues.py):

* ``cues`` are self-contained *problem statements* ("roof leaks", "never get told",
  "too many meetings"). They count on their own, unless a negator sits just before them
  ("it is *not* tokenistic").
* ``topics`` name a *resource or subject* ("volunteers", "premises", "paperwork"). Naming a
  subject is not a barrier ("our volunteers are brilliant"), so a topic only counts when the
  same clause also carries a problem marker ("hard", "not enough", "can't", "nightmare"), when
  an absence word sits right before it ("no reserves"), or when it is the answer to a negated
  contrast ("funding isn't the problem, volunteers are").

Cues are language-tagged. A codebook's top-level ``language`` (default "en") is the language of
each code's own ``label``, ``cues`` and ``topics``, of the ``[lexicon]`` and of the text model's
training answers. A code may carry a table per further language (``[code.cy]``, after its own
fields) with a ``label``, ``cues`` and ``topics`` in that language; a language with cues needs its
own lexicon (``[lexicon.cy]``: all four lists), since English negators do not read Welsh. A text
is coded in its writer's language (``Codebook.in_language``): in the main language by the rules
and the text model; in a further language with cues by that language's rules alone (the model
knows only the main language); in a language without cues not at all: it is left for a
coordinator to code (see bot.coding.stored.UNCODED). A code's label is said in the language
being spoken when the codebook has it (``Code.label``), else in the main language.

Loading never fits the text model: a missing or stale artefact leaves the codebook with its
rules only (and a warning); `python -m bot.coding.training fit` writes a fresh one.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import re
import threading
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bot.coding.cues import (
    ABSENCE,
    CUE,
    DEFICIT,
    PROBLEM,
    TOPIC,
    CodebookError,
    CueIndex,
    CueIndexBuilder,
)
from bot.coding.spelling import Spelling
from bot.coding.text_model import TextModel, load_model, model_digest
from bot.kernel import i18n

Family = Literal["external", "internal", "success"]
FAMILIES: tuple[str, ...] = ("external", "internal", "success")
log = logging.getLogger(__name__)


def default_codebook_path() -> Path:
    """The codebook shipped with the project (a deployment may point elsewhere)."""
    return Path(__file__).resolve().parents[2] / "templates" / "codebook" / "barriers.toml"


def _entries(text: str) -> tuple[str, ...]:
    return tuple(text.split(", "))


# ---------------------------------------------------------------------------------------------
# Default lexicons. A codebook may replace any of them under a [lexicon] table; they live here
# so that a deployment's own codebook only has to list its codes.
# ---------------------------------------------------------------------------------------------

# One comma-separated string per lexicon (no entry contains a comma).
DEFAULT_LEXICON: dict[str, tuple[str, ...]] = {
    # Words that flip what follows them. Apostrophe-less spellings are common on phones.
    "negators": _entries(
        "not, no, never, nor, neither, without, hardly, cannot, dont, cant, isnt, arent, wasnt, "
        "werent, didnt, doesnt, havent, hasnt, hadnt, wont, aint, nothing, nobody, noone, none"
    ),
    # Evaluative problem words that *can* be negated ("no problems", "isn't an issue").
    "problem_markers": _entries(
        "problem*, issue*, trouble*, difficult*, barrier*, challeng*, concern*, worr*, struggl*, "
        "hard, harder, nightmare*, obstacle*, hurdle*, tough, impossible, poor, weak*, limited, "
        "insufficient, scarce, late, later, cut, cuts, slashed, falling, dropp*, declin*, "
        "shrink*, lose, losing, lost, burn* out, burnt, stretched, exhausted, tired, overwhelm*, "
        "fragile, precarious, at risk, broken, falling apart, rubbish, terrible, awful, endless, "
        "excessive, ridiculous, disproportionate*, over the top, overkill, crazy, mad, madness, "
        "a pain, frustrat*, hurts, killing, expensive, costly, costs a fortune, dried up, "
        "drying up, too, only, leave, leaving, left, resign*, short, shortage*, risk*, pressure*, "
        "nobody, no one, no-one, dwindl*, unreliable, complicated, complex, confus*, daunting, "
        "bureaucratic, onerous, time consuming, takes ages, squeez*, stuck, drift*, so much, "
        "doubled, gone up, going up, rising"
    ),
    # Deficit phrases whose negative sense *is* the problem, so they are never negated.
    "deficit_markers": _entries(
        "not enough, n't enough, lack*, short of, too few, too little, too small, can't, unable, "
        "n't have, haven't got, n't got, can't afford, need, never, no longer, can't find, "
        "can't get, can't keep, n't know, no idea, not very, n't very, not confident, beyond us, "
        "nobody has, no one has, none of us, n't anyone, less and less, fewer, struggle to, "
        "hard to, not good, n't good, out of date, ancient, falling apart"
    ),
    # Absence words: immediately before a topic they make it a barrier ("no reserves").
    "absence_words": _entries("no, zero, without, nor, lack of, lost our, lost the, lost a"),
}


@dataclass(frozen=True, slots=True)
class Wording:
    """A code in a further language (its ``[code.<language>]`` table); any part may be empty."""

    label: str | None = None
    cues: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Code:
    code: str
    family: Family
    main_label: str  # in the codebook's own language
    description: str
    cues: tuple[str, ...]  # these, the topics and the description: in the codebook's language
    topics: tuple[str, ...] = ()
    wordings: tuple[tuple[str, Wording], ...] = ()  # (language, wording) per further language

    @property
    def is_barrier(self) -> bool:
        return self.family != "success"

    @property
    def label(self) -> str:
        """The label in the language being spoken (i18n.current()) when the codebook has one
        in it, else in the codebook's own language: read where it is said (a digest, /review),
        so a code read by a Welsh lead is named in Welsh."""
        wording = self.wording(i18n.current())
        return wording.label if wording is not None and wording.label else self.main_label

    def wording(self, language: str) -> Wording | None:
        """The code in a further language, if the codebook has it there."""
        language = primary_language(language)
        return next((w for lang, w in self.wordings if lang == language), None)


Lexicon = dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class Codebook:
    """A set of codes plus the lexicons, with all patterns compiled once at load time."""

    codes: tuple[Code, ...]
    source: Path | None = None
    lexicon: Lexicon = field(default_factory=lambda: dict(DEFAULT_LEXICON))
    # Statistical back-up fitted on the codebook's training answers (None: rules only).
    model: TextModel | None = field(default=None, repr=False, compare=False)
    training: Path | None = None
    model_file: Path | None = field(default=None, compare=False)  # the fitted model's artefact
    threshold: float = 0.5  # [model] threshold: what the model is (or will be) fitted with
    language: str = "en"  # what the codes' own cues, topics and the lexicon are written in
    # The lexicon of each further language ([lexicon.<language>]), by primary language.
    lexicons: dict[str, Lexicon] = field(default_factory=dict)
    deps: tuple[Path, ...] = field(default=(), repr=False, compare=False)  # files it was read from
    index: CueIndex = field(init=False, repr=False, compare=False)
    negators: frozenset[str] = field(init=False, repr=False, compare=False)
    spelling: Spelling = field(init=False, repr=False, compare=False)
    success_set: frozenset[str] = field(init=False, repr=False, compare=False)
    # The rules of each further language with cues, as a codebook of their own (see in_language).
    others: dict[str, Codebook] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = str(self.source) if self.source else "<codebook>"
        own = [(c.code, c.cues, c.topics) for c in self.codes]
        self._compile(where, "", own, self.lexicon)
        object.__setattr__(
            self, "success_set", frozenset(c.code for c in self.codes if not c.is_barrier)
        )
        others: dict[str, Codebook] = {}
        for language in sorted(
            {lang for c in self.codes for lang, w in c.wordings if w.cues or w.topics}
        ):
            lexicon = self.lexicons.get(language)
            if lexicon is None:
                raise CodebookError(
                    f"{where}: field 'lexicon.{language}': missing: the cues in {language!r} "
                    f"need a [lexicon.{language}] table with that language's "
                    f"{', '.join(DEFAULT_LEXICON)}"
                )
            wordings = [(c.code, c.wording(language)) for c in self.codes]
            cues = [(code, w.cues, w.topics) for code, w in wordings if w is not None]
            other = copy.copy(self)
            for key, value in (
                ("language", language),
                ("lexicon", lexicon),
                ("lexicons", {}),
                ("model", None),
                ("others", {}),
            ):
                object.__setattr__(other, key, value)
            other._compile(where, f"{language}.", cues, lexicon)
            others[language] = other
        object.__setattr__(self, "others", others)

    def _compile(
        self,
        where: str,
        prefix: str,
        cues: Iterable[tuple[str, tuple[str, ...], tuple[str, ...]]],
        lexicon: Lexicon,
    ) -> None:
        """The index, negators and spelling of one language's rules: (code, cues, topics) per
        code and that language's lexicon. ``prefix`` names the language's fields in errors."""
        builder = CueIndexBuilder(where)
        phrases: list[str] = []
        for code, code_cues, topics in cues:
            builder.add(CUE, code, prefix + "cues", code_cues)
            builder.add(TOPIC, code, prefix + "topics", topics)
            phrases += [*code_cues, *topics]
        lex = f"lexicon.{prefix}"
        builder.add(PROBLEM, "", lex + "problem_markers", lexicon["problem_markers"])
        builder.add(DEFICIT, "", lex + "deficit_markers", lexicon["deficit_markers"])
        builder.add(ABSENCE, "", lex + "absence_words", lexicon["absence_words"])
        object.__setattr__(self, "index", builder.build())
        object.__setattr__(self, "negators", frozenset(lexicon["negators"]))
        phrases += [p for key in ("problem_markers", "deficit_markers") for p in lexicon[key]]
        object.__setattr__(self, "spelling", Spelling.build(phrases))

    def with_model(self, model: TextModel | None) -> Codebook:
        """The same rules with another text model (a shallow copy shares the compiled cues:
        recompiling them would double the load time)."""
        out = copy.copy(self)
        object.__setattr__(out, "model", model)
        return out

    def __getitem__(self, code: str) -> Code:
        for c in self.codes:
            if c.code == code:
                return c
        raise KeyError(code)

    def __contains__(self, code: object) -> bool:
        return any(c.code == code for c in self.codes)

    def __iter__(self) -> Iterator[Code]:
        return iter(self.codes)

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def barrier_codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.codes if c.is_barrier)

    @property
    def success_codes(self) -> tuple[str, ...]:
        return tuple(c.code for c in self.codes if not c.is_barrier)

    def family_of(self, code: str) -> Family:
        return self[code].family

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages the coder has cues for: the codebook's own, then the further ones."""
        return (primary_language(self.language), *self.others)

    def reads(self, language: str | None) -> bool:
        """Does the coder have cues for a text in this language? A person who never chose a
        language was spoken to in the bot's default, English, and is read as "en"."""
        return self.in_language(language) is not None

    def in_language(self, language: str | None) -> Codebook | None:
        """What codes a text in this language: this codebook (rules and model) for its own
        language, the rules of a further language with cues (no model: it was fitted on the
        main language), or None for a language without cues (the text waits for a coordinator).
        None is read as "en", as in ``reads``."""
        wanted = primary_language(language or "en")
        if wanted == primary_language(self.language):
            return self
        return self.others.get(wanted)


def primary_language(code: str) -> str:
    """'cy', 'en-GB' and 'en_GB' -> 'cy', 'en', 'en': cues are written per language, not per
    region."""
    return code.replace("_", "-").split("-", 1)[0].lower()


_LANGUAGE = re.compile(r"[a-z]{2,3}([-_][A-Za-z0-9]{2,8})*")
_LANGUAGE_KEY = r"^\s*language\s*="


def _line_of(raw: str, needle_re: str, occurrence: int = 1) -> int | None:
    """1-based line of the n-th match, so error messages can point at the offending entry."""
    for n, m in enumerate(re.finditer(needle_re, raw, re.MULTILINE), start=1):
        if n == occurrence:
            return raw.count("\n", 0, m.start()) + 1
    return None


def _where(path: str, line: int | None) -> str:
    return f"{path}, line {line}" if line else path


def _field_where(raw: str, name: str, start: int | None, key: str) -> str | None:
    """'file, line N' for ``key =`` inside the table (a [[code]] entry, or a language table in
    one) whose first line is ``start``."""
    if start is None:
        return None
    lines = raw.splitlines()
    for n in range(start, len(lines) + 1):
        text = lines[n - 1].strip()
        if n > start and text.startswith("["):
            break
        if re.match(rf"{re.escape(key)}\s*=", text):
            return _where(name, n)
    return None


def _table_line(raw: str, start: int | None, table: str, key: str) -> int | None:
    """Line of ``[table.key]`` (or of an inline ``key = {...}``) in the entry from ``start``."""
    if start is None:
        return None
    header = re.compile(
        rf"\[\s*{re.escape(table)}\s*\.\s*{re.escape(key)}\s*\]|{re.escape(key)}\s*="
    )
    lines = raw.splitlines()
    for n in range(start, len(lines) + 1):
        text = lines[n - 1].strip()
        if n > start and text.startswith("[["):
            break
        if header.match(text):
            return n
    return None


# One Codebook per codebook file and process: (path as given, resolved) -> (stamp, codebook).
_LOADED: dict[tuple[str, Path], tuple[tuple[object, ...], Codebook]] = {}
_LOAD_LOCK = threading.Lock()


def _stamp(raw: bytes, deps: Iterable[Path]) -> tuple[object, ...]:
    """What a loaded codebook depends on: its own text, and the mtime and size of its files."""
    out: list[object] = [raw]
    for d in deps:
        try:
            st = d.stat()
            out.append((str(d), st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((str(d), None, None))
    return tuple(out)


def load_codebook(path: Path | None = None) -> Codebook:
    """Load and validate a codebook; ``None`` loads the one shipped with the project.

    The result is shared by the whole process (a Codebook is immutable): a second call for the
    same file returns the same object unless the codebook, its training file or its model
    artefact changed on disk since.
    """
    p = Path(path) if path is not None else default_codebook_path()
    name = str(p)
    try:
        raw_bytes = p.read_bytes()
    except OSError as exc:
        raise CodebookError(f"{name}: cannot read codebook ({exc.strerror or exc})") from exc
    key = (name, p.resolve())
    with _LOAD_LOCK:
        hit = _LOADED.get(key)
        if hit is not None and hit[0] == _stamp(raw_bytes, hit[1].deps):
            return hit[1]
        book = _load(p, raw_bytes)
        _LOADED[key] = (_stamp(raw_bytes, book.deps), book)
        return book


def _load(p: Path, raw_bytes: bytes) -> Codebook:
    name = str(p)
    try:
        raw = raw_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CodebookError(f"{name}: cannot read codebook ({exc})") from exc
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        # tomllib puts "(at line N, column M)" in its message; keep it verbatim.
        raise CodebookError(f"{name}: not valid TOML: {exc}") from exc
    language = data.get("language", "en")
    if not isinstance(language, str) or not _LANGUAGE.fullmatch(language):
        where = _where(name, _line_of(raw, _LANGUAGE_KEY))
        raise CodebookError(
            f"{where}: field 'language': expected a language code such as 'en' or 'cy', "
            f"got {language!r}"
        )
    entries = data.get("code")
    if not isinstance(entries, list) or not entries:
        raise CodebookError(f"{name}: field 'code': expected at least one [[code]] table")
    seen: dict[str, int] = {}
    own = primary_language(language)
    codes = tuple(_read_code(entry, idx, raw, name, seen, own) for idx, entry in enumerate(entries))
    lexicon, lexicons = _read_lexicon(data, raw, name, own)
    codebook = Codebook(
        codes=codes, source=p, lexicon=lexicon, language=language, lexicons=lexicons
    )
    return _with_artefact(codebook, data, raw, p)


# A further language's table is named by a primary language code: cues are per language, not
# per region.
_FURTHER = re.compile(r"[a-z]{2,3}")


def _further_language(key: str, own: str, where: str, what: str) -> None:
    """Check the key of a further language's table (``[code.cy]``, ``[lexicon.cy]``)."""
    if not _FURTHER.fullmatch(key):
        raise CodebookError(
            f"{where}: field {what}: expected a table of a further language, named by its "
            f"code such as 'cy', got {key!r}"
        )
    if key == own:
        raise CodebookError(
            f"{where}: field {what}: {key!r} is the codebook's own language: write these "
            "at the top level, not in a table of their own"
        )


def _strings(value: Any, *, empty: bool) -> bool:
    """A list of non-empty strings (``empty``: the list itself may be empty)."""
    return (
        isinstance(value, list)
        and (empty or bool(value))
        and all(isinstance(v, str) and v.strip() for v in value)
    )


def _read_code(entry: Any, idx: int, raw: str, name: str, seen: dict[str, int], own: str) -> Code:
    """One [[code]] table, checked; errors point at its line (and the field's, when found)."""
    if not isinstance(entry, dict):
        raise CodebookError(f"{name}: field 'code': entry {idx + 1} is not a table")
    ident = entry.get("code")
    line = (
        _line_of(raw, rf"^\s*code\s*=\s*[\"']{re.escape(ident)}[\"']", seen.get(ident, 0) + 1)
        if isinstance(ident, str)
        else _line_of(raw, r"^\s*\[\[code\]\]", idx + 1)
    )
    loc = _where(name, line)

    def field_loc(key: str) -> str:
        return _field_where(raw, name, line, key) or loc

    if not isinstance(ident, str) or not re.fullmatch(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)*", ident):
        raise CodebookError(
            f"{loc}: field 'code': expected a dotted lower-case identifier, got {ident!r}"
        )
    if ident in seen:
        raise CodebookError(f"{loc}: field 'code': duplicate code {ident!r}")
    seen[ident] = seen.get(ident, 0) + 1
    family = entry.get("family")
    if family not in FAMILIES:
        raise CodebookError(
            f"{field_loc('family')}: field 'family' of {ident!r}: unknown family {family!r} "
            f"(expected one of {', '.join(FAMILIES)})"
        )
    for key in ("label", "description"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise CodebookError(f"{field_loc(key)}: field {key!r} of {ident!r}: missing or empty")
    cues = entry.get("cues")
    if not _strings(cues, empty=False):
        raise CodebookError(
            f"{field_loc('cues')}: field 'cues' of {ident!r}: "
            "expected a non-empty list of non-empty strings"
        )
    topics = entry.get("topics", [])
    if not _strings(topics, empty=True):
        raise CodebookError(
            f"{field_loc('topics')}: field 'topics' of {ident!r}: expected a list of strings"
        )
    if family == "success" and topics:
        # Success factors are praise; topic+problem-marker inference would turn
        # "meetings are a nightmare" into a success.
        raise CodebookError(
            f"{field_loc('topics')}: field 'topics' of {ident!r}: not allowed for success codes"
        )
    label, description = entry["label"].strip(), entry["description"].strip()
    wordings = tuple(
        (key, _read_wording(value, ident, family, key, raw, name, line, own))
        for key, value in entry.items()
        if isinstance(value, dict)
    )
    return Code(ident, family, label, description, tuple(cues), tuple(topics), wordings)


_WORDING_KEYS = ("label", "cues", "topics")


def _read_wording(
    table: dict[str, Any],
    ident: str,
    family: str,
    language: str,
    raw: str,
    name: str,
    line: int | None,
    own: str,
) -> Wording:
    """A code's table in a further language (``[code.cy]``): label, cues and topics, each
    optional."""
    at = _table_line(raw, line, "code", language)
    loc = _where(name, at or line)
    inline = at is not None and not raw.splitlines()[at - 1].lstrip().startswith("[")

    def field_loc(key: str) -> str:
        # An inline table (cy = {...}) is one line; the lines after it are the code's own.
        return loc if inline else _field_where(raw, name, at, key) or loc

    _further_language(language, own, loc, f"'{language}' of {ident!r}")
    for key in table:
        if key not in _WORDING_KEYS:
            raise CodebookError(
                f"{field_loc(key)}: field '{language}.{key}' of {ident!r}: unknown field "
                f"(expected {', '.join(_WORDING_KEYS)})"
            )
    label = table.get("label")
    if label is not None and not (isinstance(label, str) and label.strip()):
        raise CodebookError(
            f"{field_loc('label')}: field '{language}.label' of {ident!r}: empty or not a string"
        )
    for key in ("cues", "topics"):
        if not _strings(table.get(key, []), empty=True):
            raise CodebookError(
                f"{field_loc(key)}: field '{language}.{key}' of {ident!r}: expected a list of "
                "non-empty strings"
            )
    topics = tuple(table.get("topics", ()))
    if family == "success" and topics:
        raise CodebookError(
            f"{field_loc('topics')}: field '{language}.topics' of {ident!r}: not allowed for "
            "success codes"
        )
    return Wording(label.strip() if label else None, tuple(table.get("cues", ())), topics)


def _read_lexicon(
    data: dict[str, Any], raw: str, name: str, own: str
) -> tuple[Lexicon, dict[str, Lexicon]]:
    """The lexicon of the codebook's own language (built-in lists unless replaced), and of each
    further language ([lexicon.cy]: all four lists, since the built-in ones are English)."""
    lexicon = dict(DEFAULT_LEXICON)
    lexicons: dict[str, Lexicon] = {}
    lex_raw = data.get("lexicon", {})
    if not isinstance(lex_raw, dict):
        raise CodebookError(f"{name}: field 'lexicon': expected a table")
    for key, val in lex_raw.items():
        if isinstance(val, dict):
            at = _line_of(raw, rf"^[ \t]*\[\s*lexicon\s*\.\s*{re.escape(key)}\s*\]")
            where = _where(name, at)
            _further_language(key, own, where, f"'lexicon.{key}'")
            missing = [k for k in DEFAULT_LEXICON if k not in val]
            if missing:
                raise CodebookError(
                    f"{where}: field 'lexicon.{key}': missing {', '.join(missing)} (a further "
                    "language lists all four: the built-in ones are English)"
                )
            lexicons[key] = {k: _lexicon_list(v, f"{key}.{k}", raw, name) for k, v in val.items()}
        else:
            lexicon[key] = _lexicon_list(val, key, raw, name)
    return lexicon, lexicons


def _lexicon_list(val: Any, key: str, raw: str, name: str) -> tuple[str, ...]:
    """One lexicon list; ``key`` is its field under [lexicon] ("negators", "cy.negators")."""
    if key.rsplit(".", 1)[-1] not in DEFAULT_LEXICON:
        key_line = _line_of(raw, rf"^\s*{re.escape(key.rsplit('.', 1)[-1])}\s*=")
        raise CodebookError(
            f"{_where(name, key_line)}: field "
            f"'lexicon.{key}': unknown lexicon (expected one of {', '.join(DEFAULT_LEXICON)})"
        )
    if not isinstance(val, list) or not val or not all(isinstance(v, str) for v in val):
        raise CodebookError(f"{name}: field 'lexicon.{key}': expected a non-empty list")
    return tuple(val)


_TRAINING_KEY = r"^\s*training\s*="


def _with_artefact(codebook: Codebook, data: dict[str, Any], raw: str, p: Path) -> Codebook:
    """The codebook with its fitted text model, when it names a training file and the model's
    artefact was fitted for exactly this training file, these rules and settings. A missing or
    stale artefact is not refitted here (fitting codes every labelled set several times over):
    the codebook codes with its rules alone, and says so in the log."""
    name = str(p)
    training = data.get("training")
    if training is None:
        return codebook  # rules only
    if not isinstance(training, str) or not training.strip():
        raise CodebookError(
            f"{_where(name, _line_of(raw, _TRAINING_KEY))}: field 'training': expected a "
            "file name (relative to the codebook)"
        )
    model_raw = data.get("model", {})
    if not isinstance(model_raw, dict):
        raise CodebookError(f"{name}: field 'model': expected a table")
    threshold = model_raw.get("threshold", 0.5)
    if not isinstance(threshold, int | float) or not 0 < threshold < 1:
        raise CodebookError(f"{name}: field 'model.threshold': expected a number between 0 and 1")
    artefact = model_raw.get("file", f"{p.stem}.model.npz")
    if not isinstance(artefact, str) or not artefact.strip():
        raise CodebookError(f"{name}: field 'model.file': expected a file name")
    tpath = (p.parent / training).resolve()
    mpath = (p.parent / artefact).resolve()
    for key, value in (("training", tpath), ("model_file", mpath), ("deps", (tpath, mpath))):
        object.__setattr__(codebook, key, value)
    object.__setattr__(codebook, "threshold", float(threshold))
    model, why = load_model(mpath, model_digest_for(codebook))
    if model is None:
        log.warning(
            "codebook %s: coding with the rules only, %s; run `python -m bot.coding.training "
            "fit %s` to fit the text model",
            name,
            why,
            name,
        )
    return codebook.with_model(model)


def rules_fingerprint(codebook: Codebook) -> str:
    """The cues, topics and lexicons: the combiner learned how far *these* rules can be
    trusted, so changing them makes the shipped artefact stale."""
    data = {
        "codes": [[c.code, c.family, list(c.cues), list(c.topics)] for c in codebook.codes],
        "lexicon": {k: list(v) for k, v in sorted(codebook.lexicon.items())},
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def model_digest_for(codebook: Codebook) -> str:
    """What the codebook's text model must have been fitted for (see text_model.model_digest)."""
    assert codebook.training is not None
    try:
        training = codebook.training.read_bytes()
    except OSError as exc:
        raise CodebookError(
            f"{codebook.training}: cannot read training file ({exc.strerror or exc})"
        ) from exc
    codes = [c.code for c in codebook.codes]
    return model_digest(training, codes, codebook.threshold, rules_fingerprint(codebook))
