"""The one module that speaks the Bot API over HTTP.

``ConsultBot`` is python-telegram-bot's ExtBot (defaults, rate limiter, error classes) for
everything PTB does for us: getUpdates, webhooks, command menus, ``chat.send_message`` in
dialogs. The calls the bot makes by the thousand (a press's edit, answer and new message; the
outbox's sendMessage, sendDocument, sendPhoto and editMessageText) go through one raw call
(:meth:`ConsultBot.call`) instead, on the same aiohttp session as PTB's transport, and raise
PTB's error classes, so errors read the same everywhere.

Why a raw call: Telegram answers sendMessage and editMessageText with the whole message, which
PTB turns into a ``Message`` (and every button into an object) that the bot never reads, and
PTB's request encoding (RequestParameter, every value to a string, then JSON) is per-call
object machinery: measured in bench/outbox_bench.py (limits off), PTB's ``Bot`` sent about
half as many messages a second as a plain JSON POST.

Why aiohttp (AiohttpRequest) and not PTB's default transport (httpx): it earns its place in
bench/participant_bench.py --participants 200 --rates '' (the echo baseline, PTB alone,
run back to back on each): 470-800 presses/s at 0.6-0.7 ms CPU a press on aiohttp against
65-160 presses/s at 6-8 ms on httpx.
"""

from __future__ import annotations

import json
from datetime import timedelta
from http import HTTPStatus
from typing import Any

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import AIORateLimiter, Defaults, ExtBot
from telegram.request import BaseRequest, RequestData

from bot.kernel.config import TelegramSettings
from bot.kernel.reply import OutgoingMessage
from bot.outbox.payloads import media_content

Files = dict[str, tuple[str, bytes, str]]  # field -> (filename, content, content type)


class AiohttpRequest(BaseRequest):
    """PTB's transport on aiohttp, and the session the raw calls share with it."""

    def __init__(
        self,
        *,
        connection_pool_size: int = 8,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        media_write_timeout: float | None = 20.0,
        pool_timeout: float | None = 30.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._pool_timeout = pool_timeout
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._connect_timeout = connect_timeout
        self._media_write_timeout = media_write_timeout
        self._session: aiohttp.ClientSession | None = None
        self._timeout = _timeout(read_timeout, connect_timeout, write_timeout, pool_timeout)
        self._media_timeout = _timeout(
            read_timeout, connect_timeout, media_write_timeout, pool_timeout
        )

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        """PTB's calls: its RequestData (every value already a string) as JSON or a form."""
        files = request_data.multipart_data if request_data else None
        fields = request_data.json_parameters if request_data else None
        if isinstance(write_timeout, DefaultValue):
            write_timeout = self._media_write_timeout if files else self._write_timeout
        timeout = _timeout(
            self._read_timeout if isinstance(read_timeout, DefaultValue) else read_timeout,
            self._connect_timeout if isinstance(connect_timeout, DefaultValue) else connect_timeout,
            write_timeout,
            self._pool_timeout if isinstance(pool_timeout, DefaultValue) else pool_timeout,
        )
        return await self._send(method, url, _body(fields or {}, files), timeout)

    async def post_raw(self, url: str, params: dict[str, Any], files: Files | None) -> Any:
        """The raw call: `params` as a JSON body, or with `files` as a multipart form; the
        Bot API's result, or PTB's error for Telegram's refusal."""
        timeout = self._media_timeout if files else self._timeout
        status, payload = await self._send("POST", url, _body(params, files), timeout)
        return _result(status, payload)

    async def _send(
        self, method: str, url: str, body: Any, timeout: aiohttp.ClientTimeout
    ) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("AiohttpRequest is not initialized")
        try:
            async with self._session.request(method, url, data=body, timeout=timeout) as response:
                return response.status, await response.read()
        except TimeoutError as exc:
            raise TimedOut from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{type(exc).__name__}: {exc}") from exc


def _timeout(
    read: float | None, connect: float | None, write: float | None, pool: float | None
) -> aiohttp.ClientTimeout:
    # aiohttp has no separate write timeout; a request must at least get the time to send.
    # Waiting for a free connection is not a network fault: in a burst (hundreds of people
    # pressing at once) replies queue for the pool rather than fail, as PTB's pool_timeout
    # intends; only the connecting itself is held to connect_timeout.
    budget = [t for t in (read, connect, write, pool) if t is not None]
    return aiohttp.ClientTimeout(
        total=sum(budget) if len(budget) == 4 else None,
        connect=None if pool is None or connect is None else pool + connect,
        sock_connect=connect,
        sock_read=read,
    )


def _body(params: dict[str, Any], files: Files | None) -> Any:
    if files:
        form = aiohttp.FormData()
        for name, value in params.items():
            form.add_field(name, _form_value(value))
        for name, (filename, content, kind) in files.items():
            form.add_field(name, content, filename=filename, content_type=kind)
        return form
    if not params:
        return None
    # JSON for any call without a file: percent-encoding a form cost 33 us for a question
    # card against 4 us for json.dumps, and given a dict aiohttp would build a FormData with
    # a multipart writer for every request.
    return aiohttp.payload.BytesPayload(
        json.dumps(params).encode(), content_type="application/json"
    )


def _form_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)  # numbers as themselves, reply_markup as JSON


