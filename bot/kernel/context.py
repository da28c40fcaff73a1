"""What every handler and job needs, built once and kept in `application.bot_data`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, ParamSpec, Protocol, TypeVar

from sqlalchemy import Engine

from bot.kernel.clock import Clock, SystemClock
from bot.kernel.config import Settings
from bot.kernel.render import Renderer
from storage.db import SessionFactory, engine_of

CONTEXT_KEY = "consultbot"

P = ParamSpec("P")
T = TypeVar("T")


class Loaded:
    """What features load once per process and keep (the codebook, consultation versions),
    each under the function that loads it and that function's arguments."""

    def __init__(self) -> None:
        self._values: dict[tuple[Any, ...], Any] = {}

    def get(self, load: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """load(*args, **kwargs), called the first time only."""
        key = (load, args, tuple(sorted(kwargs.items())))
        if key not in self._values:
            self._values[key] = load(*args, **kwargs)
        return self._values[key]  # type: ignore[no-any-return]


class Wakeable(Protocol):
    def wake(self) -> None: ...


@dataclass
class AppContext:
    settings: Settings
    sessions: SessionFactory
    clock: Clock = field(default_factory=SystemClock)
    loaded: Loaded = field(default_factory=Loaded)
    # The outbox sender while it runs in this process (bot.telegram.jobs.start_sender): woken
    # after a coordinator's action writes deliveries.
    sender: Wakeable | None = None
    # When the duplicate guard's old markers were last deleted (bot.telegram.jobs).
    updates_pruned_at: datetime | None = None

    @property
    def engine(self) -> Engine:
        return engine_of(self.sessions)

    @cached_property
    def renderer(self) -> Renderer:
        return Renderer(
            self.settings.paths.templates,
            zone=self.settings.zone,
            locale=self.settings.partnership.locale,
            languages=tuple(self.settings.partnership.languages),
        )
