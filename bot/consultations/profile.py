"""The deployment's profile questions (templates/profile.toml), as a file format: read here,
beside the consultation sets whose `[translations.<language>]` format they share, so both the
joining steps (bot.participation.profile) and the digest's segment labels read them."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from bot.kernel import i18n

PROFILE_FILE = "profile.toml"
LABEL_MAX = 40  # option labels are buttons


@dataclass(frozen=True)
class ProfileOption:
    id: str
    label: str
    translations: tuple[tuple[str, str], ...] = ()  # (language, label)

    @property
    def local_label(self) -> str:
        """The label in the language being spoken, else as the file gives it."""
        return dict(self.translations).get(i18n.current(), self.label)


@dataclass(frozen=True)
class ProfileQuestion:
    key: str
    text: str
    options: tuple[ProfileOption, ...]
    only_for: str | None = None
    translations: tuple[tuple[str, str], ...] = ()  # (language, text)

    @property
    def local_text(self) -> str:
        """The question in the language being spoken, else as the file gives it."""
        return dict(self.translations).get(i18n.current(), self.text)


@lru_cache(maxsize=8)
def load_profile_questions(templates: Path) -> tuple[ProfileQuestion, ...]:
    """The questions of `templates`/profile.toml, with their translations: a
    `[translations.<language>]` table of "<key>.text" and "<key>.o.<option>" texts, as a
    consultation set's (bot.consultations.sets)."""
    path = templates / PROFILE_FILE
    if not path.exists():
        return ()
    with path.open("rb") as handle:
        data: dict[str, Any] = tomllib.load(handle)
    translations: dict[str, dict[str, str]] = data.get("translations", {})

    def given(key: str, limit: int) -> tuple[tuple[str, str], ...]:
        return tuple(
            (language, str(texts[key])[:limit])
            for language, texts in sorted(translations.items())
            if texts.get(key)
        )

    questions = []
    for raw in data.get("questions", [])[:3]:  # more than three is no longer "quick"
        key = str(raw["key"])
        options = tuple(
            ProfileOption(
                str(o["id"]), str(o["label"])[:LABEL_MAX], given(f"{key}.o.{o['id']}", LABEL_MAX)
            )
            for o in raw["options"]
        )
        if not 2 <= len(options) <= 8:
            raise ValueError(f"{path}: profile question {key!r} needs 2-8 options")
        questions.append(
            ProfileQuestion(
                key, str(raw["text"]), options, raw.get("only_for"), given(f"{key}.text", 300)
            )
        )
    return tuple(questions)
