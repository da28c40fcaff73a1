"""Barriers and success factors, as true counts: people naming each code in a round, overall and
per organisation (each person counted once per code however many answers carry it). An
answer's codes are those that count (bot.coding.stored)."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.coding.stored import effective_codes
from bot.kernel.i18n import N_
from storage.models import Invitation

# A code family's heading, and its short name beside a barrier (translated where said).
FAMILY_LABELS = {
    "external": N_("External: how public bodies work with the sector"),
    "internal": N_("Internal: the group's own means"),
    "success": N_("What helps (success factors)"),
}
FAMILY_NAMES = {"external": N_("external"), "internal": N_("internal"), "success": N_("success")}


def code_counts_by_organisation(
    session: Session, round_id: int
) -> tuple[dict[str, int], dict[int, dict[str, int]]]:
    """People naming each code in the round, and the same per organisation, in one GROUP BY
    (organisations partition the invitations, so the round's count is the sum)."""
    eff = effective_codes([round_id])
    overall: dict[str, int] = defaultdict(int)
    per_org: dict[int, dict[str, int]] = defaultdict(dict)
    for org, code, n in session.execute(
        select(
            Invitation.organisation_id, eff.c.code, func.count(func.distinct(eff.c.invitation_id))
        )
        .join(Invitation, Invitation.id == eff.c.invitation_id)
        .group_by(Invitation.organisation_id, eff.c.code)
    ):
        overall[code] += int(n)
        if org is not None:
            per_org[org][code] = int(n)
    return dict(overall), dict(per_org)
