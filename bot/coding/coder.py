"""Rule/lexicon-based coding of consultation answers against the barrier taxonomy.

The coder is deliberately transparent: every code it assigns can be traced back to the words
that triggered it (``Evidence``), so coordinators can check and overrule it. No network. When
the codebook names a training file, a small text model and a combiner (bot/coding_model.py)
decide together with the rules (``code_texts``); otherwise the rules alone code. A codebook
(TOML) lists, per code, two kinds of cue:

* ``cues`` are self-contained *problem statements* ("roof leaks", "never get told",
  "too many meetings"). They count on their own, unless a negator sits just before them
  ("it is *not* tokenistic").
* ``topics`` name a *resource or subject* ("volunteers", "premises", "paperwork"). Naming a
  subject is not a barrier ("our volunteers are brilliant"), so a topic only counts when the
  same clause also carries a problem marker ("hard", "not enough", "can't", "nightmare"), when
  an absence word sits right before it ("no reserves"), or when it is the answer to a negated
  contrast ("funding isn't the problem, volunteers are").

Negation therefore works in two directions, which is the point: "no problems with premises"
negates the *problem marker* and discards the topic, while "we never get told about tenders"
is a cue whose negative sense is the problem itself and is kept.

Cue mini-language (one phrase per string, case-insensitive):

* words separated by spaces match across spaces, hyphens or slashes ("short term" matches
  "short-term" and "shortterm");
* a plain word also matches simple inflections (volunteer -> volunteers, volunteering,
  volunteered; apply -> applies, applied) and British/US spelling variants (organise/organize,
  centre/center, labour/labor);
* ``word*`` matches any word starting with ``word``; ``=word`` matches the word exactly;
* ``a|b`` inside one word position gives alternatives;
* ``(a b|c d)`` gives alternative phrases at one position;
* ``[word]`` is an optional word; ``~N`` allows up to N arbitrary words; ``#`` matches a number
  or amount such as "40", "£500", "5k" or "a hundred pound";
* a cue starting with ``!`` names a good state that is a barrier only when negated:
  ``!up to standard`` codes "the kitchen isn't up to standard".
"""

from __future__ import annotations

import copy
import logging
import re
import threading
import tomllib
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from bot.coding.text_model import TextModel

__all__ = [
    "Code",
    "Codebook",
    "CodebookError",
    "Coding",
    "Evidence",
    "Gold",
    "code_text",
    "code_texts",
    "default_codebook_path",
    "explain",
    "load_codebook",
]

Family = Literal["external", "internal", "success"]
FAMILIES: tuple[str, ...] = ("external", "internal", "success")
EvidenceKind = Literal["cue", "topic", "contrast", "headline", "model"]

# Evidence weights feed the per-code confidence: a self-contained cue is far more reliable than
# a topic word that merely shares a clause with a problem marker.
_WEIGHTS: dict[str, float] = {
    "cue": 0.9,
    "absence": 0.75,
    "topic": 0.6,
    "contrast": 0.55,
    "headline": 0.6,
    "model": 0.5,
}
# Codes below this confidence, or answers where negation discarded something, are flagged so a
# coordinator looks at them rather than trusting the count blindly.
DOUBTFUL_BELOW = 0.7


class Gold(frozenset):
    """The codes of a labelled answer whose author labelled only some of the codebook's codes:
    ``unlabelled`` are the codes outside their label space (e.g. the success factors, for an
    author who coded barriers only). Those codes are neither positive nor negative evidence:
    fits give them no weight for this answer and scoring leaves them out."""

    unlabelled: frozenset[str]

    def __new__(cls, codes: Iterable[str] = (), unlabelled: Iterable[str] = ()) -> Gold:
        out = super().__new__(cls, codes)
        out.unlabelled = frozenset(unlabelled)
        return out


def unlabelled_of(gold: frozenset[str]) -> frozenset[str]:
    """Codes outside the label space of a labelled answer (empty for a plain frozenset)."""
    return getattr(gold, "unlabelled", frozenset())


def default_codebook_path() -> Path:
    """The codebook shipped with the project (a deployment may point elsewhere)."""
    return Path(__file__).resolve().parents[2] / "templates" / "codebook" / "barriers.toml"


class CodebookError(ValueError):
    """A codebook file is missing, is not valid TOML, or breaks the codebook schema."""


# ---------------------------------------------------------------------------------------------
# Default lexicons. A codebook may replace any of them under a [lexicon] table; they live here
# so that a deployment's own codebook only has to list its codes.
# ---------------------------------------------------------------------------------------------

# fmt: off  (one word list per line would make these lexicons unreadable)
DEFAULT_LEXICON: dict[str, tuple[str, ...]] = {
    # Words that flip what follows them. Apostrophe-less spellings are common on phones.
    "negators": (
        "not",
        "no",
        "never",
        "nor",
        "neither",
        "without",
        "hardly",
        "cannot",
        "dont",
        "cant",
        "isnt",
        "arent",
        "wasnt",
        "werent",
        "didnt",
        "doesnt",
        "havent",
        "hasnt",
        "hadnt",
        "wont",
        "aint",
        "nothing",
        "nobody",
        "noone",
        "none",
    ),
    # Evaluative problem words that *can* be negated ("no problems", "isn't an issue").
    "problem_markers": (
        "problem*",
        "issue*",
        "trouble*",
        "difficult*",
        "barrier*",
        "challeng*",
        "concern*",
        "worr*",
        "struggl*",
        "hard",
        "harder",
        "nightmare*",
        "obstacle*",
        "hurdle*",
        "tough",
        "impossible",
        "poor",
        "weak*",
        "limited",
        "insufficient",
        "scarce",
        "late",
        "later",
        "cut",
        "cuts",
        "slashed",
        "falling",
        "dropp*",
        "declin*",
        "shrink*",
        "lose",
        "losing",
        "lost",
        "burn* out",
        "burnt",
        "stretched",
        "exhausted",
        "tired",
        "overwhelm*",
        "fragile",
        "precarious",
        "at risk",
        "broken",
        "falling apart",
        "rubbish",
        "terrible",
        "awful",
        "endless",
        "excessive",
        "ridiculous",
        "disproportionate*",
        "over the top",
        "overkill",
        "crazy",
        "mad",
        "madness",
        "a pain",
        "frustrat*",
        "hurts",
        "killing",
        "expensive",
        "costly",
        "costs a fortune",
        "dried up",
        "drying up",
        "too",
        "only",
        "leave",
        "leaving",
        "left",
        "resign*",
        "short",
        "shortage*",
        "risk*",
        "pressure*",
        "nobody",
        "no one",
        "no-one",
        "dwindl*",
        "unreliable",
        "complicated",
        "complex",
        "confus*",
        "daunting",
        "bureaucratic",
        "onerous",
        "time consuming",
        "takes ages",
        "squeez*",
        "stuck",
        "drift*",
        "so much",
        "doubled",
        "gone up",
        "going up",
        "rising",
    ),
    # Deficit phrases whose negative sense *is* the problem, so they are never negated.
    "deficit_markers": (
        "not enough",
        "n't enough",
        "lack*",
        "short of",
        "too few",
        "too little",
        "too small",
        "can't",
        "unable",
        "n't have",
        "haven't got",
        "n't got",
        "can't afford",
        "need",
        "never",
        "no longer",
        "can't find",
        "can't get",
        "can't keep",
        "n't know",
        "no idea",
        "not very",
        "n't very",
        "not confident",
        "beyond us",
        "nobody has",
        "no one has",
        "none of us",
        "n't anyone",
        "less and less",
        "fewer",
        "struggle to",
        "hard to",
        "not good",
        "n't good",
        "out of date",
        "ancient",
        "falling apart",
    ),
    # Absence words: immediately before a topic they make it a barrier ("no reserves").
    "absence_words": ("no", "zero", "without", "nor", "lack of", "lost our", "lost the", "lost a"),
}
# fmt: on

