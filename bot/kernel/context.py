"""What every handler and job needs, built once and kept in `application.bot_data`."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from bot.kernel.clock import Clock, SystemClock
from bot.kernel.config import Settings
from bot.kernel.render import Renderer
from storage.db import SessionFactory

CONTEXT_KEY = "consultbot"


@dataclass
class AppContext:
    settings: Settings
    sessions: SessionFactory
    clock: Clock = field(default_factory=SystemClock)
    # Anything a feature wants to keep for the life of the process (e.g. a compiled codebook).
    extras: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def renderer(self) -> Renderer:
        return Renderer(
            self.settings.paths.templates,
            zone=self.settings.zone,
            locale=self.settings.partnership.locale,
        )
