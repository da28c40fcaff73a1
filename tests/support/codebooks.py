"""A codebook with cues in a second language, for the tests of coding by language."""

from __future__ import annotations

from pathlib import Path

from bot.coding.stored import codebook_for
from bot.kernel.config import load_settings

# Welsh rules for two codes, for these tests only (the shipped codebook has no Welsh cues: no
# fluent speaker has checked any). Soft and nasal mutations are written out.
WELSH_CUES = {
    "Mynediad at ffrydiau cyllido": (
        'cues = ["(byr|fyr) dymor", "tymor byr"]\ntopics = ["cyllid|gyllid|nghyllid", "grant*"]'
    ),
    "Capasiti": 'cues = ["dim digon o (wirfoddolwyr|staff)"]\ntopics = ["gwirfoddolwyr"]',
}
WELSH_LEXICON = """
[lexicon.cy]
negators = ["ddim", "dim", "nid", "byth", "heb"]
problem_markers = ["problem*", "broblem*", "anodd", "rhy", "hwyr", "cymhleth"]
deficit_markers = ["dim digon", "prinder", "diffyg", "methu"]
absence_words = ["dim", "heb"]
"""
SHIPPED = codebook_for(load_settings(None)).source


def codebook_with_welsh(tmp_path: Path, lexicon: str = WELSH_LEXICON) -> Path:
    """The shipped codebook with Welsh cues for funding and capacity, reading the shipped
    training answers and fitted model."""
    assert SHIPPED is not None
    text = SHIPPED.read_text(encoding="utf-8")
    for label, cues in WELSH_CUES.items():
        text = text.replace(f'label = "{label}"', f'label = "{label}"\n{cues}')
    text = text.replace(
        'training = "training.jsonl"', f'training = "{SHIPPED.parent}/training.jsonl"'
    )
    text = text.replace(
        'file = "barriers.model.npz"', f'file = "{SHIPPED.parent}/barriers.model.npz"'
    )
    path = tmp_path / "ours.toml"
    path.write_text(text + lexicon, encoding="utf-8")
    return path