# Clause boundaries: punctuation, contrastive conjunctions, and "and" when a new subject
# starts ("... too big and we don't have ..."), because negation and problem markers should not
# leak across clauses.
_CLAUSE_SPLIT = re.compile(
    r"[.;!?:\n(),\u2013\u2014]+|\s-\s|"
    r"\b(?:but|however|though|although|whereas|apart from|except|while|because|as long as|"
    r"(?:and|so)\s+(?=(?:we|our|i|the|they|their|it|its|it's|there|nobody|no one|everyone|"
    r"half|staff|now|then|also)\b))\b"
)
# The second half of "X isn't the problem, Y is" / "it's not X, it's Y" takes over the problem
# that the first half denied.
_CONTRAST_HEAD = re.compile(
    r"^\s*(?:and\s+)?(?:it's|its|it is|the problem is|the issue is|rather)\b"
)
_CONTRAST_TAIL = re.compile(r"\b(?:is|are|was|were|does|do)\s*$")
_TOKEN = re.compile(r"£?\d[\d,.]*[km]?|[\w]+(?:'\w+)*")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})

_SEP = r"[\s\-/]*"
_WORD_CHARS = r"[\w'£]"


# ---------------------------------------------------------------------------------------------
# Codebook
# ---------------------------------------------------------------------------------------------


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


# Groups an indexed pattern can belong to. _NEG_CUE is a "!cue": a positive state that is a
# barrier only when negated ("!up to standard" -> "isn't up to standard").
_CUE, _TOPIC, _PROBLEM, _DEFICIT, _ABSENCE, _NEG_CUE = range(6)
_Match = tuple[int, str, int, int, re.Pattern[str]]  # (group, code, start, end, pattern)


@dataclass(frozen=True, slots=True)
class _Index:
    """Every cue compiled once, and indexed by the first letters of its first word.

    Scanning an answer with one big alternation per code costs a try of every alternative at
    every character. Instead the answer is tokenised once, each token's first three letters
    pick the few cues that could start there, and only those are tried with ``match`` at that
    token. That is what lets a digest code 100,000 answers in seconds.
    """

    by_key: dict[str, tuple[int, ...]]
    # (group, code, pattern) per cue; the pattern is None until the cue is first tried, so
    # loading does not pay for compiling some 1,300 regexes that one answer never needs.
    entries: list[tuple[int, str, re.Pattern[str] | None]]
    bodies: tuple[tuple[str, str, str], ...]  # (regex, cue as written, where) per entry
    inword: tuple[tuple[int, str, re.Pattern[str]], ...]  # cues that start mid-word ("n't")
    source: dict[re.Pattern[str], str]  # the codebook string each pattern was compiled from
    cache: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def compile(self, i: int) -> re.Pattern[str]:
        body, cue, where = self.bodies[i]
        try:
            rx = re.compile(body)
        except re.error as exc:  # a bug in _cue_regex rather than in the codebook
            raise CodebookError(f"{where}: bad cue {cue!r}: {exc}") from exc
        self.source.setdefault(rx, cue)
        group, code, _ = self.entries[i]
        self.entries[i] = (group, code, rx)
        return rx

    def compile_all(self) -> None:
        for i, entry in enumerate(self.entries):
            if entry[2] is None:
                self.compile(i)

    def candidates(self, tok: str) -> tuple[int, ...]:
        """Entries whose first word could be ``tok`` (memoised: answers reuse few words)."""
        hit = self.cache.get(tok)
        if hit is not None:
            return hit
        first = tok[0]
        if first.isdigit() or first == "£":
            keys: tuple[str, ...] = ("#",)
        elif tok in _NUMBER_SET:
            keys = ("#", tok[:3], "*" + first, "*" + tok[:2])
        elif len(tok) >= 3:
            keys = (tok[:3], "*" + first, "*" + tok[:2])
        else:
            keys = ("=" + tok, "*" + first, "*" + tok[:2])
        found: list[int] = []
        for key in keys:
            found.extend(self.by_key.get(key, ()))
        hit = tuple(found)
        if len(self.cache) < 200_000:  # bounded: free text has an open vocabulary
            self.cache[tok] = hit
        return hit

    def scan(self, norm: str, tokens: list[tuple[int, int, str]]) -> list[_Match]:
        best: dict[tuple[int, str, int], tuple[int, re.Pattern[str]]] = {}
        entries = self.entries
        cache = self.cache
        for start, _end, tok in tokens:
            found = cache.get(tok)
            if found is None:
                found = self.candidates(tok)
            for i in found:
                group, code, rx = entries[i]
                if rx is None:
                    rx = self.compile(i)
                m = rx.match(norm, start)
                if m is not None:
                    k = (group, code, start)
                    # Keep the longest match per code and start: it is the best evidence.
                    if k not in best or m.end() > best[k][0]:
                        best[k] = (m.end(), rx)
        for group, code, rx in self.inword:
            for m in rx.finditer(norm):
                k = (group, code, m.start())
                if k not in best or m.end() > best[k][0]:
                    best[k] = (m.end(), rx)
        return [(g, c, st, en, rx) for (g, c, st), (en, rx) in best.items()]


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
    _deps: tuple[Path, ...] = field(default=(), repr=False, compare=False)  # files it was read from
    _index: _Index = field(init=False, repr=False, compare=False)
    _negators: frozenset[str] = field(init=False, repr=False, compare=False)
    _fuzzy: _Fuzzy = field(init=False, repr=False, compare=False)
    _success: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        where = str(self.source) if self.source else "<codebook>"
        builder = _IndexBuilder(where)
        for c in self.codes:
            builder.add(_CUE, c.code, "cues", c.cues)
            builder.add(_TOPIC, c.code, "topics", c.topics)
        lex = self.lexicon
        builder.add(_PROBLEM, "", "lexicon.problem_markers", lex["problem_markers"])
        builder.add(_DEFICIT, "", "lexicon.deficit_markers", lex["deficit_markers"])
        builder.add(_ABSENCE, "", "lexicon.absence_words", lex["absence_words"])
        object.__setattr__(self, "_index", builder.build())
        object.__setattr__(self, "_negators", frozenset(lex["negators"]))
        phrases = [p for c in self.codes for p in (*c.cues, *c.topics)]
        phrases += [p for key in ("problem_markers", "deficit_markers") for p in lex[key]]
        object.__setattr__(self, "_fuzzy", _Fuzzy.build(phrases))
        object.__setattr__(
            self, "_success", frozenset(c.code for c in self.codes if not c.is_barrier)
        )

    def __getitem__(self, code: str) -> Code:
        for c in self.codes:
            if c.code == code:
                return c
        raise KeyError(code)

    def __contains__(self, code: object) -> bool:
        return any(c.code == code for c in self.codes)

    def __iter__(self):  # type: ignore[no-untyped-def]
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


log = logging.getLogger(__name__)

# One Codebook per codebook file and process: (path as given, resolved) -> (stamp, codebook).
_LOADED: dict[tuple[str, Path], tuple[tuple, Codebook]] = {}
_LOAD_LOCK = threading.Lock()


