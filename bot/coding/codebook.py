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

Cues are language-tagged: a codebook's top-level ``language`` (default "en") is the language its
cues, topics and lexicons are written in, and the coder codes only texts in that language
(``Codebook.reads``). A text in another language is left for a coordinator to code (see
bot.coding.stored.UNCODED). A deployment with cues in a second language points the bot at a
codebook in that language.

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
class Code:
    code: str
    family: Family
    label: str
    description: str
    cues: tuple[str, ...]
    topics: tuple[str, ...] = ()

    @property
    def is_barrier(self) -> bool:
        return self.family != "success"


@dataclass(frozen=True)
class Codebook:
    """A set of codes plus the lexicons, with all patterns compiled once at load time."""

    codes: tuple[Code, ...]
    source: Path | None = None
    lexicon: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_LEXICON))
    # Statistical back-up fitted on the codebook's training answers (None: rules only).
    model: TextModel | None = field(default=None, repr=False, compare=False)
    training: Path | None = None
    model_file: Path | None = field(default=None, compare=False)  # the fitted model's artefact
    threshold: float = 0.5  # [model] threshold: what the model is (or will be) fitted with
    language: str = "en"  # what every cue, topic and lexicon entry is written in
    deps: tuple[Path, ...] = field(default=(), repr=False, compare=False)  # files it was read from
    index: CueIndex = field(init=False, repr=False, compare=False)
    negators: frozenset[str] = field(init=False, repr=False, compare=False)
    spelling: Spelling = field(init=False, repr=False, compare=False)
    success_set: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = str(self.source) if self.source else "<codebook>"
        builder = CueIndexBuilder(where)
        for c in self.codes:
            builder.add(CUE, c.code, "cues", c.cues)
            builder.add(TOPIC, c.code, "topics", c.topics)
        lex = self.lexicon
        builder.add(PROBLEM, "", "lexicon.problem_markers", lex["problem_markers"])
        builder.add(DEFICIT, "", "lexicon.deficit_markers", lex["deficit_markers"])
        builder.add(ABSENCE, "", "lexicon.absence_words", lex["absence_words"])
        object.__setattr__(self, "index", builder.build())
        object.__setattr__(self, "negators", frozenset(lex["negators"]))
        phrases = [p for c in self.codes for p in (*c.cues, *c.topics)]
        phrases += [p for key in ("problem_markers", "deficit_markers") for p in lex[key]]
        object.__setattr__(self, "spelling", Spelling.build(phrases))
        object.__setattr__(
            self, "success_set", frozenset(c.code for c in self.codes if not c.is_barrier)
        )

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

    def reads(self, language: str | None) -> bool:
        """Does the coder have cues for a text in this language? A person who never chose a
        language was spoken to in the bot's default, English, and is read as "en"."""
        return primary_language(language or "en") == primary_language(self.language)


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
    """'file, line N' for ``key =`` inside the [[code]] entry whose code is on line ``start``."""
    if start is None:
        return None
    lines = raw.splitlines()
    for n in range(start, len(lines) + 1):
        text = lines[n - 1].strip()
        if n > start and text.startswith("[["):
            break
        if re.match(rf"{re.escape(key)}\s*=", text):
            return _where(name, n)
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
    entries = data.get("code")
    if not isinstance(entries, list) or not entries:
        raise CodebookError(f"{name}: field 'code': expected at least one [[code]] table")
    seen: dict[str, int] = {}
    codes = tuple(_read_code(entry, idx, raw, name, seen) for idx, entry in enumerate(entries))
    language = data.get("language", "en")
    if not isinstance(language, str) or not _LANGUAGE.fullmatch(language):
        where = _where(name, _line_of(raw, _LANGUAGE_KEY))
        raise CodebookError(
            f"{where}: field 'language': expected a language code such as 'en' or 'cy', "
            f"got {language!r}"
        )
    codebook = Codebook(
        codes=codes, source=p, lexicon=_read_lexicon(data, raw, name), language=language
    )
    return _with_artefact(codebook, data, raw, p)


def _read_code(entry: Any, idx: int, raw: str, name: str, seen: dict[str, int]) -> Code:
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
    if (
        not isinstance(cues, list)
        or not cues
        or not all(isinstance(c, str) and c.strip() for c in cues)
    ):
        raise CodebookError(
            f"{field_loc('cues')}: field 'cues' of {ident!r}: "
            "expected a non-empty list of non-empty strings"
        )
    topics = entry.get("topics", [])
    if not isinstance(topics, list) or not all(isinstance(t, str) and t.strip() for t in topics):
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
    return Code(ident, family, label, description, tuple(cues), tuple(topics))


def _read_lexicon(data: dict[str, Any], raw: str, name: str) -> dict[str, tuple[str, ...]]:
    lexicon = dict(DEFAULT_LEXICON)
    lex_raw = data.get("lexicon", {})
    if not isinstance(lex_raw, dict):
        raise CodebookError(f"{name}: field 'lexicon': expected a table")
    for key, val in lex_raw.items():
        if key not in DEFAULT_LEXICON:
            key_line = _line_of(raw, rf"^\s*{re.escape(key)}\s*=")
            raise CodebookError(
                f"{_where(name, key_line)}: field "
                f"'lexicon.{key}': unknown lexicon (expected one of {', '.join(DEFAULT_LEXICON)})"
            )
        if not isinstance(val, list) or not val or not all(isinstance(v, str) for v in val):
            raise CodebookError(f"{name}: field 'lexicon.{key}': expected a non-empty list")
        lexicon[key] = tuple(val)
    return lexicon


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