def _result(status: int, payload: bytes) -> Any:
    """The result of a Bot API answer, or the error PTB raises for it (as BaseRequest does)."""
    try:
        body = json.loads(payload)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    if HTTPStatus.OK <= status <= 299 and "result" in body:
        return body["result"]
    try:
        message = body.get("description") or f"{HTTPStatus(status).phrase} ({status})"
    except ValueError:
        message = f"Unknown HTTPError ({status})"
    parameters = body.get("parameters") or {}
    if parameters.get("migrate_to_chat_id"):
        raise ChatMigrated(parameters["migrate_to_chat_id"])
    if parameters.get("retry_after"):
        raise RetryAfter(timedelta(seconds=int(parameters["retry_after"])))
    errors: dict[int, type[TelegramError]] = {
        HTTPStatus.FORBIDDEN: Forbidden,
        HTTPStatus.NOT_FOUND: InvalidToken,
        HTTPStatus.UNAUTHORIZED: InvalidToken,
        HTTPStatus.BAD_REQUEST: BadRequest,
        HTTPStatus.CONFLICT: Conflict,
    }
    raise errors.get(status, NetworkError)(message)


class ConsultBot(ExtBot[None]):
    async def call(
        self,
        method: str,
        params: dict[str, Any],
        files: Files | None = None,
        *,
        wait_out_429: bool = True,
    ) -> Any:
        """The Bot API method `method`: its result, or PTB's error. With `wait_out_429`, as
        every PTB call, a 429 is waited out and tried again by PTB's rate limiter; the
        outbox sender turns that off, as it pauses all its sending itself."""
        request = self._request[1]
        assert isinstance(request, AiohttpRequest), "ConsultBot runs on AiohttpRequest"
        url = f"{self.base_url}/{method}"
        if wait_out_429 and self.rate_limiter is not None:
            return await self.rate_limiter.process_request(
                callback=request.post_raw,
                args=(url, params, files),
                kwargs={},
                endpoint=method,
                data=params,
                rate_limit_args=None,
            )
        return await request.post_raw(url, params, files)

    async def answer_press(self, query_id: str, toast: str | None = None) -> None:
        """answerCallbackQuery: stop the button's spinner, with a short toast if given."""
        params: dict[str, Any] = {"callback_query_id": query_id}
        if toast:
            params["text"] = toast
        await self.call("answerCallbackQuery", params)

    async def send_text(
        self, chat_id: int, message: OutgoingMessage, *, wait_out_429: bool = True
    ) -> int:
        """sendMessage (Telegram HTML, with the message's buttons); the new message's id."""
        params = _message(chat_id, message.text, message.keyboard(), message.disable_notification)
        result = await self.call("sendMessage", params, wait_out_429=wait_out_429)
        return int(result["message_id"])

    async def edit_text(
        self,
        chat_id: int,
        message_id: int,
        message: OutgoingMessage,
        *,
        wait_out_429: bool = True,
    ) -> None:
        """editMessageText: the message becomes `message`, buttons included (none: removed,
        as PTB's edit_message_text does when given no reply_markup)."""
        params = _message(chat_id, message.text, message.keyboard(), False)
        params["message_id"] = message_id
        await self.call("editMessageText", params, wait_out_429=wait_out_429)

    async def remove_buttons(
        self, chat_id: int, message_id: int, *, wait_out_429: bool = True
    ) -> None:
        """editMessageReplyMarkup with no keyboard: the message keeps its text."""
        params = {
            "chat_id": chat_id,
            "message_id": message_id,
            "reply_markup": {"inline_keyboard": []},
        }
        await self.call("editMessageReplyMarkup", params, wait_out_429=wait_out_429)

    async def send_delivery(self, chat_id: int, payload: dict[str, Any]) -> int:
        """An outbox payload (bot.outbox.payloads) by sendMessage, sendDocument or sendPhoto;
        the new message's id. A 429 is raised, not waited out (see call)."""
        params = _message(
            chat_id,
            payload.get("text"),
            payload.get("buttons"),
            bool(payload.get("disable_notification")),
        )
        files: Files | None = None
        if "document" in payload:
            document = payload["document"]
            name = document.get("filename", "file")
            files = {"document": (name, media_content(document), "application/octet-stream")}
            method = "sendDocument"
        elif "photo" in payload:
            files = {"photo": ("chart.png", media_content(payload["photo"]), "image/png")}
            method = "sendPhoto"
        else:
            method = "sendMessage"
        if files:
            del params["text"]
            if payload.get("caption"):
                params["caption"] = payload["caption"]
            else:
                del params["parse_mode"]
        result = await self.call(method, params, files, wait_out_429=False)
        return int(result["message_id"])


def _message(
    chat_id: int, text: str | None, buttons: list[list[dict[str, str]]] | None, quiet: bool
) -> dict[str, Any]:
    params: dict[str, Any] = {"chat_id": chat_id, "text": text, "parse_mode": "HTML"}
    keyboard = [row for row in buttons or () if row]
    if keyboard:
        params["reply_markup"] = {"inline_keyboard": keyboard}
    if quiet:
        params["disable_notification"] = True
    return params


def make_bot(token: str, telegram: TelegramSettings) -> ConsultBot:
    """The bot for `telegram`'s Bot API server (uninitialised: use it with ``async with``, or
    give it to an Application)."""
    return ConsultBot(
        token,
        base_url=telegram.base_url,
        base_file_url=telegram.base_file_url,
        defaults=Defaults(parse_mode="HTML"),
        # Interactive replies wait out a 429 a few times; the overall pace of broadcasts is
        # the outbox's job, so the overall limiter here is off (0) and only groups are limited.
        rate_limiter=AIORateLimiter(overall_max_rate=0, max_retries=3),
        request=AiohttpRequest(
            connection_pool_size=64,
            read_timeout=telegram.request_timeout,
            write_timeout=telegram.request_timeout,
            connect_timeout=telegram.request_timeout,
        ),
        get_updates_request=AiohttpRequest(
            connection_pool_size=1,
            read_timeout=telegram.poll_timeout + telegram.request_timeout,
            connect_timeout=telegram.request_timeout,
        ),
    )
