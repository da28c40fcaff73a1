"""`consultbot answers import`: answers gathered on paper, at an event or in KoboToolbox/ODK
with the round's form, into an open round (bot.participation.imported)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import EXIT_FAILED, UserError, state
from bot.coding.codebook import CodebookError
from bot.coding.stored import code_uncoded_answers, codebook_for
from bot.kernel.context import AppContext
from bot.participation.imported import ImportRefused, SheetProblems, import_answers
from bot.participation.sheets import SheetError, read_sheet
from storage.db import session_scope

answers_app = typer.Typer(
    help="Answers gathered elsewhere (on paper, at an event, in KoboToolbox or ODK).",
    no_args_is_help=True,
)


@answers_app.command("import")
def answers_import(
    ctx: typer.Context,
    file: Annotated[
        Path,
        typer.Argument(
            help="An .xlsx or .csv export: a header row of the questions' names, then one row "
            "per submission, as KoboToolbox and ODK export it."
        ),
    ],
    round_id: Annotated[int, typer.Option("--round", help="The open round the answers belong to.")],
    channel: Annotated[
        str | None,
        typer.Option(
            help="Where they were gathered: paper, event, kobo, odk, or another word (default: "
            "odk or kobo when the file carries their instance ids, else paper). The digest "
            "counts answers by channel."
        ),
    ] = None,
) -> None:
    """Check every cell of FILE against the round's form, then store its submissions as
    anonymous respondents (nothing is stored unless every cell is right; a submission already
    imported is not stored again) and code their free text. Problems go to stderr, each with
    its row and column, and the exit code is 2."""
    try:
        sheet = read_sheet(file)
    except SheetError as exc:
        raise UserError(str(exc)) from None
    settings = state(ctx).settings
    app = AppContext(settings=settings, sessions=state(ctx).ready_sessions())
    try:  # before anything is stored: the texts are coded once it is
        codebook = codebook_for(settings, app.loaded)
    except CodebookError as exc:
        raise UserError(str(exc)) from None
    with session_scope(app.sessions) as session:
        try:
            result = import_answers(
                session,
                round_id,
                sheet,
                channel=channel,
                now=app.clock.now(),
                text_limit=settings.privacy.max_text_length,
            )
        except ImportRefused as exc:
            raise UserError(str(exc), EXIT_FAILED) from None
        except SheetProblems as exc:
            for problem in exc.problems:
                typer.echo(problem, err=True)
            raise UserError(
                f"nothing stored: {len(exc.problems)} problem"
                f"{'s' if len(exc.problems) != 1 else ''} in {sheet.name}"
            ) from None
        session.commit()
        # Committed first, then coded a page at a time: beside a running bot on SQLite a
        # write holds the one write lock until it commits (see consultbot digest). A run cut
        # short here leaves texts for the digest's own catch-up, or for running this again.
        coded = code_uncoded_answers(session, [round_id], codebook, commit_pages=True)
    already = f"; {result.already} already imported were skipped" if result.already else ""
    typer.echo(
        f"{result.stored} submission{'s' if result.stored != 1 else ''} stored for round "
        f"{round_id} (channel: {result.channel}){already}; {coded} free-text answers coded"
    )