def _stamp(raw: bytes, deps: Iterable[Path]) -> tuple:
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
        if hit is not None and hit[0] == _stamp(raw_bytes, hit[1]._deps):
            return hit[1]
        book = _load(p, raw_bytes)
        _LOADED[key] = (_stamp(raw_bytes, book._deps), book)
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
    codes: list[Code] = []
    for idx, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise CodebookError(f"{name}: field 'code': entry {idx + 1} is not a table")
        ident = entry.get("code")
        line = (
            _line_of(raw, rf"^\s*code\s*=\s*[\"']{re.escape(ident)}[\"']", seen.get(ident, 0) + 1)
            if isinstance(ident, str)
            else _line_of(raw, r"^\s*\[\[code\]\]", idx + 1)
        )
        loc = _where(name, line)

        def field_loc(key: str, start: int | None = line, fallback: str = loc) -> str:
            return _field_where(raw, name, start, key) or fallback

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
                raise CodebookError(
                    f"{field_loc(key)}: field {key!r} of {ident!r}: missing or empty"
                )
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
        if not isinstance(topics, list) or not all(
            isinstance(t, str) and t.strip() for t in topics
        ):
            raise CodebookError(
                f"{field_loc('topics')}: field 'topics' of {ident!r}: expected a list of strings"
            )
        if family == "success" and topics:
            # Success factors are praise; topic+problem-marker inference would turn
            # "meetings are a nightmare" into a success.
            raise CodebookError(
                f"{field_loc('topics')}: field 'topics' of {ident!r}: not allowed for success codes"
            )
        codes.append(
            Code(
                ident,
                family,
                entry["label"].strip(),
                entry["description"].strip(),
                tuple(cues),
                tuple(topics),
            )
        )

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
    codebook = Codebook(codes=tuple(codes), source=p, lexicon=lexicon)
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
    object.__setattr__(codebook, "_deps", (tpath, mpath))
    examples = load_training(tpath, codebook)
    digest = _digest(tpath, codebook, float(threshold))
    from bot.coding.text_model import load_model

    model, why = load_model(mpath, digest)
    if model is None:
        # The combiner is not refitted here (that codes every labelled set several times over);
        # the default one is used until `python -m bot.coding.text_model fit` writes a fresh artefact.
        log.info(
            "codebook %s: fitting the text model at load, with the default combiner: %s", name, why
        )
        out = with_model(codebook, examples, float(threshold), tpath)
    else:
        out = copy.copy(codebook)
        object.__setattr__(out, "model", model)
        object.__setattr__(out, "training", tpath)
    object.__setattr__(out, "model_file", mpath)
    return out


