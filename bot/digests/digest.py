"""What a digest is, as plain data: participation by segment, questions, barriers, quotes and
actions, for one round or a period (a Scope). Compiled by compile.py, rendered by render.py.

A compiled digest is in no language: its words are `Said` (a catalog message and its values)
or `InLanguages` (a consultation's or profile's own translations), put into words when they
are shown (str()), so one compiled digest renders in each reader's language. Segment and
option labels stay as counted (the keys releases store, English for the fixed ones such as
NOT_GIVEN, marked N_) and are put into words by render.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from babel.dates import format_date

from bot.coding.codebook import Codebook
from bot.kernel import i18n
from bot.kernel.i18n import N_, _
from storage.models import ActionStatus

NOT_GIVEN = N_("Not given")


@dataclass(frozen=True)
class Said:
    """A catalog message (marked N_ where written) and its `{name}` values, said in the
    language being spoken when shown. Values may be Said or InLanguages themselves."""

    message: str
    values: tuple[tuple[str, Any], ...] = ()

    def __str__(self) -> str:
        text = _(self.message)
        return text.format(**{k: str(v) for k, v in self.values}) if self.values else text


def said(message: str, **values: Any) -> Said:
    return Said(message, tuple(values.items()))


@dataclass(frozen=True)
class InLanguages:
    """A text with its own translations (a consultation's title, a profile option's label):
    the one in the language being spoken, else the text as written."""

    text: str
    translations: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, text: str, translations: Mapping[str, str]) -> InLanguages:
        return cls(text, tuple(sorted(translations.items())))

    def __str__(self) -> str:
        return dict(self.translations).get(i18n.current(), self.text)


@dataclass(frozen=True)
class Month:
    """A month's name (with its year, `with_year`) in the language being spoken."""

    day: date
    with_year: bool = False

    def __str__(self) -> str:
        return format_date(self.day, "MMMM y" if self.with_year else "MMMM", locale=i18n.locale())


class CodeLabel:
    """A barrier code's label, read from the codebook when shown (it says it in the language
    being spoken), not when the digest is compiled."""

    def __init__(self, codebook: Codebook, code: str) -> None:
        self.codebook, self.code = codebook, code

    def __str__(self) -> str:
        return self.codebook[self.code].label

    def __repr__(self) -> str:
        return f"CodeLabel({self.code!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CodeLabel) and other.code == self.code

    def __hash__(self) -> int:
        return hash(self.code)


Text = str | Said | InLanguages | CodeLabel


@dataclass
class SegmentRow:
    label: str
    invited: int
    responded: int | None  # None: held back
    completed: int | None
    rate: float | None
    merged: bool = False
    small: bool = False  # held back because fewer than k responded (not to protect another)


@dataclass
class Dimension:
    key: str
    label: Text
    rows: list[SegmentRow]
    note: Text | None = None


@dataclass(frozen=True)
class ReachGap:
    """A segment with no responses, or fewer than k, from the people invited."""

    dimension: str  # its dimension's key
    label: str  # the segment's label, as counted
    none: bool  # no responses at all (else fewer than k)
    invited: int


@dataclass
class Participation:
    invited: int
    responded: int | None  # None: fewer than k responded
    completed: int | None
    rate: float | None
    completion_rate: float | None
    dimensions: list[Dimension]
    reach_gaps: list[ReachGap]  # segments with few or no responses
    organisations_without: list[str]  # named only for coordinators
    organisations_few: int  # registered organisations under k responses (all audiences)


@dataclass
class ChoiceCount:
    key: str
    label: Text
    count: int
    share: float


@dataclass
class ScaleStats:
    n: int
    mean: float
    sd: float
    min: float | None  # None: fewer than k people gave the lowest value
    max: float | None
    min_label: Text | None = None
    max_label: Text | None = None


