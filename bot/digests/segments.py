"""Who took part: invited, responded and completed, overall, by segment (area, size, sector,
answering as, organisation type, channel, language) and by organisation, as true counts
(bot.digests.disclosure decides what is shown).

Who counts as what: invited: an invitation row; responded: the person answered at least one
question; completed: they finished the round. A submission gathered elsewhere and imported
(bot.participation.imported) is one of each, under its channel, its other segments not given.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from babel import Locale, UnknownLocaleError
from sqlalchemy import JSON, ColumnElement, Text, case, cast, exists, func, or_, select, type_coerce
from sqlalchemy.orm import Session

from bot.consultations.profile import load_profile_questions
from bot.digests.digest import NOT_GIVEN, InLanguages
from bot.kernel.i18n import N_, _
from storage.models import CHAT, Answer, Invitation, InvitationStatus, Organisation

# Channel and then language come last: releases published before them have the others' labels
# only, in this order (see figures.RoundFigures.from_json and OLD_RELEASE_LABELS).
DIMENSIONS: tuple[tuple[str, str], ...] = (
    ("area", N_("Area")),
    ("size", N_("Organisation size")),
    ("sector", N_("Sector")),
    ("answers_as", N_("Answering as")),
    ("kind", N_("Organisation type")),
    ("channel", N_("Channel")),
    ("language", N_("Language")),
)
# Segment labels as counted and stored in releases: English keys, marked N_ and put into the
# reader's words when a digest is rendered (bot.digests.render), so a release published in one
# language reads in every other.
ANSWERS_AS_LABELS = {"organisation": N_("An organisation"), "service_user": N_("A service user")}
CHANNEL_LABELS = {
    CHAT: N_("Chat"),
    "paper": N_("Paper"),
    "event": N_("Event"),
    "kobo": "KoboToolbox",
    "odk": "ODK",
}
# Everyone asked before answers could be imported answered in the chat: a release published
# then has no channel label in its atoms, nor a channel dimension (RoundFigures.from_json).
CHAT_LABEL = CHANNEL_LABELS[CHAT]
# What a dimension reads as in a release published before it: everyone answered in the chat,
# and nobody's language was recorded. Dimensions not listed: not given.
OLD_RELEASE_LABELS = {"channel": CHAT_LABEL}


def on_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def flag(condition: ColumnElement[bool]) -> Any:
    return func.sum(case((condition, 1), else_=0))


def has_responded() -> ColumnElement[bool]:
    """Gave at least one answer (a skip counts): the people every content figure is out of."""
    return exists().where(Answer.invitation_id == Invitation.id)


def has_completed() -> ColumnElement[bool]:
    return or_(
        Invitation.completed_at.is_not(None), Invitation.status == InvitationStatus.COMPLETED
    )


def _dimension_column(key: str, segment: Any, counted: Any) -> Any:
    """`key` of an invitation's `segment` (a JSON expression) or, for the channel, of its own
    column (in `counted`)."""
    if key == "channel":
        return counted.c.channel
    if key in ("answers_as", "language"):
        # The person's own, copied when asked; no organisation to fall back on.
        return segment[key].as_string()
    # As copied into the invitation when it was made (bot.participation.profile.segment_of), so
    # a digest counts people and organisations as they were when asked; the area is the one
    # targeting uses (profile.area_of: the person's own answer, else their organisation's).
    # The organisation's value today only for invitations made before area, sector and kind
    # were copied (an invitation without a copied area had no answer of its own, so this is
    # area_of's fallback too). "" (none at the time) is not given.
    copied = segment[key].as_string()
    return func.nullif(func.coalesce(copied, getattr(Organisation, key)), "")


Cells = dict[str, dict[str, list[int]]]  # dimension key -> segment label -> [n, r, c]


def participation_cells(
    session: Session, round_id: int
) -> tuple[list[int], Cells, dict[int, list[int]], list[list[Any]]]:
    """[invited, responded, completed] in all, per DIMENSIONS' segment label and per
    organisation, and the atoms: [organisation, [label per dimension], n, r, c] for each
    combination present (what disclosure control audits derivations against)."""
    totals = [0, 0, 0]
    segments: Cells = {}
    per_org: dict[int, list[int]] = {}
    atoms: dict[tuple[Any, ...], list[int]] = {}
    for org, *values, n, r, c in _cells(session, [round_id]):
        cell = (int(n), int(r or 0), int(c or 0))
        pairs = zip(DIMENSIONS, values, strict=True)
        labels = tuple(_segment_label(key, v) for (key, _), v in pairs)
        _add(atoms.setdefault((org, labels), [0, 0, 0]), cell)
        _add(totals, cell)
        if org is not None:
            _add(per_org.setdefault(org, [0, 0, 0]), cell)
        for (key, _name), label in zip(DIMENSIONS, labels, strict=True):
            _add(segments.setdefault(key, {}).setdefault(label, [0, 0, 0]), cell)
    return (
        totals,
        _given(segments),
        per_org,
        [[org, list(labels), *cells] for (org, labels), cells in sorted(atoms.items(), key=str)],
    )


def _add(target: list[int], cell: tuple[int, int, int]) -> None:
    for i, x in enumerate(cell):
        target[i] += x


def _given(segments: Cells) -> Cells:
    """Dimensions somebody has a value for, each in label order with "not given" first (ties
    in merging small segments are broken by this order). The channel only when some answers
    came by another than the chat: "all in the chat" is no breakdown. (A round all in one
    language keeps it, so a quarter can count its people under it; disclosure shows no
    breakdown of one language: see disclosure.SHOWN_FROM_TWO.)"""
    unknown = {key: NOT_GIVEN for key, _ in DIMENSIONS} | {"channel": CHAT_LABEL}
    return {
        key: dict(sorted(labels.items(), key=lambda kv: (kv[0] != unknown[key], kv[0])))
        for key, labels in segments.items()
        if any(label != unknown[key] for label in labels)
    }


def _cells(session: Session, ids: list[int]) -> list[Any]:
    """(organisation, the DIMENSIONS' values..., invited, responded, completed) per cell.

    The invitations are counted by organisation and segment as stored (its JSON text), and
    only those few hundred cells have their dimensions read out of the JSON and their
    organisation joined: reading five JSON keys out of every invitation cost more than the
    counting. The cells are folded into the totals, each dimension and each organisation in
    Python, instead of a query for each."""
    segment_text = cast(Invitation.segment, Text)
    counted = (
        select(
            Invitation.organisation_id,
            segment_text.label("segment"),
            Invitation.channel,
            func.count().label("invited"),
            flag(has_responded()).label("responded"),
            flag(has_completed()).label("completed"),
        )
        .where(Invitation.round_id.in_(ids))
        .group_by(Invitation.organisation_id, segment_text, Invitation.channel)
        .subquery("counted")
    )
    # PostgreSQL reads JSON out of a json value (the text is cast back); SQLite out of text.
    if on_postgresql(session):
        segment: Any = cast(counted.c.segment, JSON)
    else:
        segment = type_coerce(counted.c.segment, JSON)
    return list(
        session.execute(
            select(
                counted.c.organisation_id,
                *[_dimension_column(key, segment, counted) for key, _ in DIMENSIONS],
                counted.c.invited,
                counted.c.responded,
                counted.c.completed,
            ).outerjoin(Organisation, Organisation.id == counted.c.organisation_id)
        ).all()
    )


def _segment_label(key: str, value: Any) -> str:
    if key == "channel":
        text = str(value or CHAT)
        return CHANNEL_LABELS.get(text, text.replace("_", " ").capitalize())
    if value is None or str(value).strip() == "":
        return NOT_GIVEN
    text = str(value)
    if key == "answers_as":
        return ANSWERS_AS_LABELS.get(text, text.replace("_", " ").capitalize())
    if key == "language":
        return language_label(text)
    return text.replace("_", " ")  # stored keys such as volunteers_only read as words


def language_label(code: str) -> str:
    """A language as its speakers name it ("English", "Cymraeg"), from Babel's locale data;
    a code Babel does not know reads as itself."""
    try:
        name = Locale.parse(code.replace("-", "_")).get_display_name()
    except (ValueError, UnknownLocaleError):
        return code
    return name[:1].upper() + name[1:] if name else code


def segment_names(templates: Path) -> dict[str, dict[str, InLanguages]]:
    """The profile questions' options as segment labels: a segment is counted under its
    option's id (its "_" read as spaces; looked up in lower case, as an organisation's area may
    be typed "North") and read as the option's label in the reader's language."""
    return {
        question.key: {
            option.id.replace("_", " ").lower(): InLanguages.of(
                option.label, dict(option.translations)
            )
            for option in question.options
        }
        for question in load_profile_questions(templates)
    }


def segment_label(
    names: Mapping[str, Mapping[str, InLanguages]], dimension: str, label: str
) -> str:
    """A segment's label as counted, or a value as stored ("volunteers_only"), in words: a
    profile option's label in the reader's language ("north", or an organisation's "North":
    North, or Gogledd), else through the catalog ("Not given")."""
    named = names.get(dimension, {}).get(label.replace("_", " ").lower())
    return str(named) if named is not None else _(label)
