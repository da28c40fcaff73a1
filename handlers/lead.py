"""Voluntary sector leads: digests."""

from __future__ import annotations

from telegram.ext import Application


def register(application: Application) -> None:  # type: ignore[type-arg]
    """Add the lead handlers (group FEATURES)."""