def _rules_fingerprint(codebook: Codebook) -> str:
    """The cues, topics and lexicons: the combiner learned how far *these* rules can be
    trusted, so changing them makes the shipped artefact stale."""
    import hashlib
    import json

    data = {
        "codes": [[c.code, c.family, list(c.cues), list(c.topics)] for c in codebook.codes],
        "lexicon": {k: list(v) for k, v in sorted(codebook.lexicon.items())},
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _digest(tpath: Path, codebook: Codebook, threshold: float) -> str:
    from bot.coding.text_model import model_digest

    return model_digest(
        tpath.read_bytes(),
        [c.code for c in codebook.codes],
        threshold,
        _rules_fingerprint(codebook),
    )


def refit_model(path: Path | None = None) -> Path:
    """Fit the text model of a codebook and write it next to the codebook (``[model] file``,
    by default ``<codebook>.model.npz``); returns the artefact's path."""
    from bot.coding.text_model import save_model

    p = Path(path) if path is not None else default_codebook_path()
    book = load_codebook(p)
    if book.model is None or book.training is None or book.model_file is None:
        raise CodebookError(f"{p}: no 'training' file, so no model to fit")
    thr = book.model.threshold
    rows, groups = load_training_sets(book.training, book)
    fitted = with_model(book, rows, thr, book.training, groups).model
    assert fitted is not None
    save_model(fitted, book.model_file, _digest(book.training, book, thr))
    return book.model_file


_TRAINING_KEY = r"^\s*training\s*="


def load_training(path: Path, codebook: Codebook) -> list[tuple[str, frozenset[str]]]:
    """Labelled answers from a JSON-lines file: one {"text": ..., "codes": [...]} per line."""
    return load_training_sets(path, codebook)[0]


def load_training_sets(
    path: Path, codebook: Codebook
) -> tuple[list[tuple[str, frozenset[str]]], list[str | None]]:
    """Labelled answers and, per answer, the labelled set it came from (its "set" field), or
    None for answers that are training-only ("train_only": true) or name no set. The combiner
    is fitted by holding out one set at a time; training-only answers are never held out.
    An answer with "label_space": "barriers" was labelled by an author who coded barriers
    only: its gold is a ``Gold`` whose success codes are unlabelled (not negatives)."""
    import json

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise CodebookError(f"{path}: cannot read training file ({exc.strerror or exc})") from exc
    known = {c.code for c in codebook.codes}
    rows: list[tuple[str, frozenset[str]]] = []
    groups: list[str | None] = []
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            text, gold = obj["text"], frozenset(obj["codes"])
        except (ValueError, KeyError, TypeError) as exc:
            raise CodebookError(f"{path}, line {n}: expected {{'text', 'codes'}}: {exc}") from exc
        if not isinstance(text, str) or not gold <= known:
            raise CodebookError(f"{path}, line {n}: unknown code(s) {sorted(gold - known)}")
        space = obj.get("label_space", "all")
        if space == "barriers":
            gold = Gold(gold, codebook.success_codes)
        elif space != "all":
            raise CodebookError(f"{path}, line {n}: label_space must be 'all' or 'barriers'")
        rows.append((text, gold))
        group = obj.get("set")
        groups.append(None if obj.get("train_only") or not isinstance(group, str) else group)
    if not rows:
        raise CodebookError(f"{path}: no training answers")
    return rows, groups


def with_model(
    codebook: Codebook,
    examples: Iterable[tuple[str, frozenset[str]]],
    threshold: float = 0.5,
    training: Path | None = None,
    groups: list[str | None] | None = None,
) -> Codebook:
    """The codebook plus a text model fitted on ``examples`` (used by load_codebook, the fit
    command and the bench's leave-one-set-out runs). With ``groups`` (see load_training_sets)
    the combiner is fitted too (``fit_text_model``); without, it is the default one."""
    model = fit_text_model(codebook, list(examples), groups, threshold)
    # A shallow copy shares the compiled cues (recompiling them would double the load time).
    out = copy.copy(codebook)
    object.__setattr__(out, "model", model)
    object.__setattr__(out, "training", training)
    return out


def _fit_only(codebook: Codebook, rows: list[tuple[str, frozenset[str]]], threshold: float):  # type: ignore[no-untyped-def]
    from bot.coding.text_model import fit_model

    return fit_model(
        [[t[2] for t in _model_tokens(text, codebook)] for text, _ in rows],
        [gold for _, gold in rows],
        [c.code for c in codebook.codes],
        threshold,
    )


def fit_text_model(
    codebook: Codebook,
    rows: list[tuple[str, frozenset[str]]],
    groups: list[str | None] | None = None,
    threshold: float = 0.5,
) -> TextModel:
    """The text model fitted on ``rows``, and its combiner fitted by leave-one-set-out.

    For each labelled set (``groups``; at least three are needed, else the default combiner is
    kept) the rules are pruned to the cues with a correct hit on the *other* sets
    (``supported_cues``: what a cue writer who had not read this set would plausibly have
    written) and a model is fitted without it; their evidence on the held-out set is what the
    combiner learns from. So it learns how much rules and model are worth on unseen wording,
    not on the answers the cues were written from. Training-only answers (group None) are in
    every fit and never held out or used as cue support.
    """
    from bot.coding.text_model import fit_combiner

    model = _fit_only(codebook, rows, threshold)
    held = sorted({g for g in groups or () if g is not None})
    if groups is None or len(held) < 3:
        return model
    import numpy as np

    codes = model.codes
    xs, ys, ms = [], [], []
    for g in held:
        train = [r for r, h in zip(rows, groups, strict=True) if h != g]
        support = [r for r, h in zip(rows, groups, strict=True) if h is not None and h != g]
        test = [r for r, h in zip(rows, groups, strict=True) if h == g]
        rules = pruned(codebook, supported_cues(support, codebook))
        fold = _fit_only(codebook, train, threshold)
        texts = [t for t, _ in test]
        codings = [rule_code(t, rules) for t in texts]
        toks = [_model_tokens(t, codebook) for t in texts]
        xs.append(_combiner_rows(texts, codings, toks, fold))
        ys.append(np.array([[c in gold for c in codes] for _, gold in test]).ravel())
        # (answer, code) rows outside an answer's label space teach the combiner nothing.
        ms.append(
            np.array([[c not in unlabelled_of(gold) for c in codes] for _, gold in test]).ravel()
        )
    keep = np.concatenate(ms)
    model.combiner = fit_combiner(np.vstack(xs)[keep], np.concatenate(ys)[keep])
    model.combiner_fitted = True
    return model


def _combiner_rows(texts, codings, toks, model):  # type: ignore[no-untyped-def]
    """Combiner inputs as (n_answers * n_codes, n_features) rows."""
    from bot.coding.text_model import COMBINER_FEATURES, combiner_inputs, segments_of

    keys = [[t[2] for t in tk] for tk in toks]
    segs = [segments_of(_normalise(t), tk) for t, tk in zip(texts, toks, strict=True)]
    p, p_seg = model.scores(keys, segs)
    rule, strength, cue = _rule_inputs(codings, model.codes)
    x = combiner_inputs(p, p_seg, rule, strength, cue, [len(k) for k in keys], model.short_words)
    return x.reshape(-1, len(COMBINER_FEATURES))


def supported_cues(
    examples: Iterable[tuple[str, frozenset[str]]], codebook: Codebook
) -> set[tuple[str, str]]:
    """(code, cue) pairs with at least one correct, non-negated hit on ``examples``."""
    keep: set[tuple[str, str]] = set()
    for text, gold in examples:
        for ev in rule_code(text, codebook).evidence:
            if not ev.negated and ev.code in gold and ev.cue is not None:
                keep.add((ev.code, ev.cue))
    return keep


def pruned(codebook: Codebook, keep: set[tuple[str, str]]) -> Codebook:
    """The codebook's rules with only the cues and topics in ``keep`` (lexicons untouched, no
    model): the rules as someone who had only read the answers behind ``keep`` might have
    written them."""
    codes = tuple(
        replace(
            c,
            cues=tuple(q for q in c.cues if (c.code, q) in keep),
            topics=tuple(t for t in c.topics if (c.code, t) in keep),
        )
        for c in codebook.codes
    )
    return Codebook(codes=codes, source=codebook.source, lexicon=dict(codebook.lexicon))


# ---------------------------------------------------------------------------------------------
# Cue compilation
# ---------------------------------------------------------------------------------------------

_US_UK = (
    # Applied to each literal surface form so that cues can be written in British spelling.
    (re.compile(r"is(e|ed|es|ing|ation|ations|er|ers)$"), r"i[sz]\1"),
    (re.compile(r"isation"), r"i[sz]ation"),
    (re.compile(r"(?<=\w{3})our(s|ed|ing)?$"), r"ou?r\1"),
    (re.compile(r"centre"), r"cent(?:re|er)"),
    (re.compile(r"programme"), r"program(?:me)?"),
    (re.compile(r"licence"), r"licen[cs]e"),
    (re.compile(r"judgement"), r"judge?ment"),
)
_VOWELS = set("aeiou")
# "can't" in a cue should also match "cannot", "can not" and "cant".
_CONTRACTIONS = {
    "can't": r"(?:can'?t|cannot|can\s+not)",
    "won't": r"(?:won'?t|will\s+not)",
    "n't": r"(?:n'?t|\s+not)",
}


def _inflections(word: str) -> set[str]:
    """Cheap suffix stemming in reverse: generate the forms a cue word may take."""
    forms = {word, word + "s", word + "'s"}
    if len(word) <= 2:
        return {word}
    if word.endswith("y") and word[-2] not in _VOWELS:
        forms |= {word[:-1] + "ies", word[:-1] + "ied", word + "ing"}
    elif word.endswith("e"):
        forms |= {word + "d", word[:-1] + "ing", word + "r", word + "rs"}
    else:
        forms |= {word + "es", word + "ed", word + "ing", word + "er", word + "ers"}
        # bid -> bidding, plan -> planned: double a final consonant after a single vowel.
        if (
            len(word) <= 5
            and word[-1] not in _VOWELS | {"w", "x", "y"}
            and word[-2] in _VOWELS
            and word[-3] not in _VOWELS
        ):
            d = word + word[-1]
            forms |= {d + "ing", d + "ed", d + "er", d + "ers"}
    return forms


def _literal(form: str) -> str:
    """Escape one surface form and widen apostrophes and British/US spellings."""
    # Apostrophes are optional because "cant", "dont" and "theres" are everyday spellings.
    if form in _CONTRACTIONS:
        return _CONTRACTIONS[form]
    pieces = [re.escape(p) for p in form.split("'")]
    out = "'?".join(pieces)
    if "'" not in form:
        for rx, repl in _US_UK:
            out = rx.sub(repl, out)
    return out


# Amounts and counts, in figures or words ("40", "£500", "5k", "twelve", "a hundred pound").
_NUMBER_WORDS = (
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "fifteen", "twenty", "thirty", "forty", "fifty", "sixty", "hundred", "thousand",
)  # fmt: skip
_NUMBER = r"(?:£?\d[\d,.]*[km]?|(?:" + "|".join(_NUMBER_WORDS) + r"))(?:[\s\-]*(?:pounds?|quid))?"


def _word_regex(tok: str) -> str:
    alts: list[str] = []
    for alt in tok.split("|"):
        if not alt:
            continue
        if alt.endswith("*"):
            alts.append(_literal(alt[:-1]) + r"[\w']*")
        elif alt.startswith("="):
            alts.append(_literal(alt[1:]))
        elif alt == "#":
            alts.append(_NUMBER)
        else:
            forms = _inflections(alt) if alt.isalpha() else {alt}
            alts.extend(_literal(f) for f in sorted(forms, key=len, reverse=True))
    return "(?:" + "|".join(alts) + ")"


_NUMBER_SET = frozenset(_NUMBER_WORDS)
_CUE_TOKEN = re.compile(r"\([^)]*\)|\[[^\]]*\]|\S+")


def _cue_tokens(cue: str) -> list[str]:
    """Split a cue into word positions; (a b|c) and [a b] groups count as one position."""
    text = cue.strip().lower().translate(_APOSTROPHES)
    if text.startswith("!"):
        text = text[1:].lstrip()
    return _CUE_TOKEN.findall(text)


def _position_regex(tok: str) -> str:
    if tok.startswith("(") and tok.endswith(")"):
        # A group of alternative phrases, each of which may be several words.
        phrases = [p for p in tok[1:-1].split("|") if p.strip()]
        if not phrases:
            raise ValueError("empty (...) group")
        return "(?:" + "|".join(_sequence_regex(p.split()) for p in phrases) + ")"
    return _word_regex(tok)


def _sequence_regex(tokens: list[str]) -> str:
    parts: list[str] = []
    for i, tok in enumerate(tokens):
        gap = re.fullmatch(r"~(\d+)", tok)
        if gap:
            if i == 0 or i == len(tokens) - 1:
                raise ValueError("a ~N gap must sit between two words")
            # The separator before each skipped word must be non-empty, otherwise a single
            # word could be split N ways and the regex would backtrack exponentially.
            parts.append(rf"(?:[\s\-/]+{_WORD_CHARS}+){{0,{int(gap.group(1))}}}")
        elif tok.startswith("[") and tok.endswith("]"):
            if i == 0:
                raise ValueError("a cue cannot start with an optional [word]")
            parts.append(rf"(?:{_SEP}{_sequence_regex(tok[1:-1].split())})?")
        else:
            rx = _position_regex(tok)
            # Words may run together ("cashflow"), but not straight after a gap, where that
            # would let a cue word match the tail of a skipped word ("feed|back").
            after_gap = i > 0 and tokens[i - 1].startswith("~")
            parts.append(rx if i == 0 else (r"[\s\-/]+" if after_gap else _SEP) + rx)
    if not parts:
        raise ValueError("empty cue")
    return "".join(parts)


def _cue_regex(cue: str) -> str:
    return _sequence_regex(_cue_tokens(cue)) + r"(?![\w])"


def _first_words(tok: str) -> list[str]:
    if tok.startswith("(") and tok.endswith(")"):
        words: list[str] = []
        for phrase in tok[1:-1].split("|"):
            if phrase.split():
                words.extend(_first_words(phrase.split()[0]))
        return words
    return tok.split("|")


def _first_keys(cue: str) -> set[str] | None:
    """Index keys for the first word of a cue; None for cues that start mid-word."""
    first_words = _first_words(_cue_tokens(cue)[0])
    if any(w.startswith("n't") for w in first_words):
        return None
    keys: set[str] = set()
    for alt in first_words:
        if alt == "#":
            keys.add("#")
            continue
        prefix = alt.endswith("*")
        word = alt.strip("=*")
        # Spelling variants can change the first three letters of short words (rise/rize).
        variants = {word, word.replace("is", "iz"), word.replace("'", "")}
        if word == "can't":
            variants.add("cannot")
        elif word == "won't":
            variants.add("will")
        for v in variants:
            if len(v) >= 3:
                keys.add(v[:3])
            elif prefix:
                keys.add("*" + v)
            else:
                keys.add("=" + v)
    return keys


class _IndexBuilder:
    def __init__(self, where: str) -> None:
        self.where = where
        self.by_key: dict[str, list[int]] = {}
        self.entries: list[tuple[int, str, re.Pattern[str] | None]] = []
        self.bodies: list[tuple[str, str, str]] = []
        self.inword: list[tuple[int, str, re.Pattern[str]]] = []
        self.source: dict[re.Pattern[str], str] = {}

    def add(self, kind: int, code: str, fieldname: str, cues: Iterable[str]) -> None:
        for cue in cues:
            group = kind
            owner = f" of {code!r}" if code else ""
            where = f"{self.where}: field {fieldname!r}{owner}"
            try:
                keys = _first_keys(cue)
                body = _cue_regex(cue)
                # Every cue but the mid-word ones starts at a word boundary.
                rx = re.compile(body) if keys is None else None
            except (ValueError, re.error, IndexError) as exc:
                raise CodebookError(f"{where}: bad cue {cue!r}: {exc}") from exc
            if group == _CUE and cue.strip().startswith("!"):
                group = _NEG_CUE
            if rx is not None:
                self.source.setdefault(rx, cue)
                self.inword.append((group, code, rx))
                continue
            self.entries.append((group, code, None))
            self.bodies.append((r"(?<![\w£])" + body, cue, where))
            for k in keys:
                self.by_key.setdefault(k, []).append(len(self.entries) - 1)

    def build(self) -> _Index:
        return _Index(
            {k: tuple(v) for k, v in self.by_key.items()},
            list(self.entries),
            tuple(self.bodies),
            tuple(self.inword),
            self.source,
        )


# ---------------------------------------------------------------------------------------------
# Coding
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Evidence:
    """Why a code was (or was nearly) assigned."""

    code: str
    words: str  # the matched words exactly as they appear in the answer
    span: tuple[int, int]  # character offsets into the original answer
    negated: bool = False  # True: the cue was found but discarded because negated/denied
    kind: EvidenceKind = "cue"
    trigger: str | None = None  # the problem/absence marker that activated a topic
    cue: str | None = None  # the codebook cue or topic that matched, as written there
    score: float | None = None  # the combiner's probability for the code (model evidence,
    # or rule evidence that the combiner set aside)
    # True: rule evidence for a code the combiner set aside, because the text model and the
    # rest of the answer made the code unlikely (kept so a coordinator can see what was found)
    overruled: bool = False


@dataclass(frozen=True, slots=True)
class Coding:
    codes: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    confidence: float  # min over assigned codes; 1.0 when nothing at all was matched
    doubtful: bool  # worth a human look: weak single evidence, negation or contrast involved

    def barriers(self, codebook: Codebook) -> tuple[str, ...]:
        return tuple(c for c in self.codes if codebook.family_of(c) != "success")

    def successes(self, codebook: Codebook) -> tuple[str, ...]:
        return tuple(c for c in self.codes if codebook.family_of(c) == "success")


def _normalise(text: str) -> str:
    """Lower-case and unify apostrophes *without changing length*, so spans stay valid."""
    low = text.translate(_APOSTROPHES).lower()
    if len(low) == len(text):
        return low
    # Rare characters (e.g. 'İ') change length when lower-cased; fall back char by char.
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text.translate(_APOSTROPHES))


