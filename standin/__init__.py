"""A local stand-in for the Telegram Bot API, owned by the project.

Point python-telegram-bot at it exactly as at a self-hosted Bot API server::

    async with BotApiStandIn() as standin:          # binds 127.0.0.1, a free port
        app = (
            Application.builder()
            .token(standin.token)                    # only this token is accepted
            .base_url(standin.bot_base_url)          # http://127.0.0.1:PORT/bot
            .base_file_url(standin.file_base_url)    # http://127.0.0.1:PORT/file/bot
            .build()
        )
        ...
        standin.send_command(1001, "start", "campaign7")
        reply = await standin.wait_for_message(1001)
        standin.press(1001, reply, "Yes")

Participants are played, and what they received inspected, through the side door: the
methods of :class:`BotApiStandIn`, or the same as JSON under ``/_standin/<action>`` for a
bot in another process (see :mod:`standin.sidedoor`). Standalone:
``python -m standin --port 8081 --token T [--lifetime SECONDS]``.

Cursor semantics of ``wait_for_message``: every send or edit to a chat is one event;
``cursor(chat_id)`` is the count so far. By default a wait looks at events since the
participant's latest update in that chat, so a reply that arrived before the wait began
is still found; pass ``after=standin.cursor(chat_id)`` to wait for something newer, e.g.
a scheduled message the bot sends on its own.
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
from .server import DEFAULT_BOT_ID, DEFAULT_TOKEN
from .sidedoor import BotApiStandIn

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
