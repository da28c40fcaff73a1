"""`consultbot invites create|list|revoke`: joining links from the command line.

The same services as the coordinators' /invite in chat (bot/invites.py); a link made here is
redeemed in chat with `/start <code>` like any other.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from bot.cli.common import EXIT_FAILED, UserError, state
from bot.participation.invites import create_invite, deep_link, list_invites, revoke_invite
from storage.db import session_scope
from storage.models import Role

invites_app = typer.Typer(
    help="Joining links for an organisation or a group of service users.", no_args_is_help=True
)


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    if moment.tzinfo is None:  # SQLite hands datetimes back naive; they are stored in UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


@invites_app.command("create")
def invites_create(
    ctx: typer.Context,
    org: Annotated[
        str | None, typer.Option("--org", help="Organisation name (created if new).")
    ] = None,
    group: Annotated[
        str | None, typer.Option("--group", help="A group of service users, by label.")
    ] = None,
    role: Annotated[
        Role, typer.Option("--role", help="member or lead (lead: a voluntary sector lead).")
    ] = Role.MEMBER,
    days: Annotated[
        int | None, typer.Option("--days", help="Expires after this many days.", min=1)
    ] = None,
    uses: Annotated[
        int | None, typer.Option("--uses", help="At most this many people may join.", min=1)
    ] = None,
    bot_username: Annotated[
        str | None,
        typer.Option(
            "--bot-username",
            envvar="CONSULTBOT_BOT_USERNAME",
            help="The bot's @username, to print the t.me link.",
        ),
    ] = None,
) -> None:
    """Create an invite and print its link (https://t.me/<bot>?start=<code>)."""
    if bool(org) == bool(group):
        raise UserError("say who the invite is for: --org NAME or --group LABEL (one of them)")
    if role == Role.COORDINATOR:
        raise UserError("an invite makes a member or a lead; coordinators: consultbot roles grant")
    with session_scope(state(ctx).ready_sessions()) as session:
        try:
            invite = create_invite(
                session,
                now=datetime.now(UTC),
                organisation=org,
                group=group,
                days=days,
                max_uses=uses,
                role=role,
            )
        except ValueError as exc:
            raise UserError(str(exc)) from None
        code = invite.code
    target = f"organisation {org!r}" if org else f"group {group!r}"
    typer.echo(f"invite {code} for {target}, role {role.value}")
    if bot_username:
        typer.echo(deep_link(bot_username, code))
    else:
        typer.echo(
            "no link printed: pass --bot-username NAME (the bot's @username) to get "
            f"https://t.me/<bot>?start={code}",
            err=True,
        )


@invites_app.command("list")
def invites_list(ctx: typer.Context) -> None:
    """List invites, newest first: code, who for, uses, expiry, revoked."""
    with session_scope(state(ctx).ready_sessions()) as session:
        rows = [
            (
                invite.code,
                (
                    f"org: {invite.organisation.name}"
                    if invite.organisation is not None
                    else f"group: {invite.group_label or '-'}"
                ),
                invite.role.value,
                f"{invite.uses}/{invite.max_uses if invite.max_uses is not None else '-'}",
                _when(invite.expires_at),
                _when(invite.revoked_at) if invite.revoked_at is not None else "no",
            )
            for invite in list_invites(session)
        ]
    if not rows:
        typer.echo("no invites yet: consultbot invites create --org NAME")
        return
    header = ("code", "for", "role", "uses", "expires", "revoked")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo(
            "  ".join(
                str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)
            ).rstrip()
        )


@invites_app.command("revoke")
def invites_revoke(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(help="The invite's code, as `invites list` shows it.")],
) -> None:
    """Revoke an invite: its link stops working; people who joined stay.

    A code may begin with "-": write `consultbot invites revoke -- CODE` then.
    """
    with session_scope(state(ctx).ready_sessions()) as session:
        revoked = revoke_invite(session, code, now=datetime.now(UTC))
    if not revoked:
        raise UserError(f"no active invite with code {code!r}", EXIT_FAILED)
    typer.echo(f"invite {code} revoked")
