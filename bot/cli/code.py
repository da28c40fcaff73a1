"""`consultbot code`: the barrier coder as a filter, so a partnership can code free text from any
source (e-mails, meeting notes, another survey) against its own codebook.

JSON lines in, JSON lines out, in the same order: ``{"id": ..., "text": ...}`` becomes
``{"id": ..., "codes": [...], "evidence": [...], "doubtful": ...}``, where ``evidence[i]`` is
the words of the text that ``codes[i]`` rests on (as stored with a chat answer's codes). The
coder and codebook are the ones every answer is coded with (bot.coding.coder,
bot.coding.stored.codebook_for).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

import click
import typer

from bot.cli.common import EXIT_FAILED, UserError, state
from bot.coding.codebook import Codebook, CodebookError
from bot.coding.coder import code_texts
from bot.coding.stored import NO_CODE, auto_codes, codebook_for


def code(
    ctx: typer.Context,
    batch: Annotated[
        int,
        typer.Option(
            "--batch",
            min=1,
            max=10_000,
            help="Texts coded (and written out) at a time; smaller shows progress sooner.",
        ),
    ] = 500,
    language: Annotated[
        str | None,
        typer.Option(
            "--language",
            help="The texts' language (cy, en...): coded with the codebook's cues in it. "
            "Default: the codebook's own language.",
        ),
    ] = None,
) -> None:
    """Code free text from any source against the codebook (JSON lines in and out).

    Reads {"id": ..., "text": ...} lines on stdin and writes {"id": ..., "codes": [...],
    "evidence": [...], "doubtful": ...} lines on stdout, in the same order: each evidence is
    the words of the text its code (in the same place) rests on. A line that is not such an
    object is named on stderr by its number and skipped (exit code 1 at the end); empty lines
    are ignored. --language codes texts in a further language of the codebook, by its rules
    (the text model knows only the codebook's own)."""
    try:
        full = codebook_for(state(ctx).settings)
    except CodebookError as exc:
        raise UserError(str(exc)) from None
    codebook = full.in_language(language or full.language)
    if codebook is None:
        raise UserError(
            f"the codebook has no cues in {language!r} (it has: {', '.join(full.languages)}): "
            "such texts wait for a coordinator in /review"
        )
    out = click.get_text_stream("stdout")
    bad = 0
    pending: list[tuple[Any, str]] = []
    for number, item in _items(click.get_binary_stream("stdin")):
        if isinstance(item, str):
            typer.echo(f"line {number}: {item}", err=True)
            bad += 1
            continue
        pending.append(item)
        if len(pending) == batch:
            _write(out, pending, codebook)
            pending = []
    _write(out, pending, codebook)
    if bad:
        typer.echo(f"consultbot: {bad} line{'s' if bad != 1 else ''} skipped", err=True)
        raise typer.Exit(EXIT_FAILED)


def _items(stream: Any) -> Iterator[tuple[int, tuple[Any, str] | str]]:
    """(line number, (id, text)) per line to code, or (line number, what is wrong with it)."""
    for number, raw in enumerate(stream, 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            yield number, "not UTF-8 text"
            continue
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"not JSON ({exc.msg}, at character {exc.colno})"
            continue
        if not isinstance(item, dict):
            yield number, 'not a JSON object like {"id": 1, "text": "..."}'
        elif not isinstance(item.get("id"), str | int | float) or isinstance(item["id"], bool):
            yield number, '"id" missing, or not a string or a number'
        elif not isinstance(item.get("text"), str):
            yield number, '"text" missing, or not a string'
        else:
            yield number, (item["id"], item["text"])


def _write(out: Any, items: list[tuple[Any, str]], codebook: Codebook) -> None:
    """Code `items` in one batch and write their lines, flushed: a long pipe shows progress."""
    if not items:
        return
    for (ident, _), coding in zip(items, code_texts([t for _, t in items], codebook), strict=True):
        rows = [(c, fields) for c, fields in auto_codes(coding) if c != NO_CODE]
        line = {
            "id": ident,
            "codes": [c for c, _ in rows],
            "evidence": [fields["evidence"] for _, fields in rows],
            "doubtful": coding.doubtful,
        }
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
    out.flush()
