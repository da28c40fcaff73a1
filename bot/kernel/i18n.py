"""The language each message is said in: gettext catalogs, compiled in memory, and the
language of the update being decided.

Catalogs are translations/<lang>/LC_MESSAGES/messages.po, read and compiled with Babel when
first needed, so a fresh clone needs no compile step (`make messages` extracts and updates
them). The language travels in a context variable: set once per update from the person's
stored language (or Telegram's language_code before they have one), and around each message
rendered for someone else (an invitation, a reminder), so every template and `_()` in Python
reads the same one without passing it down every call.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

TRANSLATIONS = Path(__file__).resolve().parents[2] / "translations"
DOMAIN = "messages"

# None: the deployment's default language (the templates' own English when it has no catalog).
_LANGUAGE: ContextVar[str | None] = ContextVar("consultbot_language", default=None)
_NULL = NullTranslations()
# The deployment's default language, and Babel's locale for it (partnership.locale: en_GB
# rather than en's American forms); bot.kernel.render.Renderer sets them from the settings.
# One deployment per process.
_DEFAULT: list[str] = ["en"]
_LOCALE: list[str] = ["en_GB"]

# What a language is called in itself, for the buttons that choose one.
NAMES = {"en": "English", "cy": "Cymraeg"}


def name_of(language: str) -> str:
    return NAMES.get(language, language)


@functools.cache
def catalogs(directory: Path = TRANSLATIONS) -> dict[str, NullTranslations]:
    """Every catalog under `directory`, by language, compiled once per process."""
    found: dict[str, NullTranslations] = {}
    for po in sorted(directory.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        language = po.parent.parent.name
        with po.open("rb") as file:
            catalog = read_po(file, locale=language, domain=DOMAIN)
        compiled = BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        found[language] = Translations(compiled, domain=DOMAIN)
    return found


def set_default(language: str, locale: str = "en_GB") -> None:
    _DEFAULT[0] = language
    _LOCALE[0] = locale


def locale() -> str:
    """Babel's locale for dates and numbers in the language being spoken: the configured one
    for the default language, else the language itself."""
    language = current()
    return _LOCALE[0] if language == _DEFAULT[0] else language


def current() -> str:
    """The language of what is being said now."""
    return _LANGUAGE.get() or _DEFAULT[0]


def chosen() -> str | None:
    """The language set for this update, if one was (None: the default)."""
    return _LANGUAGE.get()


def use(language: str | None) -> None:
    """Speak `language` for the rest of this update (context variables are per task)."""
    _LANGUAGE.set(language)


@contextmanager
def speaking(language: str | None) -> Iterator[None]:
    """Speak `language` for what is rendered inside (a message for someone else)."""
    token = _LANGUAGE.set(language)
    try:
        yield
    finally:
        _LANGUAGE.reset(token)


def _translations() -> NullTranslations:
    return catalogs().get(_LANGUAGE.get() or _DEFAULT[0], _NULL)


def gettext(message: str) -> str:
    return _translations().gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _translations().ngettext(singular, plural, n)


_ = gettext


def N_(message: str) -> str:  # pybabel extracts N_() by default
    """Mark a string for the catalogs where it is defined (a module-level label) without
    translating it there: it is translated with _() where it is said, in that person's language."""
    return message


def best_match(code: str | None, languages: Sequence[str]) -> str | None:
    """The deployment language matching Telegram's `language_code` ("cy", "en-GB"), if any."""
    if not code:
        return None
    base = code.replace("_", "-").split("-")[0].lower()
    return base if base in languages else None


def offered(code: str | None, languages: Sequence[str]) -> list[str]:
    """The deployment's languages with the one matching `code` first."""
    match = best_match(code, languages)
    return [match, *(x for x in languages if x != match)] if match else list(languages)
