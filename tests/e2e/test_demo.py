"""`consultbot demo` end to end: the README's first command must keep working."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from bot.demo.run import run_demo


@pytest.mark.slow
async def test_demo_plays_a_whole_round_and_writes_the_digest(tmp_path: Path) -> None:
    lines: list[str] = []
    result = await run_demo(tmp_path / "out", echo=lines.append)

    counts = result.counts
    assert counts["unreachable"] == 3, "three people blocked the bot"
    assert counts["declined"] == 1
    assert counts["completed"] >= 25
    assert counts["reminders"] > 0
    names = {path.name for path in result.files}
    assert {"digest.html", "digest.md", "answers.csv", "barriers.png"} <= names
    html = (tmp_path / "out" / "digest.html").read_text()
    assert "what we heard" in html and "data:image/png;base64," in html
    with (tmp_path / "out" / "answers.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert len(rows) > 100
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert "<td>Cymraeg</td>" in html, "the language breakdown: a fifth took part in Welsh"
    transcript = result.transcript.read_text()
    assert "Thank you!" in transcript and "what we heard" in transcript
    assert "Diolch!" in transcript and "Cytuno" in transcript, "a Welsh speaker's conversation"
    assert (tmp_path / "out" / "digest.cy.html").exists()
    assert "”“" not in transcript, "each quote on its own line"
    assert any("digest went to" in line for line in lines)