def _is_negator(tok: str, negators: frozenset[str]) -> bool:
    return tok in negators or tok.endswith("n't")


def _split_clauses(norm: str) -> list[tuple[int, int]]:
    clauses: list[tuple[int, int]] = []
    pos = 0
    for m in _CLAUSE_SPLIT.finditer(norm):
        if m.start() > pos:
            clauses.append((pos, m.start()))
        pos = m.end()
    if pos < len(norm):
        clauses.append((pos, len(norm)))
    return clauses or [(0, len(norm))]


def code_text(text: str, codebook: Codebook) -> Coding:
    """Assign barrier and success codes to one answer, with the evidence for each."""
    if codebook.model is None:
        return rule_code(text, codebook)
    return code_texts([text], codebook)[0]


BATCH = 2048


def code_texts(texts: Iterable[str], codebook: Codebook) -> list[Coding]:
    """Code many answers; the model part is vectorised in batches (same result as code_text)."""
    model = codebook.model
    if model is None:
        return [rule_code(t, codebook) for t in texts]
    out: list[Coding] = []
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == BATCH:
            out.extend(_code_batch(batch, codebook, model))
            batch = []
    if batch:
        out.extend(_code_batch(batch, codebook, model))
    return out


def _model_tokens(text: str, codebook: Codebook) -> list[tuple[int, int, str]]:
    """The text model's words of an answer, (start, end, key) with spans into the answer as
    written: lower-cased, and one-edit typos of cue words corrected as for the rules (the model
    has rarely seen "premisses", but knows "premises")."""
    from bot.coding.text_model import tokens_of

    fixed, omap = _correct_typos(_normalise(text), codebook)
    if omap is None:
        return tokens_of(fixed)
    return [(omap[s], omap[e], key) for s, e, key in tokens_of(fixed)]


