"""The deployment's profile questions (templates/profile.toml, read by
bot.consultations.profile): asked after joining and with /profile, stored in
Participant.profile, and copied into each invitation's segment."""

from __future__ import annotations

from typing import Any

from bot.consultations.profile import ProfileOption, ProfileQuestion
from storage.models import Participant

# Organisation columns a profile answer may fill in when the organisation has none yet.
ORGANISATION_FIELDS = ("area", "size", "sector", "kind")


def applies(question: ProfileQuestion, participant: Participant, *, joining: bool) -> bool:
    if question.key == "answers_as" and joining and participant.answers_as:
        return False  # the invite link already said who they answer for
    # Ask an "only_for" question only of people known to answer that way.
    return not (question.only_for and participant.answers_as != question.only_for)


def counted(
    questions: tuple[ProfileQuestion, ...], participant: Participant, *, joining: bool
) -> list[int]:
    """Indices of the questions this pass asks, for "About you, n of m": those that apply and,
    while who they answer for is still to be asked, those that may apply once it is."""
    undecided = participant.answers_as is None and any(
        q.key == "answers_as" and applies(q, participant, joining=joining) for q in questions
    )
    return [
        index
        for index, question in enumerate(questions)
        if applies(question, participant, joining=joining) or (undecided and question.only_for)
    ]


def next_question(
    questions: tuple[ProfileQuestion, ...], participant: Participant, after: int, *, joining: bool
) -> int | None:
    """Index of the next question to ask after index `after` (-1 to begin)."""
    asked = range(after + 1, len(questions))
    return next((i for i in asked if applies(questions[i], participant, joining=joining)), None)


def set_answer(participant: Participant, question: ProfileQuestion, option: ProfileOption) -> None:
    profile = dict(participant.profile or {})  # a new dict, so the JSON column sees the change
    profile[question.key] = option.id
    participant.profile = profile
    if question.key == "answers_as":
        participant.answers_as = option.id
    org = participant.organisation
    if (
        org is not None
        and question.key in ORGANISATION_FIELDS
        and getattr(org, question.key) is None
    ):
        setattr(org, question.key, option.id)


# Organisation columns the digest breaks answers down by that only the organisation knows:
# copied from it into each invitation, so a digest counts an organisation as it was when asked.
ORGANISATION_SEGMENTS = ("sector", "kind")


def area_of(participant: Participant) -> str | None:
    """The person's area: the one meaning of "area" in targeting (`--where area=...`, the
    /schedule dialog), /round N, `rounds show` and the digest. Their own answer to the profile's
    area question; for a member of an organisation who gave none, the organisation's (its
    first member's answer, see set_answer). None when neither is known.

    Not the organisation's first: its members live and work in different parts of town, and
    `--where area=north` asked those who said South and missed another's who said North."""
    own = (participant.profile or {}).get("area")
    if own:
        return str(own)
    organisation = participant.organisation
    return organisation.area if organisation is not None and organisation.area else None


def segment_of(participant: Participant) -> dict[str, Any]:
    """What an invitation copies so a digest counts people as they were when asked."""
    segment = dict(participant.profile or {})
    if participant.answers_as:
        segment["answers_as"] = participant.answers_as
    # The area as area_of decides it; "" for none, as below.
    segment["area"] = area_of(participant) or ""
    # The language they were asked in, so a digest can count participation by language and
    # the barrier coder reads their free text with that language's cues (bot.coding).
    segment["language"] = participant.language or ""
    organisation = participant.organisation
    if organisation is not None:
        for key in ORGANISATION_SEGMENTS:
            # "" rather than null for "none at the time": a null would let the digest fall
            # back to the organisation's value today, as it does for invitations made before.
            segment[key] = getattr(organisation, key) or ""
    return segment