@dataclass
class QuestionSummary:
    key: str
    text: Text
    type: str
    answered: int | None  # None: the question is suppressed
    skipped: int | None  # None: held back (fewer than k skipped)
    suppressed: bool = False
    choices: list[ChoiceCount] = field(default_factory=list)
    merged: ChoiceCount | None = None  # the "Other (merged)" cell when shown
    merged_hidden: bool = False  # some choices under k could not be shown at all
    scale: ScaleStats | None = None
    consultation: str = ""
    # People it applied to ("12 of the 20 asked"); None: not known (older releases) or not
    # shown (a condition that would single out a group the digest does not show).
    asked: int | None = None
    branch_withheld: bool = False  # asked of a group too finely cut to show
    slug: str = ""  # its consultation set, whose translations say it in the reader's language

    @property
    def visible(self) -> list[ChoiceCount]:
        """Choices somebody picked, most picked first (zeros are left out of the prose)."""
        return [c for c in self.choices if c.count]


@dataclass
class BarrierRow:
    code: str
    label: Text
    family: str  # external | internal | success
    respondents: int
    share: float
    previous_share: float | None = None  # same code in the comparison round/period

    @property
    def change(self) -> float | None:
        if self.previous_share is None:
            return None
        return self.share - self.previous_share


@dataclass
class Barriers:
    base: int | None  # respondents the shares are out of (None: no content released)
    rows: list[BarrierRow]  # barriers shown, most frequent first
    successes: list[BarrierRow]
    hidden_codes: int  # how many codes named by someone are held back
    compared_with: Text | None  # "round 3" / "the previous quarter"
    # Free-text answers in a language the coder has no cues for, waiting for a coordinator to
    # code them (/review): 0 for none; None for some, but fewer than k (held back).
    awaiting_coding: int | None = 0


@dataclass
class Quote:
    code: str
    label: Text
    family: str
    text: str
    language: str | None = None  # the language it was written in (None: not given)


@dataclass
class ActionItem:
    id: int
    round_id: int
    barrier_code: str | None
    barrier_label: Text | None
    finding: str
    action: str
    owner: str
    due_on: date | None
    status: str
    overdue: bool
    published: bool


@dataclass
class OrganisationDetail:
    name: str
    invited: int
    responded: int | None
    completed: int | None
    barriers: list[BarrierRow]
    suppressed: bool  # their own figures would give others away: barriers are not shown


@dataclass
class Digest:
    title: Text
    partnership: str
    scope: Text  # "Round 4: How well are we working with you?" or "July to September 2026"
    round_ids: list[int]
    period_start: datetime | None
    period_end: datetime | None
    generated_at: datetime
    k: int
    audience: str  # coordinator | lead
    participation: Participation
    questions: list[QuestionSummary]
    barriers: Barriers
    quotes: list[Quote]
    actions: list[ActionItem]
    organisation: OrganisationDetail | None = None
    notes: list[Text] = field(default_factory=list)  # what the privacy rules held back
    releasable: bool = True  # False: fewer than k responded, participation figures only
    left_out: list[int] = field(default_factory=list)  # rounds a period leaves out (under k)
    # Which version of its form each round asked: "round 4: pulse, version 2".
    versions: list[Text] = field(default_factory=list)
    # Segment labels as counted -> their words, by dimension (the profile questions' options,
    # in each language they have: "north" reads North, or Gogledd).
    segment_names: dict[str, dict[str, InLanguages]] = field(default_factory=dict)

    @property
    def open_actions(self) -> list[ActionItem]:
        return [a for a in self.actions if a.status == ActionStatus.OPEN.value]

    @property
    def overdue_actions(self) -> list[ActionItem]:
        return [a for a in self.actions if a.overdue]

    @property
    def top_barriers(self) -> list[BarrierRow]:
        return self.barriers.rows[:3]


@dataclass(frozen=True)
class Scope:
    """What a digest covers: explicit rounds, with a label and optional period bounds."""

    round_ids: tuple[int, ...]
    label: Text
    start: datetime | None = None
    end: datetime | None = None
    previous: tuple[int, ...] = ()
    previous_label: Text | None = None
    period: bool = False  # a quarter: made of its releasable rounds (bot.digests.disclosure)


class DigestError(Exception):
    """A digest that cannot be made (no such round, nothing closed yet); the text is for people."""
