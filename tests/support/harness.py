"""End-to-end harness: the real python-telegram-bot Application, polling over real HTTP
against the project's Bot API stand-in, on a real database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from telegram.ext import Application

from bot.demo.local import LocalBot
from bot.kernel.context import AppContext
from standin import BotApiStandIn
from standin.models import BotMessage

TOKEN = "7000000001:TEST-token-for-the-stand-in"


class BotHarness:
    def __init__(self, ctx: AppContext, standin: BotApiStandIn) -> None:
        self.ctx = ctx
        self.standin = standin
        ctx.settings.telegram.request_timeout = 5
        self.bot = LocalBot(
            ctx, TOKEN, base_url=standin.bot_base_url, file_base_url=standin.file_base_url
        )

    @property
    def app(self) -> Application:  # type: ignore[type-arg]
        return self.bot.app

    async def start(self) -> None:
        await self.bot.start(poll_timeout=1)

    async def stop(self) -> None:
        await self.bot.stop()

    async def restart(self) -> None:
        """Stop and start the bot, as a deployment restart would: nothing survives in memory."""
        await self.stop()
        await self.start()

    # --- playing participants ------------------------------------------------------------

    async def say(self, user_id: int, text: str, *, timeout: float = 5.0, **kw: Any) -> BotMessage:
        """`user_id` writes `text` in their private chat; returns the bot's next message."""
        self.standin.send_text(user_id, text, **kw)
        return await self.standin.wait_for_message(kw.get("chat_id", user_id), timeout=timeout)

    async def press(
        self, user_id: int, message: BotMessage, button_text: str, *, timeout: float = 5.0
    ) -> BotMessage:
        """Press a button and return the bot's next message or edit in that chat."""
        self.standin.press(user_id, message, button_text)
        return await self.standin.wait_for_message(message.chat_id, timeout=timeout)

    async def press_data(
        self, user_id: int, message: BotMessage, data: str, *, timeout: float = 5.0
    ) -> BotMessage:
        self.standin.press_button(user_id, message.message_id, data, chat_id=message.chat_id)
        return await self.standin.wait_for_message(message.chat_id, timeout=timeout)

    async def eventually(self, check: Callable[[], object], *, timeout: float = 5.0) -> None:
        """Wait until `check()` is truthy (for effects with no chat message to wait for)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not check():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"not reached within {timeout} s: {check}")
            await asyncio.sleep(0.02)

    async def settle(self, seconds: float = 0.3) -> None:
        """Give the bot time to (not) react, for checks that something did not happen."""
        await asyncio.sleep(seconds)
