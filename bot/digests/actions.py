"""The actions taken on a round's findings, as the digest lists them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.coding.codebook import Codebook
from bot.digests.digest import ActionItem, CodeLabel, Text
from storage.models import Action, ActionStatus


def list_actions(
    session: Session,
    round_ids: Iterable[int],
    *,
    codebook: Codebook | None = None,
    today: date,
) -> list[ActionItem]:
    """The rounds' actions in the order they were recorded; overdue means open past `today`."""
    items = []
    for a in session.scalars(
        select(Action).where(Action.round_id.in_(list(round_ids))).order_by(Action.id)
    ):
        label: Text | None = None
        if a.barrier_code and codebook is not None and a.barrier_code in codebook:
            label = CodeLabel(codebook, a.barrier_code)
        items.append(
            ActionItem(
                id=a.id,
                round_id=a.round_id,
                barrier_code=a.barrier_code,
                barrier_label=label,
                finding=a.finding,
                action=a.action,
                owner=a.owner,
                due_on=a.due_on,
                status=a.status.value,
                overdue=a.status == ActionStatus.OPEN and a.due_on is not None and a.due_on < today,
                published=a.published_at is not None,
            )
        )
    return items
