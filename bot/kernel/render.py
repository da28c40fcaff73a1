"""Every text the bot sends or writes comes from a Jinja2 template under templates/.

Telegram HTML (.html) and HTML files are autoescaped, so an answer like "<b>hi</b>" or
"Tom & Jerry" arrives exactly as typed. Words go through gettext ({% trans %} in templates)
and dates and numbers through Babel, all in the language of the update being decided
(bot.kernel.i18n): one environment and one set of compiled templates serves every language.
"""

from __future__ import annotations

import functools
import html
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal, format_percent
from jinja2 import Environment, FileSystemLoader, StrictUndefined, Template, select_autoescape

from bot.kernel import i18n

TELEGRAM_LIMIT = 4096  # characters a Telegram message may show (after its HTML is parsed)
_TAG = re.compile(r"<[^>]*>")


def shown_length(text: str) -> int:
    """How many characters Telegram counts in the Telegram HTML `text`: tags do not count and
    an entity is one character (autoescaping leaves no bare "<" in what people wrote)."""
    return len(html.unescape(_TAG.sub("", text)).strip())


class Renderer:
    def __init__(
        self,
        templates: Path,
        *,
        zone: ZoneInfo,
        locale: str = "en_GB",
        languages: tuple[str, ...] = ("en",),
    ) -> None:
        self.templates = templates
        self.zone = zone
        self.languages = languages
        i18n.set_default(languages[0], locale)
        self.env = Environment(
            loader=FileSystemLoader(str(templates)),
            autoescape=select_autoescape(["html", "htm", "xml"], default_for_string=False),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            extensions=["jinja2.ext.i18n"],
            # Templates are read once; a reworded template takes effect at the next start.
            # Checking each file's modification time cost a stat() per rendered message.
            auto_reload=False,
        )
        # Callables, not one catalog: they read the update's language at each call.
        self.env.install_gettext_callables(  # type: ignore[attr-defined]
            i18n.gettext, i18n.ngettext, newstyle=True
        )
        self._templates: dict[str, Template] = {}
        # A round's closing time is formatted once per person who finishes it; Babel takes
        # longer over that than the rest of the summary.
        self._when = functools.lru_cache(maxsize=512)(self._format_when)
        self.env.filters.update(
            when=self.format_when,
            day=self.format_day,
            number=lambda n: format_decimal(n, locale=self.locale),
            percent=lambda x: format_percent(x, locale=self.locale),
        )

    @property
    def language(self) -> str:
        """The language being spoken now (the deployment's first when none is set)."""
        return i18n.current()

    @property
    def locale(self) -> str:
        """Babel's locale for dates and numbers in the language being spoken (i18n.locale)."""
        return i18n.locale()

    def format_when(self, moment: datetime, fmt: str = "EEE d MMM, HH:mm") -> str:
        return self._when(moment, fmt, self.locale)

    def _format_when(self, moment: datetime, fmt: str, locale: str) -> str:
        return format_datetime(moment, fmt, tzinfo=self.zone, locale=locale)

    def format_day(self, day: date | datetime, fmt: str = "EEEE d MMMM") -> str:
        if isinstance(day, datetime):
            day = day.astimezone(self.zone).date()
        return format_date(day, fmt, locale=self.locale)

    def render(self, name: str, /, **context: Any) -> str:
        template = self._templates.get(name)
        if template is None:
            template = self._templates[name] = self.env.get_template(name)
            # Jinja keeps a template's globals as a ChainMap over the environment's and copies
            # it into a dict at every render, which cost a button press more than rendering
            # the question card itself. Ours are all set in __init__, so a dict does.
            template.globals = dict(template.globals)
        return template.render(**context).strip()
