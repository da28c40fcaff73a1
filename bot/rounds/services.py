"""Wiring of the round lifecycle to the rest of the application, shared by the bot and the CLI."""

from __future__ import annotations

from bot.digests.fanout import enqueue_round_digest
from bot.kernel.context import AppContext
from bot.rounds import lifecycle as rounds


def round_services(ctx: AppContext) -> rounds.Services:
    """What running a round needs: templates, limits, and the digest queued when it closes."""
    settings = ctx.settings
    return rounds.Services(
        renderer=ctx.renderer,
        partnership=settings.partnership.name,
        max_rounds_per_period=settings.rounds.max_rounds_per_period,
        period_days=settings.rounds.period_days,
        on_closed=lambda session, round_: enqueue_round_digest(session, ctx, round_.id),
    )