def _code_batch(texts: list[str], codebook: Codebook, model: TextModel) -> list[Coding]:
    rules = [rule_code(t, codebook) for t in texts]
    toks = [_model_tokens(t, codebook) for t in texts]
    q = _combined_proba(texts, rules, toks, model)
    thr = model.threshold
    codes = model.codes
    out: list[Coding] = []
    for i, coding in enumerate(rules):
        row = q[i]
        hits = (row >= thr).nonzero()[0]
        if len(hits) == len(coding.codes) and all(codes[j] in coding.codes for j in hits):
            out.append(coding)  # the combiner agrees with the rules
            continue
        probs = {codes[j]: float(row[j]) for j in range(len(codes))}
        out.append(_decide(texts[i], coding, toks[i], probs, model))
    return out


def _combined_proba(
    texts: list[str],
    rules: list[Coding],
    toks: list[list[tuple[int, int, str]]],
    model: TextModel,
):  # -> np.ndarray (n_answers, n_codes)
    """The combiner's probability per answer and code, from the text model's whole-answer and
    best-segment probabilities and the rules' evidence."""
    rows = _combiner_rows(texts, rules, toks, model)
    return model.combine(rows).reshape(len(texts), len(model.codes))


def _rule_inputs(codings: list[Coding], codes: tuple[str, ...]):  # type: ignore[no-untyped-def]
    """(rule assigned, rule strength, self-contained cue) as (n_answers, n_codes) arrays."""
    import numpy as np

    col = {c: j for j, c in enumerate(codes)}
    shape = (len(codings), len(codes))
    rule, strength, cue = np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for i, coding in enumerate(codings):
        for code in coding.codes:
            rule[i, col[code]] = 1.0
        for code, st in _strengths(coding.evidence).items():
            strength[i, col[code]] = st
        for ev in coding.evidence:
            if ev.kind == "cue" and not ev.negated:
                cue[i, col[ev.code]] = 1.0
    return rule, strength, cue


def _decide(
    text: str,
    coding: Coding,
    tokens: list[tuple[int, int, str]],
    probs: dict[str, float],
    model: TextModel,
) -> Coding:
    """The final coding of one answer from the combiner's probability per code (``probs``; a
    code not named has probability 0).

    * A code is assigned when its probability reaches the model's threshold, except that a
      code whose cue the rules found and discarded as negated is never added ("the hall is
      *not* a problem").
    * A rule code below the threshold is set aside: its evidence stays, marked ``overruled``,
      and the answer is doubtful.
    * A code only the combiner found carries the (at most three) words that pushed the text
      model up, or is not assigned at all when no word of the answer speaks for it.
    """
    thr = model.threshold
    negated = {ev.code for ev in coding.evidence if ev.negated} - set(coding.codes)
    dropped = {c for c in coding.codes if probs.get(c, 0.0) < thr}
    evidence = [
        replace(ev, overruled=True, score=round(probs.get(ev.code, 0.0), 3))
        if ev.code in dropped and not ev.negated
        else ev
        for ev in coding.evidence
    ]
    added: dict[str, float] = {}
    for code, p in probs.items():
        if p < thr or code in coding.codes or code in negated:
            continue
        words = model.top_words(tokens, code)
        if not words:
            continue  # nothing in the text itself speaks for it: no evidence, no code
        for s, e, _w in words:
            evidence.append(Evidence(code, text[s:e], (s, e), False, "model", score=round(p, 3)))
        added[code] = p
    if not added and not dropped:
        return coding
    evidence.sort(key=lambda ev: (ev.span, ev.code))
    kept = [c for c in coding.codes if c not in dropped]
    strength = _strengths(evidence)
    codes = tuple(sorted({*kept, *added}))
    conf = [strength[c] for c in kept] + list(added.values())
    confidence = round(min(conf), 3) if conf else 1.0
    near = thr + model.near
    doubtful = (
        bool(dropped)
        or any(ev.negated for ev in evidence)
        or any(strength[c] < DOUBTFUL_BELOW for c in kept)
        or any(ev.kind in ("contrast", "headline") and ev.code in kept for ev in evidence)
        or any(p < near for p in added.values())
    )
    return Coding(codes, tuple(evidence), confidence, doubtful)


