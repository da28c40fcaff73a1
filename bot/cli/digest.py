"""`consultbot digest`: write a round's (or a quarter's) digest to a file."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import EXIT_FAILED, UserError, state
from bot.coding.stored import codebook_for, forget_auto_codes
from bot.digests.compile import compile_digest, prepare
from bot.digests.digest import DigestError
from bot.digests.published import republish
from bot.digests.render import write_digest
from bot.digests.scopes import quarter_scope, round_scope
from bot.kernel.context import AppContext
from storage.db import session_scope


class Format(StrEnum):
    html = "html"
    md = "md"
    csv = "csv"
    tg = "tg"


def digest(
    ctx: typer.Context,
    round_id: Annotated[
        int | None, typer.Option("--round", help="The round number (see `consultbot rounds`).")
    ] = None,
    period: Annotated[
        str | None, typer.Option("--period", help="'quarter': rounds closed this quarter.")
    ] = None,
    fmt: Annotated[Format, typer.Option("--format", help="html, md, csv or tg.")] = Format.html,
    out: Annotated[Path, typer.Option("--out", help="File to write.")] = Path("digest.html"),
    recode: Annotated[
        bool,
        typer.Option(
            "--recode",
            help="Code the free texts again and publish the rounds' figures anew (after the "
            "codebook changed); a round someone has left since keeps its figures.",
        ),
    ] = False,
) -> None:
    """Write the coordinators' digest (everything at or above k) of a round or a quarter."""
    if (round_id is None) == (period is None):
        raise UserError("give either --round N or --period quarter")
    if period is not None and period != "quarter":
        raise UserError("--period takes 'quarter'")
    settings = state(ctx).settings
    app = AppContext(settings=settings, sessions=state(ctx).ready_sessions())
    with session_scope(app.sessions) as session:
        try:
            scope = (
                round_scope(session, round_id)
                if round_id is not None
                else quarter_scope(session, settings, app.clock.now())
            )
        except DigestError as exc:
            raise UserError(str(exc), EXIT_FAILED) from None
        codebook = codebook_for(settings, app.loaded)
        # Beside a running bot on SQLite, a write here holds the one write lock until it is
        # committed, and every update the bot takes waits for it: the coding is committed a
        # page at a time, each step's writes as soon as they are made, and the digest is
        # compiled and written after the last commit. A run cut short (--recode included)
        # is finished by running it again.
        if recode:
            forget_auto_codes(session, [*scope.round_ids, *scope.previous])
            session.commit()
        prepare(session, scope, codebook, commit_pages=True)
        session.commit()
        if recode:
            ids = [*scope.round_ids, *scope.previous]
            for round_id in republish(session, ids, codebook, commit_pages=True):
                typer.echo(
                    f"round {round_id} keeps the figures it was published with: someone "
                    "has erased their data since, and new figures would give them away",
                    err=True,
                )
            session.commit()
        try:
            result = compile_digest(
                session, settings, scope, codebook=codebook, now=app.clock.now()
            )
        except DigestError as exc:  # e.g. a round still open: nothing published yet
            raise UserError(str(exc), EXIT_FAILED) from None
        write_digest(
            result,
            app.renderer,
            fmt.value,
            out,
            session=session,
            settings=settings,
            scope=scope,
            codebook=codebook,
        )
    typer.echo(f"wrote {out} ({fmt.value}, {scope.label})")
