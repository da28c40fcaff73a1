"""Records the stand-in keeps about what the bot did, for tests and benchmarks to inspect."""

from __future__ import annotations

import base64
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


class ApiError(Exception):
    """A Bot API error answer: ``{"ok": false, "error_code": ..., "description": ...}``."""

    def __init__(
        self, code: int, description: str, parameters: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return body


def bad_request(reason: str) -> ApiError:
    return ApiError(400, f"Bad Request: {reason}")


@dataclass(frozen=True)
class MessageVersion:
    """One state of a bot message: as first sent, or after an edit."""

    text: str
    """Plain text (or caption for media) after entity parsing, as the user sees it."""
    html: str
    """The raw text/caption exactly as the bot sent it (HTML markup included)."""
    entities: tuple[dict[str, Any], ...]
    reply_markup: dict[str, Any] | None
    parse_mode: str | None
    edit_date: int | None = None


@dataclass
class StoredFile:
    """A file the bot uploaded (or a participant sent through the side door)."""

    file_id: str
    file_unique_id: str
    file_name: str | None
    mime_type: str | None
    content: bytes = field(repr=False)
    file_path: str
    chat_id: int | None = None
    message_id: int | None = None
    kind: str = "document"

    def to_dict(self, *, with_content: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_name": self.file_name,
            "mime_type": self.mime_type,
            "file_size": len(self.content),
            "file_path": self.file_path,
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "kind": self.kind,
        }
        if with_content:
            out["content_b64"] = base64.b64encode(self.content).decode("ascii")
        return out


@dataclass
class BotMessage:
    """A message the bot sent, with its full edit history (``versions[-1]`` is current)."""

    chat_id: int
    message_id: int
    kind: str
    """"text", "document" or "photo"."""
    date: int
    versions: list[MessageVersion]
    file: StoredFile | None = None
    disable_notification: bool = False
    reply_to_message_id: int | None = None
    deleted: bool = False

    @property
    def current(self) -> MessageVersion:
        return self.versions[-1]

    @property
    def text(self) -> str:
        """Plain text of a text message, caption of a media message ("" if none)."""
        return self.current.text

    @property
    def html(self) -> str:
        return self.current.html

    @property
    def caption(self) -> str:
        return self.current.text if self.kind != "text" else ""

    @property
    def entities(self) -> tuple[dict[str, Any], ...]:
        return self.current.entities

    @property
    def reply_markup(self) -> dict[str, Any] | None:
        return self.current.reply_markup

    @property
    def edited(self) -> bool:
        return len(self.versions) > 1

    @property
    def inline_keyboard(self) -> list[list[dict[str, Any]]]:
        markup = self.current.reply_markup or {}
        rows = markup.get("inline_keyboard")
        return rows if isinstance(rows, list) else []

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """All inline buttons, row by row, flattened."""
        return [button for row in self.inline_keyboard for button in row]

    def button(self, text: str) -> dict[str, Any]:
        """The inline button labelled exactly ``text``; LookupError lists what exists."""
        for candidate in self.buttons:
            if candidate.get("text") == text:
                return candidate
        labels = [b.get("text") for b in self.buttons]
        raise LookupError(
            f"message {self.message_id} in chat {self.chat_id} has no button {text!r}; "
            f"its buttons are {labels}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "kind": self.kind,
            "date": self.date,
            "text": self.text,
            "html": self.html,
            "entities": list(self.entities),
            "reply_markup": self.reply_markup,
            "edited": self.edited,
            "deleted": self.deleted,
            "disable_notification": self.disable_notification,
            "reply_to_message_id": self.reply_to_message_id,
            "file": self.file.to_dict() if self.file else None,
            "versions": [
                {
                    "text": v.text,
                    "html": v.html,
                    "entities": list(v.entities),
                    "reply_markup": v.reply_markup,
                    "parse_mode": v.parse_mode,
                    "edit_date": v.edit_date,
                }
                for v in self.versions
            ],
        }


@dataclass(frozen=True)
class CallbackAnswer:
    """One answerCallbackQuery call."""

    callback_query_id: str
    user_id: int | None
    chat_id: int | None
    message_id: int | None
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "callback_query_id": self.callback_query_id,
            "user_id": self.user_id,
            "chat_id": self.chat_id,
            "message_id": self.message_id,
            "text": self.text,
            "show_alert": self.show_alert,
            "url": self.url,
            "cache_time": self.cache_time,
        }


@dataclass
class StandInStats:
    """Counters a benchmark reports; everything the stand-in answered is counted here."""

    requests: Counter[str] = field(default_factory=Counter)
    """Bot API requests by method name (as the bot spelled it), including failed ones."""
    errors: Counter[int] = field(default_factory=Counter)
    """Error answers by HTTP status."""
    messages_sent: int = 0
    edits: int = 0
    responses_429: int = 0
    injected_failures: int = 0
    updates_enqueued: int = 0
    updates_delivered: int = 0
    updates_dropped: int = 0
    webhook_failures: int = 0
    """Webhook deliveries that failed (non-2xx, timeout, connection error) and are retried."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "requests_total": sum(self.requests.values()),
            "errors": {str(k): v for k, v in self.errors.items()},
            "messages_sent": self.messages_sent,
            "edits": self.edits,
            "responses_429": self.responses_429,
            "injected_failures": self.injected_failures,
            "updates_enqueued": self.updates_enqueued,
            "updates_delivered": self.updates_delivered,
            "updates_dropped": self.updates_dropped,
            "webhook_failures": self.webhook_failures,
        }


@dataclass(frozen=True)
class FloodLimits:
    """Rates for the simulated flood control (token buckets: rate per second, burst size).

    Telegram documents about 30 messages/second overall, about one per second per chat
    (with short bursts tolerated) and 20 per minute per group.
    """

    global_rate: float = 30.0
    global_burst: float = 30.0
    chat_rate: float = 1.0
    chat_burst: float = 3.0
    group_rate: float = 20.0 / 60.0
    group_burst: float = 5.0


class TokenBucket:
    """A classic token bucket; ``wait()`` says how long until one token is available."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait(self, now: float) -> float:
        self._refill(now)
        if self.tokens >= 1.0:
            return 0.0
        return (1.0 - self.tokens) / self.rate if self.rate > 0 else math.inf

    def take(self) -> None:
        self.tokens -= 1.0


class FloodControl:
    """Global plus per-chat buckets; a request passes only if every bucket has a token."""

    def __init__(self, limits: FloodLimits) -> None:
        self.limits = limits
        now = time.monotonic()
        self._global = TokenBucket(limits.global_rate, limits.global_burst, now)
        self._chats: dict[int, TokenBucket] = {}

    def check(self, chat_id: int, is_group: bool) -> int:
        """Consume a token and return 0, or return retry_after seconds (int >= 1)."""
        now = time.monotonic()
        bucket = self._chats.get(chat_id)
        if bucket is None:
            limits = self.limits
            rate, burst = (
                (limits.group_rate, limits.group_burst)
                if is_group
                else (limits.chat_rate, limits.chat_burst)
            )
            bucket = self._chats[chat_id] = TokenBucket(rate, burst, now)
        wait = max(self._global.wait(now), bucket.wait(now))
        if wait > 0:
            return max(1, math.ceil(wait))
        self._global.take()
        bucket.take()
        return 0
