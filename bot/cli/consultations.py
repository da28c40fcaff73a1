"""`consultbot consultations ...`: check, store, list and export consultation sets, written as
TOML files or XLSForm spreadsheets (.xlsx)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bot.cli.common import EXIT_FAILED, EXIT_USAGE, UserError, state
from bot.consultations.catalogue import (
    consultation_by_slug,
    current_consultations,
    import_consultation,
)
from bot.consultations.files import consultation_files, describe_flow, load_files
from bot.consultations.problems import ConsultationError
from bot.consultations.sets import ConsultationSet
from bot.consultations.xlsform_write import write_xlsform
from storage.db import session_scope
from storage.models import Consultation

consultations_app = typer.Typer(
    help="Consultation sets (TOML files or XLSForm spreadsheets).", no_args_is_help=True
)

Paths = Annotated[
    list[Path] | None,
    typer.Argument(help="Files (.toml, .xlsx) or folders (default: the configured folder)."),
]


def _files(paths: list[Path] | None, default: Path) -> list[Path]:
    found: list[Path] = []
    for path in paths or [default]:
        if path.is_dir():
            found.extend(consultation_files(path))
        elif path.exists():
            found.append(path)
        else:
            raise UserError(f"{path}: no such file or folder")
    return found


def _load_all(files: list[Path]) -> list[tuple[Path, ConsultationSet]]:
    """Every file loaded, or every problem of every file on stderr and exit 2."""
    try:
        return load_files(files)
    except ConsultationError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(EXIT_USAGE) from None


@consultations_app.command("validate")
def consultations_validate(ctx: typer.Context, paths: Paths = None) -> None:
    """Check consultation files and print each set's questions and branches. Errors name
    file:line: field (TOML) or file: sheet row, column (XLSForm); exit 2 if any is invalid."""
    files = _files(paths, state(ctx).settings.paths.consultations)
    for path, spec in _load_all(files):
        typer.echo(f"ok  {path}: {spec.id} v{spec.version}, {len(spec.questions)} questions")
        for line in describe_flow(spec):
            typer.echo(f"    {line}")


@consultations_app.command("import")
def consultations_import(ctx: typer.Context, paths: Paths = None) -> None:
    """Validate, then store each set as a versioned row (unchanged files are left alone).
    Nothing is stored unless every file is valid."""
    files = _files(paths, state(ctx).settings.paths.consultations)
    loaded = _load_all(files)
    with session_scope(state(ctx).ready_sessions()) as session:
        for path, spec in loaded:
            row, created = import_consultation(session, spec, path)
            typer.echo(
                f"{'imported' if created else 'unchanged'}  {row.slug} (id {row.id}) from {path}"
            )


@consultations_app.command("list")
def consultations_list(ctx: typer.Context) -> None:
    """The sets in the database (newest version of each)."""
    with session_scope(state(ctx).ready_sessions()) as session:
        rows = current_consultations(session)
        if not rows:
            typer.echo("no consultation sets yet: consultbot consultations import")
        for c in rows:
            typer.echo(
                f"{c.id:>4}  {c.slug:<32} v{c.version}  {len(c.questions)} questions  {c.title}"
            )


@consultations_app.command("export")
def consultations_export(
    ctx: typer.Context,
    consultation: Annotated[
        str, typer.Argument(help="A set id (its newest version) or a numeric consultation id.")
    ],
    out: Annotated[Path, typer.Option("--out", help="The .xlsx file to write.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out if it exists.")] = False,
) -> None:
    """Write a stored set as an XLSForm spreadsheet that imports back to the same set."""
    if out.suffix.lower() != ".xlsx":
        raise UserError(f"{out}: an XLSForm is written as .xlsx")
    if out.exists() and not force:
        raise UserError(f"{out} exists: add --force to overwrite it")
    with session_scope(state(ctx).ready_sessions()) as session:
        row = (
            session.get(Consultation, int(consultation))
            if consultation.isdigit()
            else consultation_by_slug(session, consultation)
        )
        if row is None:
            raise UserError(
                f"no consultation {consultation!r}: see consultbot consultations list", EXIT_FAILED
            )
        spec = ConsultationSet.model_validate(row.spec)
        slug, version = row.slug, row.version
    try:
        write_xlsform(spec, out)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc}", EXIT_FAILED) from None
    typer.echo(f"wrote {out}: {slug} v{version}, {len(spec.questions)} questions")
