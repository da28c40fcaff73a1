"""Scrubbing free texts before they are quoted: what is shown of people's words, and which
texts are held back whole. (Which figures may be shown is bot.digests.disclosure's.)"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot.digests.personal import NameFinder, remove_addresses
from bot.kernel.i18n import N_, _

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# Phone numbers: 9+ digits with optional spaces, dots, dashes, brackets and a leading +.
_PHONE = re.compile(r"(?<!\w)\+?\(?\d[\d\s().-]{7,}\d(?!\w)")
_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<!\w)@\w{3,}")
_SPACES = re.compile(r"\s+")

# What replaces what is removed. A quote is scrubbed once, when its round is published, and
# stored so (bot.digests.published) with these marks in English; they are said in the reader's
# language when the quote is shown (in_reader_language), the person's own words staying as
# they wrote them.
NAME_REMOVED = N_("[name removed]")
ADDRESS_REMOVED = N_("[address removed]")
POSTCODE_REMOVED = N_("[postcode removed]")
EMAIL_REMOVED = N_("[email removed]")
LINK_REMOVED = N_("[link removed]")
PHONE_REMOVED = N_("[phone removed]")
_REMOVED = re.compile(
    "|".join(
        re.escape(mark)
        for mark in (
            NAME_REMOVED,
            ADDRESS_REMOVED,
            POSTCODE_REMOVED,
            EMAIL_REMOVED,
            LINK_REMOVED,
            PHONE_REMOVED,
        )
    )
)


def in_reader_language(quote: str) -> str:
    """A stored quote with its removal marks in the language being spoken."""
    return _REMOVED.sub(lambda mark: _(mark.group()), quote)


# A text that needed more removals than this (names, @handles, addresses, postcodes) is about
# people and places more than about barriers: it is not quoted at all.
MAX_REMOVALS = 2


@dataclass(frozen=True)
class Scrubbed:
    """One text after scrubbing, and whether it may be quoted."""

    text: str
    removed: int  # names, @handles, addresses and postcodes taken out (not e-mails, phones, links)
    doubts: tuple[str, ...] = ()  # what looked like a name but could not be settled

    @property
    def dropped(self) -> bool:
        return self.removed > MAX_REMOVALS or bool(self.doubts)


class Scrubber:
    """Removes e-mail addresses, phone numbers, links, @handles, postcodes, house-number
    addresses, street names and personal names from text, and says when a text should not be
    quoted at all (`scrub` returns None).

    Names are the ones the bot knows (participants' display names, organisations' names: each
    full name and each of its words of three letters or more, whole words, any case) and the
    ones it does not (bot/digests/personal.py: a shipped list of first names and surnames, and
    cues such as titles). A known or listed name that is also an everyday word (Will, Hope, Sue)
    is removed only where capitalisation and position make it a name.
    """

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._names = NameFinder(names)

    def clean(self, text: str) -> Scrubbed:
        """Everything removed, with the count and doubts that decide whether it is quoted."""
        text = _EMAIL.sub(EMAIL_REMOVED, text)
        text = _URL.sub(LINK_REMOVED, text)
        text = _PHONE.sub(PHONE_REMOVED, text)
        text, removed = _HANDLE.subn(NAME_REMOVED, text)
        text, places = remove_addresses(text, ADDRESS_REMOVED, POSTCODE_REMOVED)
        found = self._names.find(text)
        for start, end in reversed(found.spans):
            text = text[:start] + NAME_REMOVED + text[end:]
        removed += places + len(found.spans)
        return Scrubbed(_SPACES.sub(" ", text).strip(), removed, tuple(found.doubts))

    def scrub(self, text: str) -> str | None:
        """The text to quote, or None: do not use this text at all (it named more people or
        places than MAX_REMOVALS, or something in it looked like a name that could not be
        settled)."""
        result = self.clean(text)
        return None if result.dropped else result.text

    def __call__(self, text: str) -> str:
        """The scrubbed text whatever the verdict. To show a text, use `scrub`."""
        return self.clean(text).text
