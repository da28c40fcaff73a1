"""The bot's python-telegram-bot ``Bot``: PTB's ExtBot (defaults, rate limiter, error classes)
with three calls of its own for the answering hot path.

Telegram answers sendMessage and editMessageText with the whole message, which PTB turns into
a ``Message`` (and every button into an object) that the bot never reads: measured, that and
building the keyboard as ``InlineKeyboardMarkup`` cost more CPU than a press's database work
(bench/participant_bench.py). These calls send the keyboard as plain JSON and return only
what is used (the message id), through the same ``_post`` as every PTB method, so requests,
rate limiting, retries of 429 and errors are PTB's own. answerCallbackQuery, the other call
of every press, goes the same way for the same reason.
"""

from __future__ import annotations

from typing import Any

from telegram.ext import ExtBot

from bot.kernel.reply import OutgoingMessage


class ConsultBot(ExtBot[None]):
    async def answer_press(self, query_id: str, toast: str | None = None) -> None:
        """answerCallbackQuery: stop the button's spinner, with a short toast if given."""
        await self._post("answerCallbackQuery", {"callback_query_id": query_id, "text": toast})

    async def send_text(self, chat_id: int, message: OutgoingMessage) -> int:
        """sendMessage (Telegram HTML, with the message's buttons); the new message's id."""
        result = await self._post(
            "sendMessage",
            {
                "chat_id": chat_id,
                "disable_notification": message.disable_notification or None,
                **_body(message),
            },
        )
        return int(result["message_id"])

    async def edit_text(self, chat_id: int, message_id: int, message: OutgoingMessage) -> None:
        """editMessageText: the message becomes `message`, buttons included (none: removed)."""
        await self._post(
            "editMessageText", {"chat_id": chat_id, "message_id": message_id, **_body(message)}
        )


def _body(message: OutgoingMessage) -> dict[str, Any]:
    # No reply_markup on an edit takes the buttons away, as PTB's edit_message_text does.
    keyboard = message.keyboard()
    return {
        "text": message.text,
        "parse_mode": "HTML",
        "reply_markup": {"inline_keyboard": keyboard} if keyboard else None,
    }
