"""A local stand-in for the Telegram Bot API, owned by the project.

Point python-telegram-bot at it with ``base_url=stand_in.bot_base_url`` and
``base_file_url=stand_in.file_base_url``; play participants and inspect what they received
through the side door (Python methods here, or JSON under ``/_standin/``).
"""

from .models import (
    ApiError,
    BotMessage,
    CallbackAnswer,
    FloodLimits,
    MessageVersion,
    StandInStats,
    StoredFile,
)
from .server import DEFAULT_BOT_ID, DEFAULT_TOKEN, BotApiStandIn

__all__ = [
    "DEFAULT_BOT_ID",
    "DEFAULT_TOKEN",
    "ApiError",
    "BotApiStandIn",
    "BotMessage",
    "CallbackAnswer",
    "FloodLimits",
    "MessageVersion",
    "StandInStats",
    "StoredFile",
]
