"""What in a free text points to a person: personal names (the ones the bot knows, and the ones
it was never told, from a shipped name list and cues such as titles), UK postcodes, house-number
addresses and street names. privacy.Scrubber removes what is found here and decides whether a
text may be quoted at all.

Names are matched word by word against sets (O(words), whatever the lists' sizes): one regex
alternation of thousands of names takes seconds to compile. Capitalisation and position decide
the names that are also everyday words ("Will the council listen?" keeps Will; "me and Will"
does not), and a name the rules cannot settle is reported as a doubt, so the caller drops the
text rather than guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

NAMES_FILE = Path(__file__).with_name("personal_names.txt")


def _words(spaced: str) -> frozenset[str]:
    return frozenset(spaced.split())


WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
# What the scrubber puts in place of what it removes; the words inside are never names.
PLACEHOLDER = re.compile(r"\[(?:name|email|phone|link|address|postcode) removed\]")

# Everyday words that appear in organisation names ("The Community Trust") and must stay in
# quotes, or every sentence would be shredded. Also never taken for a surname after a name.
HARMLESS = _words(
    """the and for group groups community trust charity centre center project projects network
    association society club services service support people local council team young older
    family families health care food bank action partnership forum youth women men friends our
    all new voluntary volunteers church school housing mental advice carers café cafe hub house
    home street road lane city town borough county district village north south east west
    central united together neighbourhood residents tenants foundation hospital library garden
    gardens park green hall learning training skills arts music sports disability age children
    kids refugee refugees welcome pantry kitchen space spaces place places st saint centres
    nhs gp"""
)

# A name followed by one of these is part of a place or an institution ("Victoria Park",
# "Hope Street", "St Mary's Church"), not a person.
_PLACE_NOUNS = _words(
    """road rd street st lane ln avenue ave close drive way crescent terrace grove gardens
    square mews place court walk row rise parade hill view park green estate station centre
    center hospital school academy college university church chapel mosque temple gurdwara
    synagogue hall house library surgery clinic practice ward bridge market square court
    primary infants juniors nursery trust foundation council borough city town village
    county"""
)

# Words after which a name-like word is not a person: determiners ("the Bill", "a Grant")
# and place prepositions ("in Bolton", "near Florence").
_DETERMINERS = _words("the a an this that these those every each any some no")
_PLACE_PREPS = _words("in near around across throughout outside")

# Words that are never part of a name, even capitalised at the start of a sentence.
_FUNCTION = _words(
    """the a an and or but if so then when while because as at by for from in into of off on
    onto out over to up with without about after before during since until than that this
    these those there here what which who whom whose why how where i i'm i've i'd i'll me my
    mine we us our ours you your yours he him his she her hers they them their theirs it its
    is am are was were be been being do does did done have has had will would shall should can
    could may might must not no nor yes all any some every each both either neither few more
    most much many other such only own same too very just also even still yet already again
    ever never always often sometimes please thanks thank hi hello dear ok okay well now today
    yesterday tomorrow tonight lots really honestly basically however although though"""
)

_CALENDAR = _words(
    """monday tuesday wednesday thursday friday saturday sunday january february march april
    may june july august september october november december christmas easter eid ramadan
    diwali vaisakhi hanukkah"""
)

# Titles: the word after one is a name ("Cllr Jones", "Dr Okafor"). With the short forms a
# lower-case name counts too ("mrs jones").
_TITLES = _words(
    """mr mrs ms miss mx dr cllr councillor prof professor rev revd reverend sir dame imam
    rabbi pastor fr"""
)
_SHORT_TITLES = _words("mr mrs ms mx dr cllr")
# Roles that follow a title and are not names ("Lord Mayor"): kept.
_ROLES = _words("mayor chair chairman chairwoman chief")

# "my neighbour Zofia", "our coordinator Dave": the capitalised word after one is a name.
_POSSESSIVES = _words("my our his her their your")
_RELATIONS = _words(
    """friend friends neighbour neighbours neighbor colleague colleagues manager boss husband
    wife partner son daughter mum mom mother dad father brother sister nan gran grandma
    grandad granddad grandson granddaughter cousin aunt auntie aunty uncle niece nephew carer
    caseworker worker keyworker coordinator co-ordinator chair treasurer secretary volunteer
    councillor mp gp doctor nurse teacher landlord landlady mentor tutor supervisor
    lodger flatmate housemate child kid"""
)
# "a lady called Zofia", "someone named Priya".
_PERSON_NOUNS = _RELATIONS | _words(
    "lady woman man guy girl boy bloke fella chap gentleman someone somebody person officer"
)
_NAMING = _words("called named")
_CUES = _TITLES | _RELATIONS | _NAMING  # a word after one of these may be a name in any case

# Words after a sentence-initial "Will"/"Hope"/"May" that make it a person.
_SPEECH = _words(
    """said says told tells asked asks rang phoned emailed texted messaged replied reckons
    thinks promised"""
)

# Words after a capitalised "Will" or "May" that make it the verb ("I Will not", "May I").
_AFTER_MODAL = _words(
    """not never always also still just all be have get go need you i we they he she it
    this that there"""
)

# A possessive shop name is not a person ("McDonald's", "Sainsbury's").
_BRANDS = _words("mcdonald sainsbury morrison morrisons boots greggs")

_SENTENCE_BREAK = re.compile(r"[.!?;:\n•\"“”(]")
_JOINABLE_GAP = re.compile(r"\s+|\s*-\s*")  # between two words of one name


@dataclass(frozen=True, slots=True)
class NameEntry:
    first: bool
    surname: bool
    when: str  # any | cap | mid | month (see personal_names.txt)


@cache
def name_list() -> dict[str, NameEntry]:
    """The shipped name list, read once."""
    entries: dict[str, NameEntry] = {}
    for line in NAMES_FILE.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        name, kinds, when = line.split()
        entries[name] = NameEntry("f" in kinds, "s" in kinds, when)
    return entries


# --------------------------------------------------------------------------- addresses

# The UK's postcode areas: an outward code is only a postcode if its letters are one of these.
POSTCODE_AREAS = _words(
    """AB AL B BA BB BD BH BL BN BR BS BT CA CB CF CH CM CO CR CT CV CW DA DD DE DG DH DL DN DT
    DY E EC EH EN EX FK FY G GL GU GY HA HD HG HP HR HS HU HX IG IM IP IV JE KA KT KW KY L LA
    LD LE LL LN LS LU M ME MK ML N NE NG NN NP NR NW OL OX PA PE PH PL PO PR RG RH RM S SA SE
    SG SK SL SM SN SO SP SR SS ST SW SY TA TD TF TN TQ TR TS TW UB W WA WC WD WF WN WR WS WV YO
    ZE"""
)
# Things shaped like an outward code that are not one.
_NOT_POSTCODES = _words("CO2 SO2 B2B B2C N95")

_FULL_POSTCODE = re.compile(
    r"(?<![\w£$€])([A-Za-z]{1,2})(\d[A-Za-z\d]?)\s?(\d[ABD-HJLNP-UW-Zabd-hjlnp-uw-z]{2})(?!\w)"
)
_OUTWARD = re.compile(r"(?<![\w£$€])([A-Z]{1,2})(\d{1,2}[A-Z]?)(?!\w)")
_OUTWARD_BEFORE = re.compile(
    r"(?:\b(?:in|around|near|postcode|post code|postcode is|from|live in|based in)\s+)$",
    re.IGNORECASE,
)
_OUTWARD_AFTER = re.compile(r"^\s+(?:area|postcode|post code|district)\b", re.IGNORECASE)

_SUFFIX_ALL = (
    r"Road|Rd|Street|Lane|Ln|Avenue|Ave|Close|Cl|Drive|Way|Crescent|Cres|Terrace|Tce|"
    r"Grove|Gardens|Gdns|Square|Sq|Mews|Place|Pl|Court|Ct|Walk|Row|Rise|Parade|Hill|View|Park|"
    r"Green|Vale|Wharf|Yard|Mount|Boulevard"
)
_SUFFIX_STRONG = r"Road|Rd|Street|Lane|Ln|Avenue|Ave"  # a street on its own: "Station Road"
_SUFFIX_WEAK = r"Close|Drive|Way|Crescent|Terrace|Grove|Gardens|Square|Mews"  # needs "on" &c.
_STREET_WORD = r"[A-Z][a-zA-Z'’]*"
# "St" and "Dr" before a capitalised word are Saint and Doctor ("St Mary's", "Dr Patel").
_SAINT_OR_DOCTOR = r"(?:St|Dr)\b(?!\.?[ \t]+[A-Z])"
# An abbreviation's dot goes with it ("Acacia Rd. was"); a full stop stays.
_ABBREV_DOT = r"(?:(?:(?<=St|Rd|Dr|Ln|Cl|Pl|Sq|Ct)|(?<=Ave|Tce)|(?<=Cres|Gdns))\.(?=\s*[a-z,]))?"
_FLAT = r"(?i:flat|apartment|apt|unit)\s*\d{1,4}[A-Za-z]?\s*,?\s*"
_NUMBER = r"\d{1,4}[A-Za-z]?(?:\s*[-–/]\s*\d{1,4}[A-Za-z]?)?,?"

_HOUSE_ADDRESS = re.compile(
    rf"(?<![\w£$€.,])(?:{_FLAT})?{_NUMBER}[ \t]+(?:{_STREET_WORD}[ \t]+){{1,3}}"
    rf"(?:(?:{_SUFFIX_ALL})\b|{_SAINT_OR_DOCTOR}){_ABBREV_DOT}"
)
# "12 acacia road": a lower-case street needs a number and a full word for the street.
_HOUSE_ADDRESS_LOWER = re.compile(
    r"(?<![\w£$€.,])\d{1,4}[a-z]?,?[ \t]+([a-z]+[ \t]+(?:[a-z]+[ \t]+)?)"
    r"(?:road|street|avenue|lane|crescent|terrace)\b"
)
_FLAT_ONLY = re.compile(r"\b(?i:flat|apartment|apt)\s+\d{1,4}[A-Za-z]?\b")
_STREET = re.compile(
    rf"\b((?:{_STREET_WORD}[ \t]+){{1,3}})"
    rf"(?:(?:{_SUFFIX_STRONG})\b|{_SAINT_OR_DOCTOR}){_ABBREV_DOT}"
)
_STREET_AFTER_PREP = re.compile(
    rf"\b(?i:on|in|off|along|down|up|at|near|by|round|around|from|into|onto)[ \t]+"
    rf"((?:{_STREET_WORD}[ \t]+){{1,3}})(?:{_SUFFIX_WEAK})\b"
)


def _street_start(m: re.Match[str]) -> int | None:
    """Where the street's own name starts in a match of _STREET or _STREET_AFTER_PREP: little
    words before it stay ("On Mill Lane" is Mill Lane); None if nothing is left, or if it is
    the generic "the High Street"."""
    for word in re.finditer(r"\S+", m.group(1)):
        if word.group().lower() not in _FUNCTION:
            start = m.start(1) + word.start()
            generic = word.group() == "High" and re.search(
                r"\bthe\s+$", m.string[max(0, start - 8) : start], re.IGNORECASE
            )
            return None if generic else start
    return None


def remove_addresses(text: str, placeholder: str, postcode: str) -> tuple[str, int]:
    """Postcodes, house-number addresses and street names out of `text`; how many."""
    removed = 0

    def full(m: re.Match[str]) -> str:
        nonlocal removed
        area, inward = m.group(1).upper(), m.group(3).lower()
        if area not in POSTCODE_AREAS or inward[1:] in {"st", "nd", "rd", "th"}:
            return m.group()
        removed += 1
        return postcode

    def outward(m: re.Match[str]) -> str:
        nonlocal removed
        code = m.group()
        if m.group(1) not in POSTCODE_AREAS or code in _NOT_POSTCODES:
            return code
        before = m.string[max(0, m.start() - 20) : m.start()]
        if re.search(r"\bthe\s+$", before, re.IGNORECASE):
            return code  # "the M60" is a road
        if _OUTWARD_BEFORE.search(before) or _OUTWARD_AFTER.match(m.string[m.end() :]):
            removed += 1
            return postcode
        return code

    def address(m: re.Match[str]) -> str:
        nonlocal removed
        removed += 1
        return placeholder

    def lower_address(m: re.Match[str]) -> str:
        if any(w in _FUNCTION for w in m.group(1).split()):
            return m.group()  # "3 miles down the lane" is no address
        return address(m)

    def street(m: re.Match[str]) -> str:
        nonlocal removed
        start = _street_start(m)
        if start is None:
            return m.group()
        removed += 1
        return m.string[m.start() : start] + placeholder

    text = _FULL_POSTCODE.sub(full, text)
    text = _OUTWARD.sub(outward, text)
    text = _HOUSE_ADDRESS.sub(address, text)
    text = _HOUSE_ADDRESS_LOWER.sub(lower_address, text)
    text = _FLAT_ONLY.sub(address, text)
    text = _STREET_AFTER_PREP.sub(street, text)
    text = _STREET.sub(street, text)
    return text, removed


# --------------------------------------------------------------------------- names


@dataclass(slots=True)
class _Token:
    start: int
    end: int
    text: str
    low: str  # lower case
    base: str  # lower case, without a possessive 's
    cap: bool  # Capitalised (an all-capitals word is not)
    lower: bool  # all lower case
    first: bool  # starts a sentence
    placeholder: bool = False


@dataclass
class NamesFound:
    spans: list[tuple[int, int]] = field(default_factory=list)  # one per name removed
    doubts: list[str] = field(default_factory=list)  # why the text should not be quoted


def _tokens(text: str) -> list[_Token]:
    held = [(m.start(), m.end()) for m in PLACEHOLDER.finditer(text)]
    tokens: list[_Token] = []
    last_end = 0
    for m in WORD.finditer(text):
        word = m.group()
        low = word.lower().replace("’", "'")
        base = low[:-2] if low.endswith("'s") else low
        gap = text[last_end : m.start()]
        tokens.append(
            _Token(
                m.start(),
                m.end(),
                word,
                low,
                base,
                cap=word[0].isupper() and not (len(word) > 1 and word.isupper()),
                lower=word.islower(),
                first=not tokens or (gap != " " and bool(_SENTENCE_BREAK.search(gap))),
                placeholder=bool(held) and any(s <= m.start() < e for s, e in held),
            )
        )
        last_end = m.end()
    return tokens


def _shouting(tokens: list[_Token]) -> bool:
    """ALL CAPS or Every Word Capitalised: capitals then say nothing about names."""
    words = [
        t for t in tokens if not t.placeholder and not t.first and t.text.isalpha() and t.low != "i"
    ]
    if len(words) < 3:
        return False
    return sum(1 for t in words if t.text[0].isupper()) >= 0.6 * len(words)


class NameFinder:
    """Finds personal names: the known ones (participants' display names, organisations'
    names; each full name, and each of its words of three letters or more that is not an
    everyday word) and unknown ones (the shipped list, titles, "my neighbour X" and the like).
    """

    def __init__(self, known: Iterable[str] = ()) -> None:
        names = name_list()
        phrases: set[tuple[str, ...]] = set()
        soft: set[str] = set()  # known words that are everyday words: matched like "mid" names
        for name in known:
            words = tuple(w.lower() for w in WORD.findall(name or ""))
            if not words:
                continue
            phrases.add(words)
            for part in words:
                if len(part) >= 3 and part not in HARMLESS and not part.isdigit():
                    phrases.add((part,))
                    entry = names.get(part)
                    if entry is not None and entry.when in ("mid", "month"):
                        soft.add(part)
        self._phrases = phrases
        self._soft = soft
        self._starts = {p[0] for p in phrases}  # most words start no known name: one look-up
        self._longest = max((len(p) for p in phrases), default=0)
        self._names = names

    def find(self, text: str) -> NamesFound:
        tokens = _tokens(text)
        found = NamesFound()
        if not tokens:
            return found
        loud = _shouting(tokens)
        if loud:  # every word looks capitalised: judged as such, the doubtful ones dropped
            for tok in tokens:
                tok.cap = tok.text[0].isupper()
        marked = [False] * len(tokens)
        self._mark_known(tokens, marked, loud, found)
        for i, tok in enumerate(tokens):
            if not marked[i] and not tok.placeholder:
                self._judge(text, tokens, i, marked, loud, found)
        self._coordinate(text, tokens, marked)
        self._extend(text, tokens, marked)
        found.spans = _spans(text, tokens, marked)
        return found

    # ---------------------------------------------------------------- known names

    def _mark_known(
        self, tokens: list[_Token], marked: list[bool], loud: bool, found: NamesFound
    ) -> None:
        i = 0
        while i < len(tokens):
            if tokens[i].low not in self._starts and tokens[i].base not in self._starts:
                i += 1
                continue
            for n in range(min(self._longest, len(tokens) - i), 0, -1):
                key = tuple(t.low for t in tokens[i : i + n])
                if key not in self._phrases and n == 1:
                    key = (tokens[i].base,)
                if key not in self._phrases:
                    continue
                tok = tokens[i]
                if n == 1 and key[0] in self._soft:
                    # A known name that is an everyday word ("Hope", "Will"): as a "mid" name.
                    if loud:
                        found.doubts.append(f"known name {tok.text!r} in capitals")
                    elif not (tok.cap and not tok.first):
                        continue
                for j in range(i, i + n):
                    marked[j] = True
                i += n - 1
                break
            i += 1

    # ---------------------------------------------------------------- unknown names

    def _judge(
        self,
        text: str,
        tokens: list[_Token],
        i: int,
        marked: list[bool],
        loud: bool,
        found: NamesFound,
    ) -> None:
        tok = tokens[i]
        entry = self._names.get(tok.base)
        if entry is None and not tok.cap and (i == 0 or tokens[i - 1].low not in _CUES):
            return  # most words: lower case, no name, no title or "my neighbour" before
        prev = tokens[i - 1] if i > 0 and _plain_gap(text, tokens, i) else None
        prev2 = (
            tokens[i - 2]
            if prev is not None and i > 1 and _plain_gap(text, tokens, i - 1)
            else None
        )
        after = [t.low for t in tokens[i + 1 : i + 3]]
        nxt = tokens[i + 1] if i + 1 < len(tokens) and _plain_gap(text, tokens, i + 1) else None
        if tok.base in _CALENDAR and (entry is None or entry.when != "month"):
            return  # "Christmas", "Friday"; May and June are judged below
        everyday = tok.base in _FUNCTION or tok.base in HARMLESS
        nameable = tok.low.replace("'", "").isalpha() and (
            not everyday or (entry is not None and entry.when in ("mid", "month"))
        )

        # Cues that make the word a name whatever it is.
        title = tokens[i - 1] if i > 0 and _title_gap(text, tokens, i) else None
        if (
            title is not None
            and title.low in _TITLES
            and (tok.cap or (tok.lower and title.low in _SHORT_TITLES))
            and nameable
            and tok.base not in _ROLES
            and tok.base not in _CALENDAR
        ):
            marked[i - 1] = marked[i] = True
            return
        if (
            prev is not None
            and prev2 is not None
            and (
                (prev.low in _RELATIONS and prev2.low in _POSSESSIVES)
                or (prev.low in _NAMING and prev2.low in _PERSON_NOUNS)
            )
            and (tok.cap or (entry is not None and entry.when == "any"))
            and nameable
        ):
            marked[i] = True
            return

        if not nameable:
            return
        if entry is None:
            self._judge_unknown(tok, after, loud, marked, i, found)
            return

        # Where a listed name is not a person: "the Bill", "in Florence", "St Mary's",
        # "Victoria Park", "McDonald's", "NHS".
        if prev is not None and (
            prev.low in _DETERMINERS or prev.low in _PLACE_PREPS or prev.low in ("st", "saint")
        ):
            return
        if nxt is not None and nxt.low in _PLACE_NOUNS and (nxt.cap or entry.when == "mid"):
            return
        if tok.base in _BRANDS and tok.base != tok.low:
            return
        if not loud and len(tok.text) > 1 and tok.text.isupper():
            return  # an acronym

        when = entry.when
        if (
            tok.base in ("will", "may")
            and nxt is not None
            and (
                nxt.low in _AFTER_MODAL
                or ((tok.first or loud) and nxt.low in _DETERMINERS | _POSSESSIVES)
            )
        ):
            return  # the verb: "I Will not give up", "WILL THE COUNCIL LISTEN?"
        if loud:
            if when in ("any", "cap"):
                marked[i] = True
            else:
                found.doubts.append(f"{tok.text!r} in capitals: a name or a word?")
            return
        if when == "any":
            if tok.cap or tok.lower:
                marked[i] = True
            return
        if when == "cap":
            if tok.cap:
                marked[i] = True
            return
        if not tok.cap:
            return  # "we hope", "you will", "sue them"
        # mid and month: an everyday word (or a month) that is also a name.
        if when == "mid" and (
            (prev is not None and prev.cap and not prev.first and not marked[i - 1])
            or (nxt is not None and nxt.low in HARMLESS and nxt.low not in _FUNCTION)
        ):
            return  # "Housing Bill", "Faith groups"
        if when == "mid" and not tok.first:
            marked[i] = True
            return
        if _person_after(after):
            marked[i] = True  # "Will and I", "May said"
        elif _from_the(after):
            found.doubts.append(f"{tok.text!r} before 'from/at the': a person or a thing?")

    def _judge_unknown(
        self,
        tok: _Token,
        after: list[str],
        loud: bool,
        marked: list[bool],
        i: int,
        found: NamesFound,
    ) -> None:
        """A capitalised word that is in no list: a name if only a person fits ("Zofia and
        I"), a doubt if a person is likely ("Zofia said", "Zofia from the council")."""
        if loud or not tok.cap or tok.base in _CALENDAR or tok.base in _PLACE_NOUNS:
            return
        if after[:2] in (["and", "i"], ["and", "me"]):
            marked[i] = True
        elif not tok.first and (_person_after(after) or _from_the(after)):
            found.doubts.append(f"{tok.text!r} looks like a name")

    def _coordinate(self, text: str, tokens: list[_Token], marked: list[bool]) -> None:
        """A capitalised everyday-word name listed with names is one too: "Lily and Grace
        help", "Sue, Priya and Dave" (Lily and Sue start their sentences, so alone they would
        stay)."""
        for i, tok in enumerate(tokens):
            entry = self._names.get(tok.base)
            if marked[i] or not tok.cap or entry is None or entry.when != "mid":
                continue
            for step in (1, -1):
                j = i + step
                if not 0 <= j < len(tokens):
                    continue
                gap = _gap(text, tokens, max(i, j)).strip()
                if gap in (",", "&") and marked[j]:
                    marked[i] = True
                elif gap == "" and tokens[j].low in ("and", "or"):
                    k = j + step
                    if (
                        0 <= k < len(tokens)
                        and marked[k]
                        and _gap(text, tokens, max(j, k)).strip() in ("", ",")
                    ):
                        marked[i] = True

    # ---------------------------------------------------------------- surnames

    def _extend(self, text: str, tokens: list[_Token], marked: list[bool]) -> None:
        """A capitalised word next to a name is part of it ("Sue Okonkwo", "Mary-Jane"); a
        capitalised word before a surname too ("Zbigniew Kowalski")."""
        for i in range(len(tokens)):
            if marked[i] and i + 1 < len(tokens) and not marked[i + 1]:
                j = i + 1
                if _surname_like(tokens[j]) and not tokens[j].first and _name_gap(text, tokens, j):
                    marked[j] = True
        for i in range(len(tokens) - 1, 0, -1):
            entry = self._names.get(tokens[i].base)
            if (
                marked[i]
                and not marked[i - 1]
                and entry is not None
                and entry.surname
                and not entry.first
                and _surname_like(tokens[i - 1])
                and _name_gap(text, tokens, i)
            ):
                marked[i - 1] = True


def _surname_like(tok: _Token) -> bool:
    return (
        tok.cap
        and not tok.placeholder
        and tok.text.replace("'", "").replace("’", "").isalpha()
        and tok.base not in _FUNCTION
        and tok.base not in HARMLESS
        and tok.base not in _PLACE_NOUNS
        and tok.base not in _CALENDAR
        and tok.base not in _TITLES
    )


def _person_after(after: list[str]) -> bool:
    return bool(after) and (
        after[0] in _SPEECH or after[:2] in (["and", "i"], ["and", "me"], ["and", "myself"])
    )


def _from_the(after: list[str]) -> bool:
    return len(after) == 2 and after[0] in ("from", "at") and after[1] == "the"


def _gap(text: str, tokens: list[_Token], i: int) -> str:
    return text[tokens[i - 1].end : tokens[i].start]


def _plain_gap(text: str, tokens: list[_Token], i: int) -> bool:
    """Only spaces between word i-1 and word i (no punctuation)."""
    return i > 0 and _gap(text, tokens, i).strip() == ""


def _title_gap(text: str, tokens: list[_Token], i: int) -> bool:
    return i > 0 and _gap(text, tokens, i).strip() in ("", ".")


def _name_gap(text: str, tokens: list[_Token], i: int) -> bool:
    gap = _gap(text, tokens, i)
    return bool(_JOINABLE_GAP.fullmatch(gap))


def _spans(text: str, tokens: list[_Token], marked: list[bool]) -> list[tuple[int, int]]:
    """Runs of marked words joined by spaces, hyphens or a title's dot: one name each."""
    spans: list[tuple[int, int]] = []
    for i, tok in enumerate(tokens):
        if not marked[i]:
            continue
        end = tok.end - (len(tok.low) - len(tok.base))  # "Zofia's" keeps its 's
        if (
            spans
            and i > 0
            and marked[i - 1]
            and (_name_gap(text, tokens, i) or _title_gap(text, tokens, i))
        ):
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((tok.start, end))
    return spans
