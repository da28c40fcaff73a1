"""The cue mini-language of the codebook, compiled to regular expressions, and the index that
finds which cues can start at each word of an answer.

One phrase per string, case-insensitive:

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

import re
from collections.abc import Iterable
from dataclasses import dataclass, field


class CodebookError(ValueError):
    """A codebook file is missing, is not valid TOML, or breaks the codebook schema (defined with
    the cues, the lowest module, because a bad cue is found when it is compiled)."""


APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})
_SEP = r"[\s\-/]*"
_WORD_CHARS = r"[\w'£]"


def wordset(*chunks: str) -> frozenset[str]:
    return frozenset(" ".join(chunks).split())


# Groups an indexed pattern can belong to. NEG_CUE is a "!cue": a positive state that is a
# barrier only when negated ("!up to standard" -> "isn't up to standard").
CUE, TOPIC, PROBLEM, DEFICIT, ABSENCE, NEG_CUE = range(6)
Match = tuple[int, str, int, int, re.Pattern[str]]  # (group, code, start, end, pattern)


@dataclass(frozen=True, slots=True)
class CueIndex:
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

    def scan(self, norm: str, tokens: list[tuple[int, int, str]]) -> list[Match]:
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


def inflections(word: str) -> set[str]:
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
            forms = inflections(alt) if alt.isalpha() else {alt}
            alts.extend(_literal(f) for f in sorted(forms, key=len, reverse=True))
    return "(?:" + "|".join(alts) + ")"


_NUMBER_SET = frozenset(_NUMBER_WORDS)
_CUE_TOKEN = re.compile(r"\([^)]*\)|\[[^\]]*\]|\S+")


def _cue_tokens(cue: str) -> list[str]:
    """Split a cue into word positions; (a b|c) and [a b] groups count as one position."""
    text = cue.strip().lower().translate(APOSTROPHES)
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


class CueIndexBuilder:
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
            if group == CUE and cue.strip().startswith("!"):
                group = NEG_CUE
            if rx is not None:
                self.source.setdefault(rx, cue)
                self.inword.append((group, code, rx))
                continue
            self.entries.append((group, code, None))
            self.bodies.append((r"(?<![\w£])" + body, cue, where))
            for k in keys:
                self.by_key.setdefault(k, []).append(len(self.entries) - 1)

    def build(self) -> CueIndex:
        return CueIndex(
            {k: tuple(v) for k, v in self.by_key.items()},
            list(self.entries),
            tuple(self.bodies),
            tuple(self.inword),
            self.source,
        )