def rule_code(text: str, codebook: Codebook) -> Coding:
    """The rules' coding of one answer (no model)."""
    norm, omap = _correct_typos(_normalise(text), codebook)
    if omap is not None:
        original = text

        def src(s: int, e: int) -> tuple[str, tuple[int, int]]:
            os_, oe = omap[s], omap[e]
            return original[os_:oe], (os_, oe)

    else:

        def src(s: int, e: int) -> tuple[str, tuple[int, int]]:
            return text[s:e], (s, e)

    source = codebook._index.source
    cue_at: dict[tuple[str, int, int], str] = {}

    def ev_at(code: str, s: int, e: int, neg: bool, kind: EvidenceKind, trig=None) -> Evidence:
        words, span = src(s, e)
        trigger = None if trig is None else src(*trig)[0]
        return Evidence(code, words, span, neg, kind, trigger, cue_at.get((code, s, e)))

    clauses = _split_clauses(norm)
    clause_starts = [c[0] for c in clauses]
    tokens = [(m.start(), m.end(), m.group()) for m in _TOKEN.finditer(norm)]
    tok_starts = [t[0] for t in tokens]
    negators = codebook._negators

    def clause_index(pos: int) -> int:
        return max(bisect_right(clause_starts, pos) - 1, 0)

    def negator_before(start: int, window: int = 3, strict: bool = False) -> int | None:
        """Start of the closest negator among the few words before ``start``, in its clause.

        ``strict`` (for self-contained cues): only words that do not change the subject may sit
        between the negator and the cue, so "it's not tokenistic" and "never had any damp" are
        denials but "the landlord won't fix the damp" is not.
        """
        cstart = clauses[clause_index(start)][0]
        i = bisect_left(tok_starts, start)
        # A cue starting mid-word ("n't very confident" in "aren't") carries its own negator,
        # so the word it starts in does not count as a negator before it.
        if i > 0 and tokens[i - 1][1] > start:
            i -= 1
        lo = max(bisect_left(tok_starts, cstart), i - window)
        for j in range(i - 1, lo - 1, -1):
            if _is_negator(tokens[j][2], negators):
                return tokens[j][0]
            if strict and tokens[j][2] not in _TRANSPARENT:
                return None
        return None

    def negated_before(start: int) -> bool:
        return negator_before(start, strict=True) is not None

    matches = codebook._index.scan(norm, tokens)
    matches.sort(key=lambda m: (m[2], -m[3]))
    for _g, code, s, e, rx in matches:
        if code:
            cue_at[(code, s, e)] = source[rx]

    # 1) Strong cues: count on their own unless a negator sits just before them.
    evidence: list[Evidence] = []
    cue_spans: list[tuple[int, int]] = []
    for group, code, s, e, _rx in matches:
        if group == _CUE:
            neg = negated_before(s)
            evidence.append(ev_at(code, s, e, neg, "cue"))
            if not neg:
                cue_spans.append((s, e))
        elif group == _NEG_CUE:
            neg_at = negator_before(s)
            if neg_at is not None:
                ev = ev_at(code, neg_at, e, False, "cue")
                evidence.append(replace(ev, cue=cue_at.get((code, s, e))))
                cue_spans.append((neg_at, e))

    # Overlapping praise matches of one success code are one statement: if any of them is
    # negated, all are ("we don't all want the same thing" must not keep "same thing"). Not for
    # barriers, whose cues often carry their own negation ("don't hear about ... until").
    success = codebook._success
    for i, ev in enumerate(evidence):
        if (
            ev.code in success
            and not ev.negated
            and any(
                o.negated
                and o.code == ev.code
                and o.span[0] < ev.span[1]
                and ev.span[0] < o.span[1]
                for o in evidence
            )
        ):
            evidence[i] = Evidence(ev.code, ev.words, ev.span, True, ev.kind, ev.trigger, ev.cue)
            cue_spans.remove(ev.span)

    def inside_cue(s: int, e: int) -> bool:
        # Words already explained by a cue are not reused for topic inference, so "we can't
        # pay wages until the grant lands" stays int.finance and does not also become funding.
        return any(cs <= s and e <= ce for cs, ce in cue_spans)

    # 2) Problem markers per clause; a negated one denies the clause ("no problems with X").
    # Deficit markers ("need", "lack of", "can't find") point forward at their object; problem
    # words ("X is a nightmare") point back at their subject. Each falls back to the other side.
    markers: list[list[tuple[int, int, bool]]] = [[] for _ in clauses]  # (start, end, forward)
    denied = [False] * len(clauses)
    absences: list[tuple[int, int]] = []
    raw_topics: list[tuple[str, int, int]] = []
    for group, code, s, e, _rx in matches:
        if group in (_CUE, _NEG_CUE) or inside_cue(s, e):
            continue
        if group == _TOPIC:
            raw_topics.append((code, s, e))
        elif group == _ABSENCE:
            absences.append((s, e))
        elif group == _DEFICIT:
            markers[clause_index(s)].append((s, e, True))
        elif (neg_at := negator_before(s)) is not None:
            idx = clause_index(s)
            denied[idx] = True
            # The negator of a denied problem ("never had a problem") is not also a deficit.
            markers[idx] = [m for m in markers[idx] if not (neg_at <= m[0] < s)]
        else:
            markers[clause_index(s)].append((s, e, False))
    # A topic inside a longer topic of another code is part of that phrase ("write funding
    # bids" is about skills, not funding).
    topics = [
        t
        for t in raw_topics
        if not any(
            o is not t and o[1] <= t[1] and t[2] <= o[2] and o[2] - o[1] > t[2] - t[1]
            for o in raw_topics
        )
    ]
    by_clause: list[list[tuple[str, int, int]]] = [[] for _ in clauses]
    for t in topics:
        by_clause[clause_index(t[1])].append(t)
    trigger_of: dict[tuple[str, int, int], tuple[int, int]] = {}
    for idx, marks in enumerate(markers):
        for ms, me, forward in marks:
            after = [t for t in by_clause[idx] if t[1] >= me and t[1] - me <= 60]
            before = [t for t in by_clause[idx] if t[2] <= ms and ms - t[2] <= 60]
            targets = (after or before) if forward else (before or after)
            for t in targets:
                trigger_of.setdefault(t, (ms, me))

    # 3) Topics need a marker pointing at them, an absence word right before them, or a
    # contrast with a denied clause just before.
    for t in sorted(topics, key=lambda t: t[1]):
        code, s, e = t
        idx = clause_index(s)
        cs, ce = clauses[idx]
        ab = _absence_before(absences, s, e, tok_starts, cs)
        if ab is not None:
            evidence.append(ev_at(code, s, e, False, "topic", ab))
        elif t in trigger_of:
            evidence.append(ev_at(code, s, e, False, "topic", trigger_of[t]))
        elif denied[idx]:
            evidence.append(ev_at(code, s, e, True, "topic"))
        elif (neg_at := negator_before(s, window=2)) is not None:
            if _BUT_NOT.search(norm, 0, neg_at + 3) and norm.startswith("not", neg_at):
                # "we have the passion but not the skills": "but not" is a lack, not a denial.
                evidence.append(ev_at(code, s, e, False, "topic", (neg_at, neg_at + 3)))
                continue
            # "it's not the money, ...": the topic itself is denied, which sets up a contrast.
            denied[idx] = True
            evidence.append(ev_at(code, s, e, True, "topic"))
        elif idx > 0 and denied[idx - 1] and not markers[idx - 1]:
            seg = norm[cs:ce]
            if _CONTRAST_HEAD.search(seg) or _CONTRAST_TAIL.search(seg):
                evidence.append(ev_at(code, s, e, False, "contrast"))
            elif _is_headline(norm, cs, ce, by_clause[idx]):
                evidence.append(ev_at(code, s, e, False, "headline"))
        elif _is_headline(norm, cs, ce, by_clause[idx]):
            # A bare subject as the whole clause answers "what gets in the way?": "Cash flow.",
            # "Time, money and volunteers", "the forms, the meetings... pick one".
            evidence.append(ev_at(code, s, e, False, "headline"))

    evidence.sort(key=lambda ev: (ev.span, ev.code))
    strength = _strengths(evidence)
    codes = tuple(sorted(strength))
    confidence = round(min(strength.values()), 3) if strength else 1.0
    doubtful = (
        confidence < DOUBTFUL_BELOW
        or any(ev.negated for ev in evidence)
        or any(ev.kind in ("contrast", "headline") for ev in evidence)
    )
    return Coding(codes, tuple(evidence), confidence, doubtful)


def _strengths(evidence: Iterable[Evidence]) -> dict[str, float]:
    """Per code, how strongly the rules' evidence speaks for it (0..1): independent pieces of
    evidence combine as 1 - prod(1 - weight)."""
    strength: dict[str, float] = {}
    for ev in evidence:
        if ev.negated or ev.overruled or ev.kind == "model":
            continue
        absent = ev.kind == "topic" and ev.trigger is not None and _is_absence(ev.trigger)
        kind = "absence" if absent else ev.kind
        strength[ev.code] = 1 - (1 - strength.get(ev.code, 0.0)) * (1 - _WEIGHTS[kind])
    return strength


def _wordset(*chunks: str) -> frozenset[str]:
    return frozenset(" ".join(chunks).split())


_BUT_NOT = re.compile(r"\bbut\s+not\s*$")
# Words that may sit between a negator and a self-contained cue without changing what the
# negator denies ("not *really* tokenistic", "never *had any* damp").
_TRANSPARENT = _wordset(
    "a an the any at all really very so too that this it its it's is are was were be been",
    "being ever had have has got get getting much of our us we quite particularly exactly",
    "just even actually still yet as",
)
# Words a bare heading may carry besides its subject ("The paperwork.", "time, money and ...").
_FILLER = _wordset(
    "a an the our and or of more any just lack also too plus simple as that honestly",
    "mainly mostly probably definitely basically really 1 2 3 4 5 etc",
)


_HEAD_PUNCT = frozenset(".,;:!?\n()-\u2013\u2014")


def _is_headline(norm: str, cs: int, ce: int, topics: list[tuple[str, int, int]]) -> bool:
    """A clause that is nothing but subjects and filler words ("Cash flow", "the forms").

    It must stand between punctuation marks (or the ends of the answer), not be one half of a
    sentence split at a conjunction ("so the rent and the post are at risk").
    """
    before = norm[:cs].rstrip()
    after = norm[ce:].lstrip()
    if (before and before[-1] not in _HEAD_PUNCT) or (after and after[0] not in _HEAD_PUNCT):
        return False
    covered = [(s, e) for _, s, e in topics]
    for m in _TOKEN.finditer(norm, cs, ce):
        if m.group() in _FILLER:
            continue
        if not any(s <= m.start() and m.end() <= e for s, e in covered):
            return False
    return bool(covered)


