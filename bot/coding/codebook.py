"""The codebook: the barrier and success codes, their cues and topics, and the lexicons of
negators and problem markers; with the text model's artefact when the codebook names a training
file. Read from TOML and checked by bot.coding.codebook_file.

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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

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
from bot.coding.text_model import TextModel, model_digest
from bot.kernel import i18n

Family = Literal["external", "internal", "success"]
FAMILIES: tuple[str, ...] = ("external", "internal", "success")


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
