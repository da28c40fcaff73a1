"""What a digest covers: one round (compared with the previous round of the same consultation
set) or a calendar quarter in the partnership's time zone (compared with the quarter before)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.digests.digest import DigestError, InLanguages, Month, Said, Scope, said
from bot.kernel.config import Settings
from bot.kernel.i18n import N_, _
from storage.models import Consultation, Round, RoundStatus


def round_scope(session: Session, round_id: int) -> Scope:
    round_ = session.get(Round, round_id)
    if round_ is None:
        raise DigestError(_("There is no round {round}.").format(round=round_id))
    consultation = round_.consultation
    previous = previous_round(session, round_)
    # The set's own translations of its title, so each reader reads it in theirs.
    translations = {
        language: texts["title"]
        for language, texts in ((consultation.spec or {}).get("translations") or {}).items()
        if texts.get("title")
    }
    title = InLanguages.of(consultation.title, translations)
    return Scope(
        round_ids=(round_.id,),
        label=said(N_("Round {round}: {title}"), round=round_.id, title=title),
        start=round_.opened_at or round_.opens_at,
        end=round_.closed_at or round_.closes_at,
        previous=(previous.id,) if previous else (),
        previous_label=said(N_("round {round}"), round=previous.id) if previous else None,
    )


def previous_round(session: Session, round_: Round) -> Round | None:
    """The previous closed round of the same consultation set (any version of it)."""
    slug = round_.consultation.slug
    moment = round_.closed_at or round_.closes_at
    return session.scalar(
        select(Round)
        .join(Consultation, Consultation.id == Round.consultation_id)
        .where(
            Consultation.slug == slug,
            Round.status == RoundStatus.CLOSED,
            Round.id != round_.id,
            func.coalesce(Round.closed_at, Round.closes_at) < moment,
        )
        .order_by(func.coalesce(Round.closed_at, Round.closes_at).desc(), Round.id.desc())
        .limit(1)
    )


def quarter_bounds(moment: datetime, zone: ZoneInfo, offset: int = 0) -> tuple[datetime, datetime]:
    """The calendar quarter holding `moment` in the partnership's zone (offset -1: the one
    before), as UTC instants [start, end)."""
    local = moment.astimezone(zone)
    index = (local.year * 4 + (local.month - 1) // 3) + offset
    year, q = divmod(index, 4)
    start = datetime(year, q * 3 + 1, 1, tzinfo=zone)
    ny, nq = divmod(index + 1, 4)
    end = datetime(ny, nq * 3 + 1, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def _closed_rounds_between(session: Session, start: datetime, end: datetime) -> list[int]:
    closed = func.coalesce(Round.closed_at, Round.closes_at)
    return list(
        session.scalars(
            select(Round.id)
            .where(Round.status == RoundStatus.CLOSED, closed >= start, closed < end)
            .order_by(Round.id)
        )
    )


def quarter_scope(session: Session, settings: Settings, moment: datetime) -> Scope:
    """Rounds that closed in the quarter holding `moment` (partnership time zone); if none has
    closed yet this quarter, the quarter before."""
    zone = settings.zone
    for offset in (0, -1):
        start, end = quarter_bounds(moment, zone, offset)
        ids = _closed_rounds_between(session, start, end)
        if ids:
            p_start, p_end = quarter_bounds(moment, zone, offset - 1)
            return Scope(
                round_ids=tuple(ids),
                label=_quarter_label(start, end, zone),
                start=start,
                end=end,
                previous=tuple(_closed_rounds_between(session, p_start, p_end)),
                previous_label=said(N_("the previous quarter")),
                period=True,
            )
    raise DigestError(_("No round has closed this quarter or last quarter."))


def _quarter_label(start: datetime, end: datetime, zone: ZoneInfo) -> Said:
    first = start.astimezone(zone).date()
    last = (end - timedelta(seconds=1)).astimezone(zone).date()
    return said(N_("{first} to {last}"), first=Month(first), last=Month(last, with_year=True))
