"""A round's true figures, as counted when it closed: the raw material of every release.

These are exact counts, small ones included; they are stored (bot.digests.published) and never
shown. Only bot.digests.disclosure turns them into what a reader sees.

Who counts as what: invited: an invitation; responded: the person gave at least one answer
(a skip counts: they took part); completed: they finished the round.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from bot.digests.digest import NOT_GIVEN
from bot.digests.segments import DIMENSIONS, OLD_RELEASE_LABELS


@dataclass
class QuestionFigures:
    key: str
    text: str
    type: str
    consultation: str  # its title
    slug: str  # the consultation set, so a period matches questions across versions
    options: list[tuple[str, str]]  # (key, label) in the order asked
    answered: int  # gave an answer (not a skip)
    skipped: int
    choices: dict[str, int] = field(default_factory=dict)  # option key -> people
    values: dict[str, int] = field(default_factory=dict)  # scale value (as text) -> people
    min_label: str | None = None
    max_label: str | None = None
    # Respondents the question applied to: all of them, or those whose earlier answers met its
    # condition (None in releases made before branching: all of them).
    asked: int | None = None
    condition: str | None = None  # its `relevant`, as written

    def numbers(self) -> list[tuple[float, int]]:
        return sorted((float(v), n) for v, n in self.values.items() if n)


@dataclass
class OrganisationFigures:
    invited: int
    responded: int
    completed: int
    codes: dict[str, int] = field(default_factory=dict)


@dataclass
class QuoteCandidate:
    code: str
    text: str  # already scrubbed
    invitation_id: int  # so an erasure can take it out; never shown
    language: str | None = None  # the answering person's language (None: not given)


@dataclass
class RoundFigures:
    round_id: int
    invited: int
    responded: int
    completed: int
    # dimension key -> segment label -> [invited, responded, completed], labels in value order
    segments: dict[str, dict[str, list[int]]]
    organisations: dict[int, OrganisationFigures]
    questions: list[QuestionFigures]
    codes: dict[str, int]  # respondents naming each code (once per person)
    quotes: list[QuoteCandidate] = field(default_factory=list)
    # [organisation, [label per dimension, in DIMENSIONS' order], n, r, c] per combination
    atoms: list[list[Any]] = field(default_factory=list)
    # Free-text answers waiting for a coordinator to code them (bot.coding.stored.UNCODED)
    awaiting_coding: int = 0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["organisations"] = {str(k): v for k, v in data["organisations"].items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RoundFigures:
        return cls(
            round_id=int(data["round_id"]),
            invited=int(data["invited"]),
            responded=int(data["responded"]),
            completed=int(data["completed"]),
            segments=data["segments"],
            organisations={
                int(k): OrganisationFigures(**v) for k, v in data["organisations"].items()
            },
            questions=[
                QuestionFigures(**{**q, "options": [tuple(o) for o in q["options"]]})
                for q in data["questions"]
            ],
            codes=data["codes"],
            quotes=[QuoteCandidate(**q) for q in data.get("quotes", [])],
            atoms=[_with_later_dimensions(atom) for atom in data.get("atoms", [])],
            awaiting_coding=int(data.get("awaiting_coding", 0)),
        )


def _with_later_dimensions(atom: list[Any]) -> list[Any]:
    """An atom of a release published before the channel or the language dimension (fewer
    labels than DIMENSIONS): everyone in it answered in the chat, their language not given."""
    org, labels, *cells = atom
    later = [key for key, _ in DIMENSIONS[len(labels) :]]
    return [org, [*labels, *[OLD_RELEASE_LABELS.get(k, NOT_GIVEN) for k in later]], *cells]
