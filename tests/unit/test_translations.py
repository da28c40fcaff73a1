"""The catalogs are current and complete: every message the templates and Python mark for
translation is in translations/messages.pot and has a Welsh translation."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

from bot.kernel import i18n
from bot.kernel.config import REPO_ROOT

WELSH = REPO_ROOT / "translations" / "cy" / "LC_MESSAGES" / "messages.po"


def _extracted(tmp_path: Path) -> set[str]:
    pot = tmp_path / "messages.pot"
    pybabel = Path(sys.executable).parent / "pybabel"
    subprocess.run(
        [str(pybabel), "extract", "-F", "babel.cfg", "-o", str(pot), "--no-location", "."],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as file:
        return {_key(m.id) for m in read_po(file) if m.id}


def _filled(string: str | tuple[str, ...]) -> bool:
    """A translation with no empty form (plural messages have one string per form)."""
    return all(string) if isinstance(string, tuple) else bool(string)


def _key(message_id: str | tuple[str, ...]) -> str:
    return message_id[0] if isinstance(message_id, tuple) else message_id


def test_every_extracted_message_has_a_welsh_translation(tmp_path: Path) -> None:
    with WELSH.open("rb") as file:
        welsh = read_po(file, locale="cy")
    translated = {
        _key(m.id): m.string for m in welsh if m.id and not m.fuzzy
    }  # iterating a catalog leaves out its obsolete (#~) entries
    extracted = _extracted(tmp_path)
    missing = sorted(extracted - translated.keys())
    assert not missing, f"not in the Welsh catalog (run make messages, then translate): {missing}"
    empty = [key for key in extracted if not _filled(translated[key])]
    assert not empty, f"no Welsh translation yet: {sorted(empty)}"


def test_the_catalog_compiles_in_memory_with_welsh_plural_forms() -> None:
    welsh = i18n.catalogs()["cy"]
    assert welsh.gettext("Agree") == "Cytuno"
    removed = "This answer no longer applies after your change, so I have removed it:"
    plural = "These answers no longer apply after your change, so I have removed them:"
    assert "wedi'i ddileu" in welsh.ngettext(removed, plural, 1)
    assert "wedi'u dileu" in welsh.ngettext(removed, plural, 2)


def test_best_match_and_the_order_offered() -> None:
    assert i18n.best_match("cy", ["en", "cy"]) == "cy"
    assert i18n.best_match("en-GB", ["en", "cy"]) == "en"
    assert i18n.best_match("fr", ["en", "cy"]) is None
    assert i18n.best_match(None, ["en", "cy"]) is None
    assert i18n.offered("cy", ["en", "cy"]) == ["cy", "en"]
    assert i18n.offered("fr", ["en", "cy"]) == ["en", "cy"]
