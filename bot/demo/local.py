"""Run the bot in-process against a Bot API at a given URL: the demo, the tests and the
benchmarks all start it this way, exactly as `consultbot run` would, minus the signal handling."""

from __future__ import annotations

from telegram.ext import Application

from bot.app import build_application
from bot.kernel.context import AppContext


class LocalBot:
    def __init__(self, ctx: AppContext, token: str, *, base_url: str, file_base_url: str) -> None:
        self.ctx = ctx
        self.token = token
        ctx.settings.telegram.base_url = base_url
        ctx.settings.telegram.base_file_url = file_base_url
        self.application: Application | None = None  # type: ignore[type-arg]

    @property
    def app(self) -> Application:  # type: ignore[type-arg]
        assert self.application is not None, "the bot is not running"
        return self.application

    async def start(self, *, poll_timeout: int = 1) -> None:
        self.ctx.settings.telegram.poll_timeout = poll_timeout
        self.application = build_application(self.ctx, self.token)
        await self.application.initialize()
        if self.application.post_init:
            await self.application.post_init(self.application)
        assert self.application.updater is not None
        await self.application.updater.start_polling(poll_interval=0.0, timeout=poll_timeout)
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
        if application.post_shutdown:  # as run_polling would
            await application.post_shutdown(application)
