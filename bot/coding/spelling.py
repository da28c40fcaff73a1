"""Light spelling tolerance: a long word one edit away from a cue word is read as that word."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.coding.cues import APOSTROPHES, inflections, wordset

FUZZY_MIN_LEN = 7  # shorter words have too many real-word neighbours ("cash"/"case")
# Real words one edit away from a cue word that must not be "corrected" into it.
_FUZZY_PROTECT = wordset(
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
class Spelling:
    """The codebook's words, and the one-letter deletions of the long ones, so a misspelt word
    can be read as the cue word it is one edit away from."""

    known: frozenset[str]
    deletes: dict[str, frozenset[str]]
    targets: frozenset[str] = frozenset()  # words a misspelling may be corrected into
    stems: tuple[str, ...] = ()  # prefixes of word* cues: anything starting so is known
    cache: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def build(cls, phrases: Iterable[str]) -> Spelling:
        known: set[str] = set()
        targets: set[str] = set()
        stems: set[str] = set()
        for phrase in phrases:
            for word in re.findall(r"[a-z']+\*?", phrase.lower().translate(APOSTROPHES)):
                if "'" in word:
                    continue
                if word.endswith("*"):
                    stems.add(word[:-1])
                    if len(word) > FUZZY_MIN_LEN and word[:-1].isalpha():
                        targets |= {f for f in inflections(word[:-1]) if "'" not in f}
                    continue
                forms = {f for f in inflections(word) if "'" not in f}
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


def correct_typos(norm: str, spelling: Spelling) -> tuple[str, list[int] | None]:
    """``norm`` with misspelt cue words corrected, and a map back to the original offsets."""
    fixes: list[tuple[int, int, str]] = []
    for m in _LONG_WORD.finditer(norm):
        fixed = spelling.correct(m.group())
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
