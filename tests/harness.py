"""End-to-end harness: the real python-telegram-bot Application, polling over real HTTP
against the project's Bot API stand-in, on a real database."""

from __future__ import annotations

import asyncio
from typing import Any

from telegram.ext import Application

from bot.app import build_application
from bot.context import AppContext
from bot.standin import BotApiStandIn
from bot.standin.models import BotMessage

TOKEN = "7000000001:TEST-token-for-the-stand-in"


class BotHarness:
    def __init__(self, ctx: AppContext, standin: BotApiStandIn) -> None:
        self.ctx = ctx
        self.standin = standin
        self.application: Application | None = None  # type: ignore[type-arg]

    @property
    def app(self) -> Application:  # type: ignore[type-arg]
        assert self.application is not None, "the bot is not running"
        return self.application

    async def start(self) -> None:
        settings = self.ctx.settings
        settings.telegram.base_url = self.standin.bot_base_url
        settings.telegram.base_file_url = self.standin.file_base_url
        settings.telegram.poll_timeout = 1
        settings.telegram.request_timeout = 5
        self.application = build_application(self.ctx, TOKEN)
        await self.application.initialize()
        if self.application.post_init:
            await self.application.post_init(self.application)
        assert self.application.updater is not None
        await self.application.updater.start_polling(poll_interval=0.0, timeout=1)
        await self.application.start()

    async def stop(self) -> None:
        application, self.application = self.application, None
        if application is None:
            return
        assert application.updater is not None
        if application.updater.running:
            await application.updater.stop()
        if application.running:
            await application.stop()
        await application.shutdown()

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

    async def settle(self, seconds: float = 0.3) -> None:
        """Give the bot time to (not) react, for checks that something did not happen."""
        await asyncio.sleep(seconds)
