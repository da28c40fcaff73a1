"""Scrubbing free texts before they are quoted: what is shown of people's words.
(Which figures may be shown is bot.digests.disclosure's.)"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TypeVar

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# Phone numbers: 9+ digits with optional spaces, dots, dashes, brackets and a leading +.
_PHONE = re.compile(r"(?<!\w)\+?\(?\d[\d\s().-]{7,}\d(?!\w)")
_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<!\w)@\w{3,}")
_SPACES = re.compile(r"\s+")

T = TypeVar("T")


class Scrubber:
    """Removes e-mail addresses, phone numbers, links, @handles and known names from text.

    Names are the display names of participants and the names of organisations; each full name
    and each of its words of three letters or more is removed (whole words, any case).
    """

    def __init__(self, names: Iterable[str] = ()) -> None:
        # Names are kept as tuples of lower-case words and matched word by word: one regex
        # alternation of thousands of names takes seconds to compile.
        phrases: set[tuple[str, ...]] = set()
        for name in names:
            words = tuple(w.lower() for w in _WORD.findall(name or ""))
            if not words:
                continue
            phrases.add(words)
            for part in words:
                if len(part) >= 3 and part not in _HARMLESS and not part.isdigit():
                    phrases.add((part,))
        self._phrases = phrases
        self._longest = max((len(p) for p in phrases), default=0)

    def _remove_names(self, text: str) -> str:
        words = [(m.start(), m.end(), m.group().lower()) for m in _WORD.finditer(text)]
        spans: list[tuple[int, int]] = []
        i = 0
        while i < len(words):
            for n in range(min(self._longest, len(words) - i), 0, -1):
                if tuple(w[2] for w in words[i : i + n]) in self._phrases:
                    spans.append((words[i][0], words[i + n - 1][1]))
                    i += n
                    break
            else:
                i += 1
        for start, end in reversed(spans):
            text = text[:start] + "[name removed]" + text[end:]
        return text

    def __call__(self, text: str) -> str:
        text = _EMAIL.sub("[email removed]", text)
        text = _URL.sub("[link removed]", text)
        text = _PHONE.sub("[phone removed]", text)
        text = _HANDLE.sub("[name removed]", text)
        if self._phrases:
            text = self._remove_names(text)
        return _SPACES.sub(" ", text).strip()


_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


# Everyday words that appear in organisation names ("The Community Trust") and must stay in
# quotes, or every sentence would be shredded.
_HARMLESS = {
    "the",
    "and",
    "for",
    "group",
    "groups",
    "community",
    "trust",
    "charity",
    "centre",
    "center",
    "project",
    "projects",
    "network",
    "association",
    "society",
    "club",
    "services",
    "service",
    "support",
    "people",
    "local",
    "council",
    "team",
    "young",
    "older",
    "family",
    "families",
    "health",
    "care",
    "food",
    "bank",
    "action",
    "partnership",
    "forum",
    "youth",
    "women",
    "men",
    "friends",
    "our",
    "all",
    "new",
    "voluntary",
    "volunteers",
    "church",
    "school",
    "housing",
    "mental",
    "advice",
    "carers",
    "café",
    "cafe",
    "hub",
    "house",
    "home",
}
