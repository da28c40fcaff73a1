"""Rendering: escaping, the 4096 split, CSV formula cells, PII removal and k in every format."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from bot.coding.stored import codebook_for
from bot.digests.answers_csv import safe_cell, write_csv
from bot.digests.compile import compile_digest, prepare
from bot.digests.disclosure import merge_small
from bot.digests.privacy import Scrubber
from bot.digests.render import (
    render_html,
    render_markdown,
    render_telegram,
    split_html,
    write_digest,
)
from bot.digests.scopes import round_scope
from bot.kernel.config import Settings
from bot.kernel.context import AppContext
from storage.db import session_scope
from tests.support import factories
from tests.support.digest_fixtures import closed_round, respondent

# No personal names in it beyond the known one (Jo Bloggs), or the scrubber would hold the quote
# back: "Tom & Jerry" here once, and Tom and Jerry are names (issue 12).
HOSTILE = "<script>alert('x')</script> Fish & Chips say funding is short term"
RARE = "Our minibus keeps breaking down and the premises roof leaks"


def _balanced(part: str) -> bool:
    stack: list[str] = []
    for closing, name in re.findall(r"<(/?)([a-z]+)[^>]*>", part):
        if closing:
            if not stack or stack.pop() != name:
                return False
        else:
            stack.append(name)
    return not stack


def test_split_keeps_parts_short_and_tags_whole() -> None:
    line = "<b>Barrier</b> • <i>{} &amp; more words here</i>\n"
    text = "<b>Title</b>\n\n" + "".join(line.format(i) for i in range(400))
    text += "<i>" + "long " * 2000 + "</i>"
    parts = split_html(text, 4096)
    assert len(parts) > 3
    for part in parts:
        assert len(part) <= 4096
        assert _balanced(part), part[:200]
        assert not re.search(r"&[a-z]*$", part), "an entity was cut"
    plain = lambda s: re.sub(r"<[^>]+>|\s", "", s)  # noqa: E731
    assert plain("".join(parts)) == plain(text)


def test_split_leaves_short_text_alone() -> None:
    assert split_html("<b>hi</b>\nthere") == ["<b>hi</b>\nthere"]


def test_csv_cells_cannot_run_as_formulas() -> None:
    for bad in ('=HYPERLINK("x")', "+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"):
        assert safe_cell(bad).startswith("'")
    assert safe_cell("fine") == "fine" and safe_cell(3) == "3" and safe_cell(None) == ""


def test_scrubber_removes_contacts_and_names() -> None:
    scrub = Scrubber(["Amira Khan", "Riverside Food Bank", "Tom"])
    text = scrub(
        "Call Amira on 07700 900123 or +44 (0)20 7946 0958, mail amira.k@example.org; "
        "Riverside Food Bank and tom agree. See https://x.example/a @amirak"
    )
    for leaked in ("Amira", "07700", "7946", "example.org", "Riverside", "tom", "@amirak"):
        assert leaked.lower() not in text.lower(), (leaked, text)
    assert "Food" not in text or "Riverside" not in text
    assert "agree" in text


def test_merge_small_never_leaves_one_cell_under_k() -> None:
    merged = merge_small([("a", 10), ("b", 4), ("c", 7)], lambda x: x[1], 5)
    assert [x[0] for x in merged.kept] == ["a"]
    assert sum(x[1] for x in merged.merged) == 11
    alone = merge_small([("a", 2), ("b", 1)], lambda x: x[1], 5)
    assert not alone.kept  # the caller holds back a total under k


@pytest.fixture
def world(ctx: AppContext) -> int:
    with session_scope(ctx.sessions) as session:
        big = factories.organisation(session, "Alder Food Bank", area="North")
        small = factories.organisation(session, "Birchwood Youth", area="South")
        round_ = closed_round(session, factories.consultation(session))
        for i in range(6):
            respondent(
                session,
                round_,
                9000 + i,
                {
                    "partnership_barriers": ["funding"],
                    "biggest_obstacle": f"{HOSTILE} ({i}), call Jo Bloggs on 07700 900{i:03d}",
                },
                organisation=big,
                profile={"area": "North"},
                display_name="Jo Bloggs",
            )
        for i in range(5):  # five more, so that funding (6 of 13) is shown
            respondent(
                session,
                round_,
                9050 + i,
                {"partnership_barriers": ["none"]},
                organisation=big,
                profile={"area": "North"},
            )
        for i in range(2):  # two people: under k = 5 everywhere
            respondent(
                session,
                round_,
                9100 + i,
                {
                    "partnership_barriers": ["contracts"],
                    "own_barriers": ["premises"],
                    "biggest_obstacle": f"{RARE} {i}" if i == 0 else "=1+2 @evil -oops",
                },
                organisation=small,
                profile={"area": "South"},
            )
        return round_.id


def _all_formats(ctx: AppContext, settings: Settings, round_id: int, tmp: Path) -> dict[str, str]:
    with session_scope(ctx.sessions) as session:
        scope = round_scope(session, round_id)
        prepare(session, scope, codebook_for(settings))
        digest = compile_digest(session, settings, scope, now=ctx.clock.now())
        out = {
            "tg": "\n".join(render_telegram(digest, ctx.renderer)),
            "html": render_html(digest, ctx.renderer),
            "md": render_markdown(digest, ctx.renderer),
        }
        buffer = io.StringIO()
        write_csv(session, settings.privacy.k, scope, codebook_for(settings), buffer)
        out["csv"] = buffer.getvalue()
        write_digest(digest, ctx.renderer, "html", tmp / "d.html")
    return out


def test_hostile_answers_are_escaped(
    ctx: AppContext, settings: Settings, world: int, tmp_path: Path
) -> None:
    out = _all_formats(ctx, settings, world, tmp_path)
    for fmt in ("tg", "html"):
        assert "<script>" not in out[fmt]
        assert "&lt;script&gt;" in out[fmt], out[fmt][-3000:]
        assert "Fish &amp; Chips" in out[fmt]
    assert "<script>" not in out["md"] and "&lt;script&gt;" in out["md"]


def test_nothing_under_k_in_any_format(
    ctx: AppContext, settings: Settings, world: int, tmp_path: Path
) -> None:
    out = _all_formats(ctx, settings, world, tmp_path)
    for fmt, text in out.items():
        if fmt == "csv":
            continue  # the CSV carries every (scrubbed) answer; its segment cells are checked below
        assert "minibus" not in text, fmt  # a quote from a code only two people named
        assert "Access to contracts and tenders" not in text, fmt
        assert "Physical capital" not in text, fmt
        assert "South" not in text, fmt
    rows = list(csv.DictReader(io.StringIO(out["csv"])))
    # South (2 people) is merged, and a merged cell of 2 would be under k too, so North (6)
    # joins it, as in the digest: the one area cell left holds all 8.
    assert {r["area"] for r in rows} == {"Other (merged)"}
    assert "South" not in out["csv"]


def test_pii_is_removed_from_quotes_and_csv(
    ctx: AppContext, settings: Settings, world: int, tmp_path: Path
) -> None:
    out = _all_formats(ctx, settings, world, tmp_path)
    for fmt, text in out.items():
        assert "07700" not in text, fmt
        assert "Bloggs" not in text, fmt
    assert "[phone removed]" in out["tg"]


def test_csv_neutralises_formulas(
    ctx: AppContext, settings: Settings, world: int, tmp_path: Path
) -> None:
    out = _all_formats(ctx, settings, world, tmp_path)
    for row in csv.reader(io.StringIO(out["csv"])):
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert "'=1+2 " in out["csv"]
