"""What running a round needs besides a session and the time, shared by the bot and the CLI,
and the error a coordinator can fix."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from bot.digests.fanout import enqueue_round_digest
from bot.kernel.context import AppContext
from bot.kernel.render import Renderer
from storage.models import Round


class RoundError(Exception):
    """Something the coordinator can fix (bad cron, unknown round, round already closed):
    `reason` and `details` for templates/messages/coordinator/round_error.html (say)."""

    def __init__(self, reason: str, **details: Any) -> None:
        super().__init__(reason, details)
        self.reason = reason
        self.details = details

    def say(self, renderer: Renderer) -> str:
        return renderer.render(
            "messages/coordinator/round_error.html", reason=self.reason, **self.details
        )


@dataclass
class Services:
    """What running an event needs besides the session and the time."""

    renderer: Renderer
    partnership: str
    k: int = 5  # the privacy threshold (settings.privacy.k)
    max_rounds_per_period: int = 2
    period_days: int = 30
    # Called in the closing transaction, e.g. to queue the digest to leads and coordinators.
    on_closed: Callable[[Session, Round], Any] | None = None


def round_services(ctx: AppContext) -> Services:
    """Templates, limits, and the digest queued when a round closes."""
    settings = ctx.settings
    return Services(
        renderer=ctx.renderer,
        partnership=settings.partnership.name,
        k=settings.privacy.k,
        max_rounds_per_period=settings.rounds.max_rounds_per_period,
        period_days=settings.rounds.period_days,
        on_closed=lambda session, round_: enqueue_round_digest(session, ctx, round_.id),
    )
