"""Releases: a round's figures are counted once, when it closes, and stored; every digest of
that round, and every period digest that includes it, is made from them and never recounted.

So a digest asked for after someone's /forget shows the same figures as the one sent at close:
comparing the two gives nothing away. An erasure only takes the person's quotes out of the
stored releases (their words), never their contribution to the counts.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from bot.coding.codebook import Codebook
from bot.coding.stored import awaiting_coding, code_uncoded_answers
from bot.digests.barriers import code_counts_by_organisation
from bot.digests.digest import DigestError
from bot.digests.figures import OrganisationFigures, QuoteCandidate, RoundFigures
from bot.digests.questions import question_counts
from bot.digests.quotes import quote_candidates
from bot.digests.segments import participation_cells
from bot.kernel.i18n import _
from storage.models import Release, Round, RoundStatus


def count_round(session: Session, round_id: int, codebook: Codebook) -> RoundFigures:
    """Count one round's true figures, in a handful of GROUP BY statements."""
    totals, segments, organisations, atoms = participation_cells(session, round_id)
    codes, org_codes = code_counts_by_organisation(session, round_id)
    named = sorted(c for c in codes if c in codebook)
    return RoundFigures(
        round_id=round_id,
        invited=totals[0],
        responded=totals[1],
        completed=totals[2],
        segments=segments,
        organisations={
            org: OrganisationFigures(
                *cells, codes={c: n for c, n in org_codes.get(org, {}).items() if c in codebook}
            )
            for org, cells in organisations.items()
        },
        questions=question_counts(session, round_id, totals[1]),
        codes={c: codes[c] for c in named},
        quotes=quote_candidates(session, round_id, named),
        atoms=atoms,
        awaiting_coding=awaiting_coding(session, [round_id]),
    )


def unpublished(session: Session, round_ids: Iterable[int]) -> list[int]:
    """The closed rounds among `round_ids` whose figures are not yet published (rounds closed
    before releases existed are published on first use)."""
    return list(
        session.scalars(
            select(Round.id).where(
                Round.id.in_(list(round_ids)),
                Round.status == RoundStatus.CLOSED,
                ~exists().where(Release.round_id == Round.id),
            )
        )
    )


def publish(session: Session, round_ids: Iterable[int], codebook: Codebook) -> int:
    """Count and store the figures of these rounds (see `unpublished`). Returns how many."""
    # Every round counted before the first is stored: on SQLite the first write takes the
    # write lock, which every other writer (the bot's updates) then waits for until commit.
    counted = [count_round(session, round_id, codebook) for round_id in round_ids]
    session.add_all(Release(round_id=f.round_id, figures=f.to_json()) for f in counted)
    session.flush()
    return len(counted)


def republish(
    session: Session, round_ids: Iterable[int], codebook: Codebook, *, commit_pages: bool = False
) -> list[int]:
    """Count again and replace the published figures of these rounds (after the codebook or
    the coding changed), except for a round that lost anyone since it was published: the new
    figures set against the old would give that person away, so it keeps its figures.
    Returns the rounds that kept their figures. `commit_pages` as for code_uncoded_answers."""
    kept: list[int] = []
    ids = list(round_ids)
    code_uncoded_answers(session, ids, codebook, commit_pages=commit_pages)
    session.flush()
    releases = list(session.scalars(select(Release).where(Release.round_id.in_(ids))))
    # All counted before any is replaced (see publish: the first write takes the lock).
    counted = [count_round(session, release.round_id, codebook) for release in releases]
    for release, figures in zip(releases, counted, strict=True):
        before = release.figures
        if (figures.invited, figures.responded) != (before["invited"], before["responded"]):
            kept.append(release.round_id)
            continue
        # Quotes erased since stay erased: only invitations still here can be quoted anyway.
        release.figures = figures.to_json()
    session.flush()
    return kept


def released_figures(
    session: Session, round_ids: Iterable[int], *, missing_ok: bool = False
) -> dict[int, RoundFigures]:
    """The published figures of each round, by round id; a round not published (not closed)
    is an error for people, unless `missing_ok` (then it is left out)."""
    ids = list(round_ids)
    found = {
        release.round_id: RoundFigures.from_json(release.figures)
        for release in session.scalars(select(Release).where(Release.round_id.in_(ids)))
    }
    missing = [i for i in ids if i not in found]
    if missing and not missing_ok:
        raise DigestError(
            _("Round {round} has not closed yet: its digest is published when it closes.").format(
                round=missing[0]
            )
        )
    return found


def erase_quotes(session: Session, invitation_ids: Iterable[int]) -> list[int]:
    """Take every quote of these invitations out of the stored releases (an erasure); the
    figures stay as published. Returns the rounds whose release changed."""
    gone = set(invitation_ids)
    if not gone:
        return []
    changed: list[int] = []
    for release in session.scalars(select(Release)):
        quotes = release.figures.get("quotes", [])
        kept = [q for q in quotes if q["invitation_id"] not in gone]
        if len(kept) != len(quotes):
            release.figures = {**release.figures, "quotes": kept}
            changed.append(release.round_id)
    session.flush()
    return changed


def quotes_of(session: Session, invitation_ids: Iterable[int]) -> list[tuple[int, QuoteCandidate]]:
    """(round, quote) of every stored quote of these invitations (for /mydata)."""
    mine = set(invitation_ids)
    if not mine:
        return []
    return [
        (release.round_id, quote)
        for release in session.scalars(select(Release).order_by(Release.round_id))
        for quote in RoundFigures.from_json(release.figures).quotes
        if quote.invitation_id in mine
    ]
