"""Logging: readable lines, and the bot token never written anywhere."""

from __future__ import annotations

import logging


class RedactToken(logging.Filter):
    """Bot API URLs carry the token; blank it out of every log line, tracebacks included."""

    def __init__(self, token: str | None) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        if self.token:
            message = record.getMessage()
            if self.token in message:
                record.msg = message.replace(self.token, "<token>")
                record.args = None
            if record.exc_info:
                # Error texts carry it too: aiohttp's InvalidUrl, PTB's "token was rejected".
                trace = logging.Formatter().formatException(record.exc_info)
                record.exc_text = trace.replace(self.token, "<token>")
        return True


def setup_logging(level: str = "INFO", token: str | None = None) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    handler.addFilter(RedactToken(token))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # One line per HTTP request drowns everything else (and would carry the token).
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    # PTB's DEBUG lines carry whole updates and API calls: people's names and words. The
    # bot's own DEBUG logs ids only, so only the bot goes to DEBUG.
    logging.getLogger("telegram").setLevel(max(root.level, logging.INFO))
