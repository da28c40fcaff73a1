"""Coordinators: scheduling and watching rounds."""

from __future__ import annotations

from telegram.ext import Application


def register(application: Application) -> None:  # type: ignore[type-arg]
    """Add the coordinator handlers (group FEATURES)."""
