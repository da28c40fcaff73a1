"""Reading a codebook file (TOML): every field checked, each error naming the file, the line
and the field; the shared, reloaded-when-changed Codebook per file (load_codebook); and the
text model's artefact attached when fresh. What a codebook is: bot.coding.codebook."""

from __future__ import annotations

import logging
import re
import threading
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bot.coding.codebook import (
    DEFAULT_LEXICON,
    FAMILIES,
    Code,
    Codebook,
    CodebookError,
    Lexicon,
    Wording,
    default_codebook_path,
    model_digest_for,
    primary_language,
)
from bot.coding.text_model import load_model

log = logging.getLogger(__name__)

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
