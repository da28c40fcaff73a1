"""`consultbot rounds ...`: the same round services the chat
uses, for admins and scripts. The running bot's job and sender do the opening and sending."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Annotated

import typer

from bot.cli.common import EXIT_FAILED, UserError, state
from bot.consultations.catalogue import consultation_by_slug
from bot.kernel.context import AppContext
from bot.kernel.render import Renderer
from bot.rounds.audiences import (
    audience_mismatch,
    describe_audience,
    describe_mismatch,
    intended_audience,
    preview_audience,
)
from bot.rounds.closing import cancel_round, close_round, stop_series
from bot.rounds.planning import create_schedule, schedule_once
from bot.rounds.reminders import remind_round
from bot.rounds.services import RoundError, round_services
from bot.rounds.watching import get_round, list_rounds, round_stats
from storage.db import session_scope

rounds_app = typer.Typer(
    help="Consultation rounds: schedule, watch, remind, close.", no_args_is_help=True
)


def _renderer(ctx: typer.Context) -> Renderer:
    """The bot's templates, for the words a round's audience or error is said in."""
    settings = state(ctx).settings
    return Renderer(settings.paths.templates, zone=settings.zone)


DURATION = re.compile(r"^(\d+)\s*([dhm])$")


def parse_duration(value: str) -> timedelta:
    match = DURATION.match(value.strip().lower())
    if not match:
        raise UserError(f"not a duration {value!r}: use e.g. 10d, 12h or 30m")
    n, unit = int(match[1]), match[2]
    return {"d": timedelta(days=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[unit]


def _segment_filters(where: list[str]) -> dict[str, str]:
    filters = {}
    for item in where:
        key, _, value = item.partition("=")
        if not value:
            raise UserError(f"--where {item!r}: use key=value, e.g. area=north")
        filters[key.strip()] = value.strip()
    return filters


def _opening(at: str, zone: tzinfo) -> datetime:
    try:
        return datetime.strptime(at, "%Y-%m-%d %H:%M").replace(tzinfo=zone)
    except ValueError:
        raise UserError(f"--at {at!r}: use 'YYYY-MM-DD HH:MM'") from None


@rounds_app.command("schedule")
def rounds_schedule(
    ctx: typer.Context,
    consultation: Annotated[str, typer.Option("--consultation", help="Set id (slug).")],
    audience: Annotated[
        str | None,
        typer.Option(
            help="everyone, organisations or service_users (default: who the set is written for)."
        ),
    ] = None,
    where: Annotated[
        list[str] | None, typer.Option(help="Segment filter, e.g. area=north (repeatable).")
    ] = None,
    at: Annotated[
        str | None, typer.Option(help="Open once at 'YYYY-MM-DD HH:MM' (partnership time).")
    ] = None,
    now: Annotated[bool, typer.Option("--now", help="Open at the next tick.")] = False,
    cron: Annotated[
        str | None, typer.Option(help="Recurring, e.g. '0 9 1-7 * mon' (fields ANDed).")
    ] = None,
    open_for: Annotated[str, typer.Option(help="How long it stays open, e.g. 10d.")] = "10d",
    remind: Annotated[
        list[str] | None, typer.Option(help="Remind before closing, e.g. 2d (repeatable).")
    ] = None,
    yes: Annotated[
        bool,
        typer.Option("--yes", help="Schedule even for an audience the set is not written for."),
    ] = False,
) -> None:
    """Plan a round (once or recurring). Exactly one of --now, --at, --cron."""
    if sum(x is not None and x is not False for x in (at, cron, now or None)) != 1:
        raise UserError("give exactly one of --now, --at or --cron")
    settings = state(ctx).settings
    clock_now = datetime.now(UTC)
    with session_scope(state(ctx).ready_sessions()) as session:
        row = consultation_by_slug(session, consultation)
        if row is None:
            raise UserError(f"no consultation {consultation!r}: see consultbot consultations list")
        spec = {"who": audience or intended_audience(row), "where": _segment_filters(where or [])}
        try:
            intended = audience_mismatch(row, spec)
            if intended:
                # Said before anything is written, as the chat's /schedule says it before
                # Confirm; --yes is the confirmation.
                warning = describe_mismatch(_renderer(ctx), intended, spec)
                if not yes:
                    raise UserError(
                        f"{warning} Nothing scheduled: add --yes to schedule it anyway."
                    )
                typer.echo(warning, err=True)
            reminders = [parse_duration(r) for r in remind or []]
            if cron:
                schedule, round_ = create_schedule(
                    session,
                    row,
                    audience=spec,
                    cron=cron,
                    zone=settings.zone,
                    open_for=parse_duration(open_for),
                    remind_before=reminders,
                    now=clock_now,
                )
                typer.echo(
                    f"schedule {schedule.id}: first round {round_.id} opens "
                    f"{round_.opens_at.astimezone(settings.zone):%Y-%m-%d %H:%M %Z}"
                )
            else:
                opens_at = _opening(at, settings.zone) if at else clock_now
                round_ = schedule_once(
                    session,
                    row,
                    audience=spec,
                    opens_at=opens_at,
                    open_for=parse_duration(open_for),
                    remind_before=reminders,
                )
                typer.echo(
                    f"round {round_.id} opens "
                    f"{opens_at.astimezone(settings.zone):%Y-%m-%d %H:%M %Z}"
                )
            preview = preview_audience(
                session,
                spec,
                now=clock_now,
                cap=settings.rounds.max_rounds_per_period,
                period_days=settings.rounds.period_days,
            )
            typer.echo(
                f"audience: {describe_audience(_renderer(ctx), spec)}, {preview.size} people now"
                + (
                    f"; left out (cap): {', '.join(preview.left_out_orgs)}"
                    if preview.left_out_orgs
                    else ""
                )
            )
        except RoundError as exc:
            raise UserError(exc.say(_renderer(ctx))) from None


@rounds_app.command("list")
def rounds_list(ctx: typer.Context, limit: int = 20) -> None:
    """Newest rounds with status and response rate."""
    settings = state(ctx).settings
    zone, k = settings.zone, settings.privacy.k
    with session_scope(state(ctx).ready_sessions()) as session:
        for r, invited, completed in list_rounds(session, k, limit=limit):
            if not invited:
                rate = "-"
            elif completed is None:
                rate = f"<{k}/{invited}"
            else:
                rate = f"{completed}/{invited} ({completed / invited:.0%})"
            typer.echo(
                f"{r.id:>5}  {r.status.value:<9} {r.opens_at.astimezone(zone):%Y-%m-%d %H:%M}  "
                f"{rate:<16} {r.consultation.slug}"
            )


@rounds_app.command("show")
def rounds_show(ctx: typer.Context, round_id: int) -> None:
    """Invited, delivered and unreachable; answered and completed, overall and by segment, with
    figures about people under k held back as in a digest."""
    k = state(ctx).settings.privacy.k
    with session_scope(state(ctx).ready_sessions()) as session:
        try:
            s = round_stats(session, get_round(session, round_id), k)
        except RoundError as exc:
            raise UserError(exc.say(_renderer(ctx)), EXIT_FAILED) from None
        p = s.participation

        def shown(value: int | None, small: bool = True) -> str:
            return str(value) if value is not None else (f"<{k}" if small else "held back")

        imported = f" ({s.imported} imported)" if s.imported else ""
        typer.echo(
            f"round {round_id} {s.round.status.value}: invited {s.invited}{imported}, "
            f"delivered {s.delivered}, unreachable {s.unreachable}, "
            f"answered {shown(p.responded)}, completed {shown(p.completed)}"
        )
        for dim in p.dimensions:
            for row in dim.rows:
                typer.echo(
                    f"  {dim.key}={row.label}: {shown(row.responded, row.small)} of "
                    f"{row.invited} answered, {shown(row.completed, row.small)} completed"
                )


def _act(ctx: typer.Context, round_id: int, action: str) -> None:
    settings = state(ctx).settings
    now = datetime.now(UTC)
    sessions = state(ctx).ready_sessions()
    services = round_services(AppContext(settings=settings, sessions=sessions))
    with session_scope(sessions) as session:
        try:
            round_ = get_round(session, round_id)
            if action == "remind":
                n = remind_round(
                    session, round_, now=now, services=services, key=f"m{now:%Y%m%d%H%M}"
                )
                typer.echo(f"round {round_id}: {n} reminders queued")
            elif action == "close":
                close_round(session, round_, now=now, on_closed=services.on_closed)
                typer.echo(f"round {round_id} closed; the digest is queued to its leads")
            else:
                cancel_round(session, round_, now=now)
                typer.echo(f"round {round_id} cancelled")
                if action == "cancel-series":
                    withdrawn = stop_series(session, round_, now=now)
                    typer.echo(f"its series is stopped; {withdrawn} planned rounds withdrawn")
        except RoundError as exc:
            raise UserError(exc.say(services.renderer), EXIT_FAILED) from None


@rounds_app.command("remind")
def rounds_remind(ctx: typer.Context, round_id: int) -> None:
    """Remind those who have not finished (the running bot sends)."""
    _act(ctx, round_id, "remind")


@rounds_app.command("close")
def rounds_close(ctx: typer.Context, round_id: int) -> None:
    """Close a round now."""
    _act(ctx, round_id, "close")


@rounds_app.command("cancel")
def rounds_cancel(
    ctx: typer.Context,
    round_id: int,
    series: Annotated[
        bool, typer.Option("--series", help="Also stop the recurring series it belongs to.")
    ] = False,
) -> None:
    """Cancel a round; unsent invitations are withdrawn."""
    _act(ctx, round_id, "cancel-series" if series else "cancel")
