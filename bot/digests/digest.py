"""What a digest is, as plain data: participation by segment, questions, barriers, quotes and
actions, for one round or a period (a Scope). Compiled by compile.py, rendered by render.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from storage.models import ActionStatus

NOT_GIVEN = "Not given"


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
    label: str
    rows: list[SegmentRow]
    note: str | None = None


@dataclass
class Participation:
    invited: int
    responded: int | None  # None: fewer than k responded
    completed: int | None
    rate: float | None
    completion_rate: float | None
    dimensions: list[Dimension]
    reach_gaps: list[str]  # segments with few or no responses, in words
    organisations_without: list[str]  # named only for coordinators
    organisations_few: int  # registered organisations under k responses (all audiences)


@dataclass
class ChoiceCount:
    key: str
    label: str
    count: int
    share: float


@dataclass
class ScaleStats:
    n: int
    mean: float
    sd: float
    min: float | None  # None: fewer than k people gave the lowest value
    max: float | None
    min_label: str | None = None
    max_label: str | None = None


@dataclass
class QuestionSummary:
    key: str
    text: str
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

    @property
    def visible(self) -> list[ChoiceCount]:
        """Choices somebody picked, most picked first (zeros are left out of the prose)."""
        return [c for c in self.choices if c.count]


@dataclass
class BarrierRow:
    code: str
    label: str
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
    compared_with: str | None  # "round 3" / "the previous quarter"
    # Free-text answers in a language the coder has no cues for, waiting for a coordinator to
    # code them (/review): 0 for none; None for some, but fewer than k (held back).
    awaiting_coding: int | None = 0


@dataclass
class Quote:
    code: str
    label: str
    family: str
    text: str
    language: str | None = None  # the language it was written in (None: not given)


@dataclass
class ActionItem:
    id: int
    round_id: int
    barrier_code: str | None
    barrier_label: str | None
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
    title: str
    partnership: str
    scope: str  # "Round 4: How well are we working with you?" or "July to September 2026"
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
    notes: list[str] = field(default_factory=list)  # what the privacy rules held back
    releasable: bool = True  # False: fewer than k responded, participation figures only
    left_out: list[int] = field(default_factory=list)  # rounds a period leaves out (under k)
    # Which version of its form each round asked: "round 4: pulse, version 2".
    versions: list[str] = field(default_factory=list)

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
    label: str
    start: datetime | None = None
    end: datetime | None = None
    previous: tuple[int, ...] = ()
    previous_label: str | None = None
    period: bool = False  # a quarter: made of its releasable rounds (bot.digests.disclosure)


class DigestError(Exception):
    """A digest that cannot be made (no such round, nothing closed yet); the text is for people."""