# --------------------------------------------------------------------------------------------
# Light spelling tolerance: a long word one edit away from a cue word is read as that word.
# --------------------------------------------------------------------------------------------

FUZZY_MIN_LEN = 7  # shorter words have too many real-word neighbours ("cash"/"case")
# Real words one edit away from a cue word that must not be "corrected" into it.
_FUZZY_PROTECT = _wordset(
    "contact contacts contacted content context country counter fending standing trusted",
    "trustee trustees planned planner planning present presents parking parting marking",
    "meeting meetings started starting staffed stuffed worried wording workers working",
    "funders funding funded founder founders founded landing lending spending sending",
    "feeling falling filling calling failing telling selling billing willing killing",
    "leading loading reading heading needing feeding holding folding minding binding",
    "shared shares sharing scared scaring caring daring bearing hearing wearing clearing",
    "coming costing hosting posting testing resting renting rented tenders tendered",
)


@dataclass(frozen=True, slots=True)
class _Fuzzy:
    known: frozenset[str]
    deletes: dict[str, frozenset[str]]
    targets: frozenset[str] = frozenset()  # words a misspelling may be corrected into
    stems: tuple[str, ...] = ()  # prefixes of word* cues: anything starting so is known
    cache: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def build(cls, phrases: Iterable[str]) -> _Fuzzy:
        known: set[str] = set()
        targets: set[str] = set()
        stems: set[str] = set()
        for phrase in phrases:
            for word in re.findall(r"[a-z']+\*?", phrase.lower().translate(_APOSTROPHES)):
                if "'" in word:
                    continue
                if word.endswith("*"):
                    stems.add(word[:-1])
                    if len(word) > FUZZY_MIN_LEN and word[:-1].isalpha():
                        targets |= {f for f in _inflections(word[:-1]) if "'" not in f}
                    continue
                forms = {f for f in _inflections(word) if "'" not in f}
                known |= forms
                if len(word) >= FUZZY_MIN_LEN:
                    # Only words written in the codebook (and their regular endings) are
                    # correction targets; invented inflections ("premiseses") are not.
                    targets |= {word} if word.endswith("s") else forms
        deletes: dict[str, set[str]] = {}
        for w in targets:
            for i in range(1, len(w)):  # the first letter is kept: typos rarely hit it
                deletes.setdefault(w[:i] + w[i + 1 :], set()).add(w)
        return cls(
            frozenset(known | targets),
            {k: frozenset(v) for k, v in deletes.items()},
            targets=frozenset(targets),
            stems=tuple(sorted(stems)),
        )

    def correct(self, tok: str) -> str | None:
        """The cue word ``tok`` is a one-edit misspelling of, if exactly one fits."""
        hit = self.cache.get(tok, "")
        if hit != "":
            return hit
        found: set[str] = set()
        if (
            len(tok) >= FUZZY_MIN_LEN
            and tok not in self.known
            and tok not in _FUZZY_PROTECT
            and not tok.startswith(self.stems)
            and tok + "s" not in self.known
            and not any(tok[: -len(x)] in self.known for x in ("s", "es", "ed", "ing", "er"))
        ):
            found |= self.deletes.get(tok, frozenset())  # a letter missing
            for i in range(1, len(tok)):
                d = tok[:i] + tok[i + 1 :]
                if d in self.targets:
                    found.add(d)  # a letter too many
                for w in self.deletes.get(d, ()):  # one letter wrong or two swapped
                    if len(w) == len(tok) and _one_swap_or_sub(w, tok):
                        found.add(w)
            found = {w for w in found if w[0] == tok[0]}
        out = next(iter(found)) if len(found) == 1 else None
        if len(self.cache) < 100_000:
            self.cache[tok] = out
        return out


def _one_swap_or_sub(a: str, b: str) -> bool:
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    if len(diff) == 1:
        return True
    return (
        len(diff) == 2
        and diff[1] == diff[0] + 1
        and a[diff[0]] == b[diff[1]]
        and (a[diff[1]] == b[diff[0]])
    )


def _correct_typos(norm: str, codebook: Codebook) -> tuple[str, list[int] | None]:
    """``norm`` with misspelt cue words corrected, and a map back to the original offsets."""
    fuzzy = codebook._fuzzy
    fixes: list[tuple[int, int, str]] = []
    for m in _LONG_WORD.finditer(norm):
        fixed = fuzzy.correct(m.group())
        if fixed is not None:
            fixes.append((m.start(), m.end(), fixed))
    if not fixes:
        return norm, None
    pieces: list[str] = []
    omap: list[int] = []
    pos = 0
    for s, e, word in fixes:
        pieces.append(norm[pos:s])
        omap.extend(range(pos, s))
        pieces.append(word)
        omap.extend(min(s + i, e - 1) for i in range(len(word)))
        pos = e
    pieces.append(norm[pos:])
    omap.extend(range(pos, len(norm) + 1))
    return "".join(pieces), omap


_LONG_WORD = re.compile(rf"\b[a-z]{{{FUZZY_MIN_LEN},}}\b")


def _is_absence(trigger: str) -> bool:
    return trigger.lower().split()[0] in {"no", "zero", "without", "nor", "lack", "lost"}


def _absence_before(
    absences: list[tuple[int, int]], start: int, end: int, tok_starts: list[int], clause_start: int
) -> tuple[int, int] | None:
    """An absence word ending at most one word before the topic, in the same clause."""
    first = bisect_left(tok_starts, start)
    for a_s, a_e in absences:
        if a_s < clause_start or a_e > start:
            continue
        if first - bisect_left(tok_starts, a_e) <= 1:
            return (a_s, a_e)
    return None


def explain(coding: Coding) -> str:
    """One line for coordinators: 'ext.funding: 'grant', 'cash' ; int.capacity: 'volunteers''."""
    if not coding.codes:
        dropped = [f"'{ev.words}' ({ev.code})" for ev in coding.evidence if ev.negated]
        aside = [f"'{ev.words}' ({ev.code})" for ev in coding.evidence if ev.overruled]
        return (
            "no code"
            + (f" (negated: {', '.join(dropped)})" if dropped else "")
            + (f" (set aside as unlikely: {', '.join(aside)})" if aside else "")
        )
    parts: list[str] = []
    for code in coding.codes:
        words: list[str] = []
        for ev in coding.evidence:
            if ev.code == code and not ev.negated and not ev.overruled:
                w = f"'{ev.words}'"
                if ev.kind in ("contrast", "headline", "model"):
                    w += {"contrast": " (by contrast)", "headline": " (as a heading)"}.get(
                        ev.kind, " (model)"
                    )
                if w not in words:
                    words.append(w)
        parts.append(f"{code}: {', '.join(words)}")
    line = " ; ".join(parts)
    dropped = sorted({f"'{ev.words}' ({ev.code})" for ev in coding.evidence if ev.negated})
    if dropped:
        line += f" [negated: {', '.join(dropped)}]"
    aside = sorted({f"'{ev.words}' ({ev.code})" for ev in coding.evidence if ev.overruled})
    if aside:
        line += f" [set aside as unlikely: {', '.join(aside)}]"
    if coding.doubtful:
        line += " [doubtful]"
    return line
