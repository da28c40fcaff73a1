"""`consultbot code` from a shell: free text from any source coded against the codebook, JSON
lines in and out, bad lines named on stderr and skipped, each batch written as it is done."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from bot.coding.coder import code_text
from bot.coding.stored import NO_CODE, auto_codes, codebook_for
from bot.kernel.config import load_settings
from tests.support.cli_run import consultbot
from tests.support.codebooks import codebook_with_welsh

FUNDING = "Our grant always arrives months late, so we cannot plan anything"
VOLUNTEERS = "We only have two volunteers and nobody has time to fill in the forms"


def test_codes_each_line_in_order_and_names_the_bad_ones(tmp_path: Path) -> None:
    lines = [
        json.dumps({"id": "email-1", "text": FUNDING}),
        "",
        "not json at all",
        json.dumps({"id": 2, "text": VOLUNTEERS}),
        json.dumps({"text": "no id"}),
        json.dumps({"id": 3, "text": 42}),
        json.dumps(["id", "text"]),
        "   ",
        json.dumps({"id": 4, "text": "Lovely weather for the fete", "source": "notes"}),
    ]
    result = consultbot("code", cwd=tmp_path, input="\n".join(lines) + "\n")
    assert result.returncode == 1
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in out] == ["email-1", 2, 4]
    codebook = codebook_for(load_settings(None))
    for o, text in zip(out, (FUNDING, VOLUNTEERS, "Lovely weather for the fete"), strict=True):
        stored = [
            (c, f["evidence"]) for c, f in auto_codes(code_text(text, codebook)) if c != NO_CODE
        ]
        # What the chat stores for the same words: each code with the words it rests on.
        assert list(zip(o["codes"], o["evidence"], strict=True)) == stored
        assert set(o) == {"id", "codes", "evidence", "doubtful"}
    assert "ext.funding" in out[0]["codes"] and out[0]["evidence"][0] in FUNDING
    assert "int.capacity" in out[1]["codes"]
    assert out[2]["codes"] == [] and out[2]["evidence"] == []
    assert result.stderr.splitlines() == [
        "line 3: not JSON (Expecting value, at character 1)",
        'line 5: "id" missing, or not a string or a number',
        'line 6: "text" missing, or not a string',
        'line 7: not a JSON object like {"id": 1, "text": "..."}',
        "consultbot: 4 lines skipped",
    ]


def test_all_good_lines_exit_0(tmp_path: Path) -> None:
    result = consultbot("code", cwd=tmp_path, input=json.dumps({"id": 1, "text": FUNDING}))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["id"] == 1
    assert result.stderr == ""


def test_each_batch_is_written_before_the_next_is_read(tmp_path: Path) -> None:
    """The first batch's lines come out while the input is still open: a long pipe shows
    progress. (The wait is a guard against hanging, not a timing: nothing is measured.)"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSULTBOT_")}
    process = subprocess.Popen(
        [sys.executable, "-c", "from bot.cli import main; main()", "code", "--batch", "2"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    got: list[str] = []
    reader = threading.Thread(
        target=lambda: got.extend([process.stdout.readline(), process.stdout.readline()])  # type: ignore[union-attr]
    )
    try:
        for ident in (1, 2):
            process.stdin.write(json.dumps({"id": ident, "text": FUNDING}) + "\n")
        process.stdin.flush()
        reader.start()
        reader.join(timeout=120)
        assert [json.loads(line)["id"] for line in got] == [1, 2]
        process.stdin.write(json.dumps({"id": 3, "text": VOLUNTEERS}) + "\n")
        process.stdin.close()
        assert json.loads(process.stdout.readline())["id"] == 3
        assert process.wait(timeout=120) == 0
    finally:
        if process.poll() is None:
            process.kill()


def test_a_codebook_that_cannot_be_read_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[paths]\ncodebook = "missing.toml"\n')
    result = consultbot("code", cwd=tmp_path, input=json.dumps({"id": 1, "text": FUNDING}))
    assert result.returncode == 2
    assert result.stderr.strip().endswith("cannot read codebook (No such file or directory)")
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""


def test_texts_in_a_further_language_are_coded_with_its_cues(tmp_path: Path) -> None:
    codebook = codebook_with_welsh(tmp_path)
    (tmp_path / "config.toml").write_text(f'[paths]\ncodebook = "{codebook}"\n')
    welsh = json.dumps({"id": 1, "text": "Mae'r cyllid yn rhy fyr bob amser"})
    result = consultbot("code", "--language", "cy", cwd=tmp_path, input=welsh)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["codes"] == ["ext.funding"]
    # Without --language the codebook's own (English) cues read it, and find nothing.
    english = consultbot("code", cwd=tmp_path, input=welsh)
    assert json.loads(english.stdout)["codes"] == []


def test_a_language_without_cues_is_refused_in_one_line(tmp_path: Path) -> None:
    text = json.dumps({"id": 1, "text": "Finansowanie jest zawsze krótkoterminowe"})
    result = consultbot("code", "--language", "pl", cwd=tmp_path, input=text)
    assert result.returncode == 2 and result.stdout == ""
    assert "the codebook has no cues in 'pl' (it has: en)" in result.stderr
