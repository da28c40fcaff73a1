"""A local stand-in for the Telegram Bot API, spoken to over real HTTP.

The bot under test is pointed at it with PTB's ``base_url``/``base_file_url`` and cannot
tell it from Telegram: same URL layout, same parameter encodings (query string, form,
multipart, JSON), same ``{"ok": ...}`` envelopes, status codes and error descriptions.
Participants are played, and what they received is inspected, through the "side door":
Python methods on :class:`BotApiStandIn` and the same operations as JSON under
``/_standin/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import ClientSession, ClientTimeout, TCPConnector, web

from .html import EntityParseError, parse_html, strip_text, utf16_len
from .models import (
    ApiError,
    BotMessage,
    CallbackAnswer,
    FloodControl,
    FloodLimits,
    MessageVersion,
    StandInStats,
    StoredFile,
    bad_request,
)

_LOG = logging.getLogger(__name__)

DEFAULT_BOT_ID = 7000000001
DEFAULT_TOKEN = f"{DEFAULT_BOT_ID}:AAStandInTokenForLocalTestsOnly_0123456"

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64

# setWebhook's max_connections: Telegram's default and upper bound.
DEFAULT_WEBHOOK_CONNECTIONS = 40
MAX_WEBHOOK_CONNECTIONS = 100
# Pause before a failed webhook delivery is tried again (Telegram's is longer).
WEBHOOK_RETRY_PAUSE = 0.2
# How many pending updates the webhook scheduler scans for ones it may send now.
WEBHOOK_LOOKAHEAD = 2000

NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly "
    "the same as a current content and reply markup of the message"
)

# Telegram leaves these out unless the bot asks for them explicitly in allowed_updates.
_OPT_IN_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

# Methods that put something in front of a user, and so are subject to flood control.
FLOOD_METHODS = frozenset(
    {
        "sendmessage",
        "senddocument",
        "sendphoto",
        "editmessagetext",
        "editmessagecaption",
        "editmessagereplymarkup",
    }
)

Params = dict[str, Any]
Predicate = Callable[[BotMessage], bool]


@dataclass
class _Chat:
    chat: dict[str, Any]
    """The Telegram Chat object sent in updates and messages."""
    started: bool = False
    """For private chats: the user has written to the bot, so the bot may write back."""
    blocked: bool = False
    messages: dict[int, BotMessage] = field(default_factory=dict)
    user_messages: dict[int, dict[str, Any]] = field(default_factory=dict)
    events: list[BotMessage] = field(default_factory=list)
    """One entry per send or edit, in order; the cursor space of ``wait_for_message``."""
    last_user_cursor: int = 0
    reply_keyboard: dict[str, Any] | None = None
    next_message_id: int = 1
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def id(self) -> int:
        return int(self.chat["id"])

    @property
    def is_group(self) -> bool:
        return self.chat.get("type") in ("group", "supergroup")

    def take_message_id(self) -> int:
        mid = self.next_message_id
        self.next_message_id += 1
        return mid

    def pulse(self) -> None:
        # Wake current waiters, and give later ones a fresh event to wait on.
        self.changed.set()
        self.changed = asyncio.Event()


@dataclass
class _Fault:
    remaining: int
    status: int
    method: str | None


def _as_int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f"invalid {name} specified") from None


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).lower() in ("true", "1")


def _ordering_key(update: dict[str, Any]) -> tuple[str, Any]:
    """What an update must stay in order with: its chat, else its user, else its kind."""
    kind, payload = next((k, v) for k, v in update.items() if k != "update_id")
    if isinstance(payload, dict):
        for holder in (payload, payload.get("message")):
            chat = holder.get("chat") if isinstance(holder, dict) else None
            if isinstance(chat, dict) and "id" in chat:
                return ("chat", chat["id"])
        for field_name in ("from", "user"):
            user = payload.get(field_name)
            if isinstance(user, dict) and "id" in user:
                return ("user", user["id"])
    return ("kind", kind)


def _as_json(value: Any, what: str) -> Any:
    if value is None or not isinstance(value, str | bytes):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise bad_request(f"can't parse {what} JSON object") from None


def _text_content(text: str) -> dict[str, Any]:
    """A user's text message body: a leading command marked as Telegram marks it."""
    content: dict[str, Any] = {"text": text}
    if text.startswith("/"):
        command = text.split(maxsplit=1)[0] if text.strip() else text
        content["entities"] = [{"type": "bot_command", "offset": 0, "length": utf16_len(command)}]
    return content


class BotApiServer:
    """An in-process HTTP server that behaves like the Telegram Bot API for one bot (with the
    side door over HTTP as well: standin.sidedoor.BotApiStandIn)."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        bot_id: int | None = None,
        bot_username: str = "consultbot_test_bot",
        bot_first_name: str = "Consultbot",
        flood_limits: bool | FloodLimits = False,
    ) -> None:
        self.token = token
        self.host = host
        self.port = port
        if bot_id is None:
            prefix = token.split(":", 1)[0]
            bot_id = int(prefix) if prefix.isdigit() else DEFAULT_BOT_ID
        self.bot_user: dict[str, Any] = {
            "id": bot_id,
            "is_bot": True,
            "first_name": bot_first_name,
            "username": bot_username,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }
        self.stats = StandInStats()
        self.callback_answers: list[CallbackAnswer] = []
        # The methods answered with success, oldest first (the last 10,000): for tests of
        # the order in which the bot does things.
        self.served: deque[str] = deque(maxlen=10_000)
        self.duplicate_updates = False
        self._flood: FloodControl | None = None
        self.flood_limits = flood_limits

        self._chats: dict[int, _Chat] = {}
        self._usernames: dict[str, int] = {}
        self._users: dict[int, dict[str, Any]] = {}
        self._updates: deque[tuple[int, dict[str, Any]]] = deque()
        self._next_update_id = 100_000_001
        self._updates_changed = asyncio.Event()
        self._poll_generation = 0
        self._allowed_updates: frozenset[str] | None = None
        self._webhook: dict[str, Any] | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._webhook_last_error: tuple[int, str] | None = None
        self._commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._files: dict[str, StoredFile] = {}
        self._files_by_path: dict[str, StoredFile] = {}
        self._file_counter = itertools.count(1)
        self._callback_queries: dict[str, tuple[int, int | None, int | None]] = {}
        self._callback_counter = itertools.count(1)
        self._faults: list[_Fault] = []
        self._slow: dict[str | None, float] = {}
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._methods: dict[str, Callable[[Params], Awaitable[Any]]] = {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "editmessagecaption": self._edit_message_caption,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "answercallbackquery": self._answer_callback_query,
            "senddocument": self._send_document,
            "sendphoto": self._send_photo,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._delete_my_commands,
            "deletemessage": self._delete_message,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "getfile": self._get_file,
            "getchat": self._get_chat,
            "sendchataction": self._send_chat_action,
            "close": self._true,
            "logout": self._true,
        }

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def bot_base_url(self) -> str:
        """For ``Application.builder().base_url(...)``: PTB appends the token itself."""
        return f"{self.url}/bot"

    @property
    def file_base_url(self) -> str:
        """For ``Application.builder().base_file_url(...)``."""
        return f"{self.url}/file/bot"

    @property
    def bot_id(self) -> int:
        return int(self.bot_user["id"])

    @property
    def bot_username(self) -> str:
        return str(self.bot_user["username"])

    def make_app(self) -> web.Application:
        # Telegram accepts uploads up to 50 MB from bots.
        app = web.Application(client_max_size=50 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        return app

    async def start(self) -> None:
        if self._runner is not None:
            return
        self._closing = asyncio.Event()
        # Waiters are created lazily in start() so they bind to the running loop.
        self._updates_changed = asyncio.Event()
        self._runner = web.AppRunner(
            self.make_app(), access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        if server is not None and getattr(server, "sockets", None):
            self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        # Release long polls, slow requests and waiters so shutdown does not hang on them.
        self._closing.set()
        self._pulse_updates()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._webhook_task
            self._webhook_task = None
        await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ HTTP: Bot API

    async def _read_params(self, request: web.Request) -> Params:
        params: Params = dict(request.query)
        if request.method != "POST" or not request.body_exists:
            return params
        ctype = request.content_type
        if ctype == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise bad_request("can't parse JSON request body") from None
            if isinstance(body, dict):
                params.update(body)
        elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key in form:
                params[key] = form[key]
        return params

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        self.stats.requests[method] += 1
        if request.match_info["token"] != self.token:
            return self._error(ApiError(401, "Unauthorized"))
        key = method.lower()
        handler = self._methods.get(key)
        if handler is None:
            return self._error(ApiError(404, "Not Found"))
        try:
            # The body is read before any simulated delay: the server has the request even
            # if the client gives up waiting for the answer.
            params = await self._read_params(request)
            delay = self._slow.get(key, self._slow.get(None, 0.0))
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), delay)
            fault = self._take_fault(key)
            if fault is not None:
                self.stats.injected_failures += 1
                raise ApiError(fault, "Internal Server Error" if fault == 500 else "Bad Gateway")
            result = await handler(params)
            self.served.append(method)
        except ApiError as exc:
            return self._error(exc)
        except ConnectionError:
            # The client hung up mid-request; there is nobody to answer.
            return web.Response(status=499)
        return web.json_response({"ok": True, "result": result}, dumps=_dumps)

    def _error(self, exc: ApiError) -> web.Response:
        self.stats.errors[exc.code] += 1
        if exc.code == 429:
            self.stats.responses_429 += 1
        return web.json_response(exc.payload(), status=exc.code, dumps=_dumps)

    def _take_fault(self, method: str) -> int | None:
        for fault in self._faults:
            if fault.method is None or fault.method == method:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault.status
        return None

    async def _handle_file(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        stored = self._files_by_path.get(request.match_info["path"])
        if stored is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        return web.Response(
            body=stored.content, content_type=stored.mime_type or "application/octet-stream"
        )

    # ------------------------------------------------------------------ chats and checks

    def _chat_for_send(self, params: Params) -> _Chat:
        raw = params.get("chat_id")
        if raw is None or raw == "":
            raise bad_request("chat_id is empty")
        if isinstance(raw, str) and raw.startswith("@"):
            chat_id = self._usernames.get(raw[1:].lower())
            if chat_id is None:
                raise bad_request("chat not found")
        else:
            chat_id = _as_int(raw, "chat_id")
        chat = self._chats.get(chat_id)
        if chat is None:
            if chat_id in self._users:
                raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
            raise bad_request("chat not found")
        if not chat.is_group and not chat.started:
            # Telegram knows the user (e.g. from a group) but they never opened the bot.
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")
        if chat.blocked:
            if chat.is_group:
                raise ApiError(403, "Forbidden: bot was kicked from the group chat")
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _check_flood(self, chat: _Chat) -> None:
        if self._flood is None:
            return
        retry_after = self._flood.check(chat.id, chat.is_group)
        if retry_after:
            raise ApiError(
                429,
                f"Too Many Requests: retry after {retry_after}",
                {"retry_after": retry_after},
            )

    def _parse_text(
        self, params: Params, field_name: str, entities_name: str, limit: int, *, required: bool
    ) -> tuple[str, str, list[dict[str, Any]], str | None]:
        raw = params.get(field_name)
        raw = "" if raw is None else str(raw)
        parse_mode = params.get("parse_mode") or None
        if parse_mode is not None:
            parse_mode = str(parse_mode)
        mode = parse_mode.lower() if parse_mode else None
        if mode == "html":
            try:
                plain, entities = parse_html(raw)
            except EntityParseError as exc:
                raise bad_request(f"can't parse entities: {exc}") from None
        elif mode in (None, "markdown", "markdownv2"):
            # Markdown is not interpreted (see README gaps); the text passes through as sent.
            plain = raw
            entities = _as_json(params.get(entities_name), "entities") or []
            if not isinstance(entities, list):
                raise bad_request("can't parse entities JSON object")
        else:
            raise bad_request("unsupported parse_mode")
        plain, entities = strip_text(plain, entities)
        if required and not plain:
            raise bad_request("message text is empty")
        if len(plain) > limit:
            raise bad_request("message is too long" if required else "message caption is too long")
        return plain, raw, entities, parse_mode

    def _parse_markup(self, params: Params, *, inline_only: bool = False) -> dict[str, Any] | None:
        markup = _as_json(params.get("reply_markup"), "reply keyboard markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise bad_request(
                    "can't parse inline keyboard button: InlineKeyboardButton must be an Object"
                )
            for row in rows:
                for button in row:
                    if not isinstance(button, dict) or not button.get("text"):
                        raise bad_request("BUTTON_TEXT_INVALID")
                    data = button.get("callback_data")
                    if data is not None:
                        size = len(str(data).encode("utf-8"))
                        if size == 0 or size > MAX_CALLBACK_DATA:
                            raise bad_request("BUTTON_DATA_INVALID")
            return markup
        if inline_only:
            raise bad_request("inline keyboard expected")
        if "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise bad_request("can't parse reply keyboard markup JSON object")
            return markup
        if markup.get("remove_keyboard") or markup.get("force_reply"):
            return markup
        raise bad_request("can't parse reply keyboard markup JSON object")

    def _reply_to(self, chat: _Chat, params: Params) -> dict[str, Any] | None:
        target: int | None = None
        allow_missing = _as_bool(params.get("allow_sending_without_reply", False))
        reply_parameters = _as_json(params.get("reply_parameters"), "reply parameters")
        if isinstance(reply_parameters, dict) and reply_parameters.get("message_id") is not None:
            target = _as_int(reply_parameters["message_id"], "message_id")
            allow_missing = allow_missing or bool(
                reply_parameters.get("allow_sending_without_reply")
            )
        elif params.get("reply_to_message_id") not in (None, ""):
            target = _as_int(params["reply_to_message_id"], "reply_to_message_id")
        if target is None:
            return None
        bot_msg = chat.messages.get(target)
        if bot_msg is not None and not bot_msg.deleted:
            return self._message_dict(chat, bot_msg, with_reply=False)
        if target in chat.user_messages:
            return chat.user_messages[target]
        if allow_missing:
            return None
        raise bad_request("message to be replied not found")

    # ------------------------------------------------------------------ message building

    def _message_dict(
        self, chat: _Chat, msg: BotMessage, *, with_reply: bool = True
    ) -> dict[str, Any]:
        version = msg.current
        out: dict[str, Any] = {
            "message_id": msg.message_id,
            "from": self.bot_user,
            "chat": chat.chat,
            "date": msg.date,
        }
        if version.edit_date is not None:
            out["edit_date"] = version.edit_date
        if with_reply and msg.reply_to_message_id is not None:
            reply = chat.messages.get(msg.reply_to_message_id)
            if reply is not None:
                out["reply_to_message"] = self._message_dict(chat, reply, with_reply=False)
            elif msg.reply_to_message_id in chat.user_messages:
                out["reply_to_message"] = chat.user_messages[msg.reply_to_message_id]
        if msg.kind == "text":
            out["text"] = version.text
            if version.entities:
                out["entities"] = list(version.entities)
        else:
            assert msg.file is not None
            if msg.kind == "photo":
                out["photo"] = _photo_sizes(msg.file)
            else:
                out["document"] = {
                    "file_id": msg.file.file_id,
                    "file_unique_id": msg.file.file_unique_id,
                    "file_name": msg.file.file_name,
                    "mime_type": msg.file.mime_type,
                    "file_size": len(msg.file.content),
                }
            if version.text:
                out["caption"] = version.text
                if version.entities:
                    out["caption_entities"] = list(version.entities)
        markup = version.reply_markup
        # Only inline keyboards belong to the message; reply keyboards are chat state.
        if markup is not None and "inline_keyboard" in markup:
            out["reply_markup"] = markup
        return out

    def _record(self, chat: _Chat, msg: BotMessage, *, is_edit: bool) -> None:
        chat.events.append(msg)
        if is_edit:
            self.stats.edits += 1
        else:
            self.stats.messages_sent += 1
            markup = msg.current.reply_markup
            if markup is not None and "inline_keyboard" not in markup:
                chat.reply_keyboard = None if markup.get("remove_keyboard") else markup
        chat.pulse()

    # ------------------------------------------------------------------ Bot API methods

    async def _true(self, params: Params) -> bool:
        return True

    async def _get_me(self, params: Params) -> dict[str, Any]:
        return self.bot_user

    async def _get_chat(self, params: Params) -> dict[str, Any]:
        raw = params.get("chat_id")
        chat = self._chats.get(_as_int(raw, "chat_id")) if raw is not None else None
        if chat is None:
            raise bad_request("chat not found")
        return {**chat.chat, "accent_color_id": 0, "max_reaction_count": 11}

    async def _send_chat_action(self, params: Params) -> bool:
        self._chat_for_send(params)
        return True

    async def _send_message(self, params: Params) -> dict[str, Any]:
        chat = self._chat_for_send(params)
        plain, raw, entities, parse_mode = self._parse_text(
            params, "text", "entities", MAX_TEXT, required=True
        )
        markup = self._parse_markup(params)
        reply = self._reply_to(chat, params)
        self._check_flood(chat)
        msg = BotMessage(
            chat_id=chat.id,
            message_id=chat.take_message_id(),
            kind="text",
            date=int(time.time()),
            versions=[MessageVersion(plain, raw, tuple(entities), markup, parse_mode)],
            disable_notification=_as_bool(params.get("disable_notification", False)),
            reply_to_message_id=reply["message_id"] if reply else None,
        )
        chat.messages[msg.message_id] = msg
        self._record(chat, msg, is_edit=False)
        return self._message_dict(chat, msg)

    async def _send_media(self, params: Params, kind: str) -> dict[str, Any]:
        chat = self._chat_for_send(params)
        caption, raw, entities, parse_mode = self._parse_text(
            params, "caption", "caption_entities", MAX_CAPTION, required=False
        )
        markup = self._parse_markup(params)
        reply = self._reply_to(chat, params)
        stored = self._resolve_upload(params, kind)
        self._check_flood(chat)
        msg = BotMessage(
            chat_id=chat.id,
            message_id=chat.take_message_id(),
            kind=kind,
            date=int(time.time()),
            versions=[MessageVersion(caption, raw, tuple(entities), markup, parse_mode)],
            file=stored,
            disable_notification=_as_bool(params.get("disable_notification", False)),
            reply_to_message_id=reply["message_id"] if reply else None,
        )
        if stored.chat_id is None:
            stored.chat_id, stored.message_id = chat.id, msg.message_id
        chat.messages[msg.message_id] = msg
        self._record(chat, msg, is_edit=False)
        return self._message_dict(chat, msg)

    async def _send_document(self, params: Params) -> dict[str, Any]:
        return await self._send_media(params, "document")

    async def _send_photo(self, params: Params) -> dict[str, Any]:
        return await self._send_media(params, "photo")

    def _resolve_upload(self, params: Params, kind: str) -> StoredFile:
        value = params.get(kind)
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value[len("attach://") :])
        if isinstance(value, web.FileField):
            content = value.file.read()
            return self._store_file(
                content,
                file_name=value.filename,
                mime_type=value.content_type,
                kind=kind,
            )
        if isinstance(value, str) and value:
            existing = self._files.get(value)
            if existing is not None:
                return existing
            if value.startswith(("http://", "https://")):
                # No network here: remember the URL as the "content" so tests can see it.
                return self._store_file(
                    value.encode(), file_name=value.rsplit("/", 1)[-1], mime_type=None, kind=kind
                )
            raise bad_request("wrong file identifier/HTTP URL specified")
        if isinstance(value, bytes):
            return self._store_file(value, file_name=None, mime_type=None, kind=kind)
        raise bad_request(f"there is no {kind} in the request")

    def _store_file(
        self,
        content: bytes,
        *,
        file_name: str | None,
        mime_type: str | None,
        kind: str,
        chat_id: int | None = None,
        message_id: int | None = None,
    ) -> StoredFile:
        n = next(self._file_counter)
        digest = hashlib.sha1(content + str(n).encode(), usedforsecurity=False).hexdigest()
        file_id = f"BQACAgIAAxk{kind[:3]}{n:06d}{digest[:24]}"
        folder = "photos" if kind == "photo" else "documents"
        suffix = ""
        if file_name and "." in file_name:
            suffix = "." + file_name.rsplit(".", 1)[-1]
        elif kind == "photo":
            suffix = ".jpg"
        stored = StoredFile(
            file_id=file_id,
            file_unique_id=f"AgAD{digest[:12]}",
            file_name=file_name,
            mime_type=mime_type,
            content=content,
            file_path=f"{folder}/file_{n}{suffix}",
            chat_id=chat_id,
            message_id=message_id,
            kind=kind,
        )
        self._files[file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    async def _get_file(self, params: Params) -> dict[str, Any]:
        stored = self._files.get(str(params.get("file_id", "")))
        if stored is None:
            raise bad_request("invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.content),
            "file_path": stored.file_path,
        }

    def _message_to_edit(self, params: Params) -> tuple[_Chat, BotMessage]:
        if params.get("inline_message_id"):
            raise bad_request("MESSAGE_ID_INVALID")
        chat = self._chat_for_send(params)
        message_id = _as_int(params.get("message_id"), "message_id")
        msg = chat.messages.get(message_id)
        if msg is None or msg.deleted:
            if message_id in chat.user_messages:
                raise bad_request("message can't be edited")
            raise bad_request("message to edit not found")
        return chat, msg

    def _apply_edit(
        self,
        chat: _Chat,
        msg: BotMessage,
        text: str,
        raw: str,
        entities: list[dict[str, Any]],
        markup: dict[str, Any] | None,
        parse_mode: str | None,
    ) -> dict[str, Any]:
        current = msg.current
        if (
            text == current.text
            and tuple(entities) == current.entities
            and markup == current.reply_markup
        ):
            raise bad_request(NOT_MODIFIED)
        self._check_flood(chat)
        msg.versions.append(
            MessageVersion(text, raw, tuple(entities), markup, parse_mode, int(time.time()))
        )
        self._record(chat, msg, is_edit=True)
        return self._message_dict(chat, msg)

    async def _edit_message_text(self, params: Params) -> dict[str, Any]:
        chat, msg = self._message_to_edit(params)
        if msg.kind != "text":
            raise bad_request("there is no text in the message to edit")
        text, raw, entities, parse_mode = self._parse_text(
            params, "text", "entities", MAX_TEXT, required=True
        )
        # As on Telegram, omitting reply_markup in an edit removes the inline keyboard.
        markup = self._parse_markup(params, inline_only=True)
        return self._apply_edit(chat, msg, text, raw, entities, markup, parse_mode)

    async def _edit_message_caption(self, params: Params) -> dict[str, Any]:
        chat, msg = self._message_to_edit(params)
        if msg.kind == "text":
            raise bad_request("there is no caption in the message to edit")
        text, raw, entities, parse_mode = self._parse_text(
            params, "caption", "caption_entities", MAX_CAPTION, required=False
        )
        markup = self._parse_markup(params, inline_only=True)
        return self._apply_edit(chat, msg, text, raw, entities, markup, parse_mode)

    async def _edit_message_reply_markup(self, params: Params) -> dict[str, Any]:
        chat, msg = self._message_to_edit(params)
        markup = self._parse_markup(params, inline_only=True)
        current = msg.current
        return self._apply_edit(
            chat,
            msg,
            current.text,
            current.html,
            list(current.entities),
            markup,
            current.parse_mode,
        )

    async def _delete_message(self, params: Params) -> bool:
        chat = self._chat_for_send(params)
        message_id = _as_int(params.get("message_id"), "message_id")
        msg = chat.messages.get(message_id)
        if msg is not None and not msg.deleted:
            msg.deleted = True
            chat.pulse()
            return True
        if chat.user_messages.pop(message_id, None) is not None:
            return True
        raise bad_request("message to delete not found")

    async def _answer_callback_query(self, params: Params) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        origin = self._callback_queries.pop(query_id, None)
        if origin is None:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        text = params.get("text")
        cache_time = params.get("cache_time")
        self.callback_answers.append(
            CallbackAnswer(
                callback_query_id=query_id,
                user_id=origin[0],
                chat_id=origin[1],
                message_id=origin[2],
                text=None if text is None else str(text),
                show_alert=_as_bool(params.get("show_alert", False)),
                url=params.get("url"),
                cache_time=None if cache_time is None else _as_int(cache_time, "cache_time"),
            )
        )
        return True

    # --- commands

    @staticmethod
    def _scope_key(scope: Any) -> str:
        if scope is None or scope == "":
            return "default"
        if isinstance(scope, str):
            scope = _as_json(scope, "scope") if scope.startswith("{") else {"type": scope}
        if not isinstance(scope, dict) or "type" not in scope:
            raise bad_request("can't parse BotCommandScope JSON object")
        kind = str(scope["type"])
        if kind in ("default", "all_private_chats", "all_group_chats", "all_chat_administrators"):
            return kind
        if kind in ("chat", "chat_administrators"):
            return f"{kind}:{scope.get('chat_id')}"
        if kind == "chat_member":
            return f"chat_member:{scope.get('chat_id')}:{scope.get('user_id')}"
        raise bad_request("wrong BotCommandScope type specified")

    async def _set_my_commands(self, params: Params) -> bool:
        commands = _as_json(params.get("commands"), "commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("can't parse commands JSON object")
        cleaned: list[dict[str, Any]] = []
        for item in commands:
            if not isinstance(item, dict):
                raise bad_request("can't parse BotCommand JSON object")
            name = str(item.get("command", "")).lstrip("/")
            description = str(item.get("description", ""))
            if not (1 <= len(name) <= 32) or not all(
                c.isascii() and (c.isalnum() or c == "_") for c in name
            ):
                raise bad_request("BOT_COMMAND_INVALID")
            if not (1 <= len(description) <= 256):
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
            cleaned.append({"command": name.lower(), "description": description})
        key = (self._scope_key(params.get("scope")), str(params.get("language_code") or ""))
        if cleaned:
            self._commands[key] = cleaned
        else:
            self._commands.pop(key, None)
        return True

    async def _get_my_commands(self, params: Params) -> list[dict[str, Any]]:
        key = (self._scope_key(params.get("scope")), str(params.get("language_code") or ""))
        return list(self._commands.get(key, []))

    async def _delete_my_commands(self, params: Params) -> bool:
        key = (self._scope_key(params.get("scope")), str(params.get("language_code") or ""))
        self._commands.pop(key, None)
        return True

    # --- updates and webhooks

    async def _get_updates(self, params: Params) -> list[dict[str, Any]]:
        if self._webhook is not None:
            raise ApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        offset = _as_int(params.get("offset") or 0, "offset")
        limit = min(max(_as_int(params.get("limit") or 100, "limit"), 1), 100)
        try:
            timeout = max(float(params.get("timeout") or 0), 0.0)
        except ValueError:
            raise bad_request("invalid timeout specified") from None
        allowed = _as_json(params.get("allowed_updates"), "allowed_updates")
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(str(a) for a in allowed) or None
        self._confirm(offset)

        # A newer getUpdates call terminates an older one, as on Telegram.
        self._poll_generation += 1
        generation = self._poll_generation
        self._pulse_updates()
        deadline = time.monotonic() + timeout
        while not self._updates and not self._closing.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            event = self._updates_changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
            if self._poll_generation != generation:
                raise ApiError(
                    409,
                    "Conflict: terminated by other getUpdates request; make sure that only "
                    "one bot instance is running",
                )
        batch = [update for _, update in itertools.islice(self._updates, limit)]
        self.stats.updates_delivered += len(batch)
        return batch

    def _confirm(self, offset: int) -> None:
        updates = self._updates
        if offset > 0:
            while updates and updates[0][0] < offset:
                updates.popleft()
        elif offset < 0:
            while len(updates) > -offset:
                updates.popleft()

    def _pulse_updates(self) -> None:
        self._updates_changed.set()
        self._updates_changed = asyncio.Event()

    async def _set_webhook(self, params: Params) -> bool:
        url = str(params.get("url") or "")
        if not url:
            return await self._delete_webhook(params)
        if not url.startswith(("http://", "https://")):
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        max_connections = DEFAULT_WEBHOOK_CONNECTIONS
        if params.get("max_connections") not in (None, ""):
            max_connections = _as_int(params["max_connections"], "max_connections")
        if not 1 <= max_connections <= MAX_WEBHOOK_CONNECTIONS:
            raise bad_request(
                f"bad webhook: max_connections must be between 1 and {MAX_WEBHOOK_CONNECTIONS}"
            )
        allowed = _as_json(params.get("allowed_updates"), "allowed_updates")
        if _as_bool(params.get("drop_pending_updates", False)):
            self._updates.clear()
        if isinstance(allowed, list):
            self._allowed_updates = frozenset(str(a) for a in allowed) or None
        # A fresh dict on every call: the delivery loop notices the change by identity and
        # reopens its connection pool with the new URL and limit.
        self._webhook = {
            "url": url,
            "secret_token": params.get("secret_token"),
            "max_connections": max_connections,
        }
        self._pulse_updates()
        if self._webhook_task is None or self._webhook_task.done():
            self._webhook_task = asyncio.create_task(self._deliver_webhooks())
        return True

    async def _delete_webhook(self, params: Params) -> bool:
        if _as_bool(params.get("drop_pending_updates", False)):
            self._updates.clear()
        self._webhook = None
        self._pulse_updates()
        return True

    async def _get_webhook_info(self, params: Params) -> dict[str, Any]:
        webhook = self._webhook
        info: dict[str, Any] = {
            "url": webhook["url"] if webhook else "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._updates),
        }
        if webhook is not None:
            info["max_connections"] = webhook["max_connections"]
            if self._webhook_last_error is not None:
                info["last_error_date"], info["last_error_message"] = self._webhook_last_error
        if self._allowed_updates is not None:
            info["allowed_updates"] = sorted(self._allowed_updates)
        return info

    async def _deliver_webhooks(self) -> None:
        """Deliver pending updates to the webhook until it is deleted or the server stops.

        Each ``setWebhook`` gets its own connection pool (``max_connections`` wide); a
        changed webhook is picked up once the requests in flight to the old one are done.
        Nothing awaits between the final check of ``self._webhook`` and returning, so
        ``_set_webhook`` never sees a task that is about to finish without serving it.
        """
        while self._webhook is not None and not self._closing.is_set():
            await self._deliver_to(self._webhook)

    async def _deliver_to(self, webhook: dict[str, Any]) -> None:
        """Serve one webhook configuration with up to ``max_connections`` parallel POSTs.

        As on Telegram, updates of one chat go out one at a time and in order: an update is
        sent only when no earlier pending update of its chat is in flight or waiting, and
        it leaves the queue only once the webhook answered 2xx. A failed one is retried
        after a pause, and its chat's later updates wait behind it; other chats go on.
        """
        limit = int(webhook["max_connections"])
        connector = TCPConnector(limit=limit, limit_per_host=limit)
        in_flight: dict[Any, asyncio.Task[None]] = {}
        async with ClientSession(connector=connector, timeout=ClientTimeout(total=10)) as session:
            try:
                while self._webhook is webhook and not self._closing.is_set():
                    busy = set(in_flight)
                    # Look only so far ahead, so a long backlog of one chat stays cheap.
                    for entry in itertools.islice(self._updates, WEBHOOK_LOOKAHEAD):
                        if len(in_flight) >= limit:
                            break
                        key = _ordering_key(entry[1])
                        if key in busy:
                            continue  # an earlier update of this chat goes first
                        busy.add(key)
                        in_flight[key] = asyncio.create_task(
                            self._post_update(session, webhook, entry)
                        )
                    # Wake on a new update, a webhook change, or a finished delivery.
                    changed = asyncio.ensure_future(self._updates_changed.wait())
                    try:
                        await asyncio.wait(
                            [changed, *in_flight.values()],
                            timeout=1.0,
                            return_when=asyncio.FIRST_COMPLETED,
                        )
                    finally:
                        changed.cancel()
                    for key, task in list(in_flight.items()):
                        if task.done():
                            del in_flight[key]
                            if not task.cancelled() and task.exception() is not None:
                                _LOG.error(
                                    "webhook delivery task failed", exc_info=task.exception()
                                )
                # The webhook changed: let requests to the old one finish. Deleted or
                # stopping: abandon them (their updates stay queued).
                if self._webhook is not None and not self._closing.is_set():
                    await asyncio.gather(*in_flight.values(), return_exceptions=True)
            finally:
                for task in in_flight.values():
                    task.cancel()
                await asyncio.gather(*in_flight.values(), return_exceptions=True)

    async def _post_update(
        self,
        session: ClientSession,
        webhook: dict[str, Any],
        entry: tuple[int, dict[str, Any]],
    ) -> None:
        """One delivery attempt; on success the entry leaves the queue, else pause."""
        headers = {}
        if webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = str(webhook["secret_token"])
        error: str | None = None
        try:
            async with session.post(webhook["url"], json=entry[1], headers=headers) as resp:
                if not 200 <= resp.status < 300:
                    error = f"Wrong response from the webhook: {resp.status} {resp.reason}"
        except TimeoutError:
            error = "Timeout expired"
        except Exception as exc:  # any transport failure: Telegram just retries later
            error = f"Connection failed: {exc!r}"
        if error is None:
            self.stats.updates_delivered += 1
            # drop_pending_updates may have removed it meanwhile. A duplicate (fault
            # injection) is an equal entry of the same chat, so it is still sent once more.
            with contextlib.suppress(ValueError):
                self._updates.remove(entry)
            return
        _LOG.debug("webhook delivery of update %s failed: %s", entry[0], error)
        self.stats.webhook_failures += 1
        self._webhook_last_error = (int(time.time()), error)
        await asyncio.sleep(WEBHOOK_RETRY_PAUSE)

    # ------------------------------------------------------------------ side door: users

    def _user(
        self,
        user_id: int,
        first_name: str | None,
        username: str | None,
        last_name: str | None = None,
        language_code: str | None = None,
    ) -> dict[str, Any]:
        user = self._users.get(user_id)
        if user is None:
            user = {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}
            self._users[user_id] = user
        if first_name is not None:
            user["first_name"] = first_name
        if last_name is not None:
            user["last_name"] = last_name
        if username is not None:
            user["username"] = username
            self._usernames[username.lower()] = user_id
        if language_code is not None:
            user["language_code"] = language_code
        return user

    def set_language(self, user_id: int, language_code: str) -> None:
        """The language of the user's Telegram app: sent as `language_code` with their updates
        from now on."""
        self._user(user_id, None, None, language_code=language_code)

    def register_chat(
        self,
        chat_id: int,
        *,
        chat_type: str = "private",
        first_name: str | None = None,
        username: str | None = None,
        title: str | None = None,
    ) -> None:
        """Make a chat known (as if the user had started the bot) without sending an update."""
        chat = self._ensure_chat(chat_id, chat_type, first_name, username, title)
        chat.started = True

    def _ensure_chat(
        self,
        chat_id: int,
        chat_type: str,
        first_name: str | None,
        username: str | None,
        title: str | None,
    ) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is None:
            if chat_type == "private":
                body: dict[str, Any] = {"id": chat_id, "type": "private"}
                user = self._user(chat_id, first_name, username)
                body["first_name"] = user["first_name"]
                for key in ("last_name", "username"):
                    if key in user:
                        body[key] = user[key]
            else:
                body = {"id": chat_id, "type": chat_type, "title": title or f"Group {chat_id}"}
                if chat_type == "supergroup":
                    body["is_forum"] = False
            chat = _Chat(chat=body)
            self._chats[chat_id] = chat
            if chat_type == "private" and username:
                self._usernames[username.lower()] = chat_id
        elif chat_type == "private":
            if first_name is not None:
                chat.chat["first_name"] = first_name
            if username is not None:
                chat.chat["username"] = username
        return chat

    def _enqueue(self, body: dict[str, Any]) -> dict[str, Any]:
        kind = next(iter(body))
        allowed = self._allowed_updates
        if (allowed is None and kind in _OPT_IN_UPDATES) or (
            allowed is not None and kind not in allowed
        ):
            self.stats.updates_dropped += 1
            return {"update_id": None, **body}
        update = {"update_id": self._next_update_id, **body}
        self._next_update_id += 1
        self._updates.append((update["update_id"], update))
        if self.duplicate_updates:
            self._updates.append((update["update_id"], update))
        self.stats.updates_enqueued += 1
        self._pulse_updates()
        return update

    def _user_message(
        self,
        user_id: int,
        content: dict[str, Any],
        *,
        chat_id: int | None,
        first_name: str | None,
        username: str | None,
        chat_type: str,
        chat_title: str | None,
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        user = self._user(user_id, first_name, username)
        if chat_id is None:
            chat_id = user_id
        if chat_type == "private" and chat_id != user_id:
            raise ValueError("a private chat's id is the user's id")
        chat = self._ensure_chat(chat_id, chat_type, first_name, username, chat_title)
        if chat_type == "private":
            # Writing to the bot (re)starts the conversation, which also undoes a block.
            chat.started = True
            chat.blocked = False
        message: dict[str, Any] = {
            "message_id": chat.take_message_id(),
            "from": user,
            "chat": chat.chat,
            "date": int(time.time()),
            **content,
        }
        if reply_to_message_id is not None:
            replied = chat.messages.get(reply_to_message_id)
            if replied is not None:
                message["reply_to_message"] = self._message_dict(chat, replied, with_reply=False)
        chat.user_messages[message["message_id"]] = message
        if chat.reply_keyboard and chat.reply_keyboard.get("one_time_keyboard"):
            chat.reply_keyboard = None
        chat.last_user_cursor = len(chat.events)
        return self._enqueue({"message": message})

    def send_text(
        self,
        user_id: int,
        text: str,
        *,
        chat_id: int | None = None,
        first_name: str | None = None,
        username: str | None = None,
        chat_type: str = "private",
        chat_title: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> dict[str, Any]:
        """A participant writes ``text``; returns the update as the bot will receive it."""
        return self._user_message(
            user_id,
            _text_content(text),
            chat_id=chat_id,
            first_name=first_name,
            username=username,
            chat_type=chat_type,
            chat_title=chat_title,
            reply_to_message_id=reply_to_message_id,
        )

    def edit_text(
        self, user_id: int, message_id: int, text: str, *, chat_id: int | None = None
    ) -> dict[str, Any]:
        """The participant edits their message ``message_id`` to read ``text``: Telegram sends
        the whole message again as an ``edited_message`` update."""
        chat = self._chats[user_id if chat_id is None else chat_id]
        before = {k: v for k, v in chat.user_messages[message_id].items() if k != "entities"}
        message = {**before, **_text_content(text), "edit_date": int(time.time())}
        chat.user_messages[message_id] = message
        return self._enqueue({"edited_message": message})

    def send_command(
        self,
        user_id: int,
        command: str,
        args: str | None = None,
        *,
        chat_id: int | None = None,
        first_name: str | None = None,
        username: str | None = None,
        chat_type: str = "private",
        chat_title: str | None = None,
        mention_bot: bool | None = None,
    ) -> dict[str, Any]:
        """``/command args``; in groups the command is addressed ``/command@botname``."""
        name = command.lstrip("/")
        if mention_bot is None:
            mention_bot = chat_type != "private"
        if mention_bot:
            name = f"{name}@{self.bot_username}"
        text = f"/{name}" + (f" {args}" if args else "")
        return self.send_text(
            user_id,
            text,
            chat_id=chat_id,
            first_name=first_name,
            username=username,
            chat_type=chat_type,
            chat_title=chat_title,
        )

    def send_sticker(
        self,
        user_id: int,
        *,
        emoji: str = "👍",
        chat_id: int | None = None,
        chat_type: str = "private",
        chat_title: str | None = None,
    ) -> dict[str, Any]:
        stored = self._store_file(
            b"RIFF\x00\x00\x00\x00WEBP", file_name=None, mime_type="image/webp", kind="sticker"
        )
        sticker = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "set_name": "StandInStickers",
            "file_size": len(stored.content),
        }
        return self._user_message(
            user_id,
            {"sticker": sticker},
            chat_id=chat_id,
            first_name=None,
            username=None,
            chat_type=chat_type,
            chat_title=chat_title,
        )

    def send_photo(
        self,
        user_id: int,
        content: bytes = b"\xff\xd8\xff\xe0standin-photo\xff\xd9",
        *,
        caption: str | None = None,
        chat_id: int | None = None,
        chat_type: str = "private",
        chat_title: str | None = None,
    ) -> dict[str, Any]:
        stored = self._store_file(content, file_name=None, mime_type="image/jpeg", kind="photo")
        body: dict[str, Any] = {"photo": _photo_sizes(stored)}
        if caption:
            body["caption"] = caption
        return self._user_message(
            user_id,
            body,
            chat_id=chat_id,
            first_name=None,
            username=None,
            chat_type=chat_type,
            chat_title=chat_title,
        )

    def send_voice(
        self,
        user_id: int,
        content: bytes = b"OggS\x00standin-voice",
        *,
        duration: int = 3,
        chat_id: int | None = None,
        chat_type: str = "private",
        chat_title: str | None = None,
    ) -> dict[str, Any]:
        stored = self._store_file(content, file_name=None, mime_type="audio/ogg", kind="voice")
        voice = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": len(content),
        }
        return self._user_message(
            user_id,
            {"voice": voice},
            chat_id=chat_id,
            first_name=None,
            username=None,
            chat_type=chat_type,
            chat_title=chat_title,
        )

    def send_location(
        self,
        user_id: int,
        latitude: float,
        longitude: float,
        *,
        chat_id: int | None = None,
        chat_type: str = "private",
        chat_title: str | None = None,
    ) -> dict[str, Any]:
        return self._user_message(
            user_id,
            {"location": {"latitude": latitude, "longitude": longitude}},
            chat_id=chat_id,
            first_name=None,
            username=None,
            chat_type=chat_type,
            chat_title=chat_title,
        )

    def send_document(
        self,
        user_id: int,
        content: bytes,
        file_name: str = "document.txt",
        *,
        mime_type: str = "text/plain",
        caption: str | None = None,
        chat_id: int | None = None,
        chat_type: str = "private",
        chat_title: str | None = None,
    ) -> dict[str, Any]:
        stored = self._store_file(
            content, file_name=file_name, mime_type=mime_type, kind="document"
        )
        body: dict[str, Any] = {
            "document": {
                "file_id": stored.file_id,
                "file_unique_id": stored.file_unique_id,
                "file_name": file_name,
                "mime_type": mime_type,
                "file_size": len(content),
            }
        }
        if caption:
            body["caption"] = caption
        return self._user_message(
            user_id,
            body,
            chat_id=chat_id,
            first_name=None,
            username=None,
            chat_type=chat_type,
            chat_title=chat_title,
        )

    def send_update(self, body: dict[str, Any]) -> dict[str, Any]:
        """Enqueue an arbitrary update body (e.g. ``{"my_chat_member": {...}}``) verbatim."""
        return self._enqueue(body)

    def press_button(
        self,
        user_id: int,
        message_id: int,
        callback_data: str,
        *,
        chat_id: int | None = None,
        first_name: str | None = None,
        username: str | None = None,
    ) -> dict[str, Any]:
        """Press an inline button; ``callback_data`` need not exist on the message (forgery)."""
        chat_id = user_id if chat_id is None else chat_id
        chat = self._chats.get(chat_id)
        msg = chat.messages.get(message_id) if chat else None
        if chat is None or msg is None:
            raise LookupError(f"the bot never sent message {message_id} to chat {chat_id}")
        user = self._user(user_id, first_name, username)
        query_id = f"{abs(user_id)}{next(self._callback_counter):08d}"
        self._callback_queries[query_id] = (user_id, chat_id, message_id)
        query: dict[str, Any] = {
            "id": query_id,
            "from": user,
            "chat_instance": str(-abs(hash((self.bot_id, chat_id))) or -1),
            "data": callback_data,
        }
        if msg.deleted:
            # Telegram still delivers presses on messages the client has cached.
            query["message"] = {"message_id": message_id, "chat": chat.chat, "date": 0}
        else:
            query["message"] = self._message_dict(chat, msg)
        chat.last_user_cursor = len(chat.events)
        return self._enqueue({"callback_query": query})

    def press(
        self,
        user_id: int,
        message: BotMessage | int,
        button_text: str,
        *,
        chat_id: int | None = None,
    ) -> dict[str, Any]:
        """Press the inline button labelled ``button_text`` on ``message``."""
        chat_id = user_id if chat_id is None else chat_id
        if isinstance(message, int):
            found = self._chats[chat_id].messages.get(message) if chat_id in self._chats else None
            if found is None:
                raise LookupError(f"the bot never sent message {message} to chat {chat_id}")
            message = found
        button = message.button(button_text)
        if "callback_data" not in button:
            raise LookupError(f"button {button_text!r} has no callback_data: {button}")
        return self.press_button(
            user_id, message.message_id, button["callback_data"], chat_id=message.chat_id
        )

    # ------------------------------------------------------------------ side door: inspect

    def messages(self, chat_id: int, *, include_deleted: bool = False) -> list[BotMessage]:
        """The bot's messages to ``chat_id`` in order (each object shows its current version)."""
        chat = self._chats.get(chat_id)
        if chat is None:
            return []
        return [m for m in chat.messages.values() if include_deleted or not m.deleted]

    def last_message(self, chat_id: int) -> BotMessage | None:
        chat = self._chats.get(chat_id)
        if chat is None:
            return None
        for msg in reversed(chat.messages.values()):
            if not msg.deleted:
                return msg
        return None

    def cursor(self, chat_id: int) -> int:
        """The number of sends+edits to the chat so far; pass as ``after=`` to wait for more."""
        chat = self._chats.get(chat_id)
        return len(chat.events) if chat else 0

    async def wait_for_message(
        self,
        chat_id: int,
        *,
        after: int | None = None,
        after_message_id: int | None = None,
        predicate: Predicate | None = None,
        timeout: float = 5.0,
    ) -> BotMessage:
        """Wait for the first bot send or edit in the chat that matches ``predicate``.

        ``after`` is a cursor (see :meth:`cursor`); by default only what the bot did since
        the participant's latest update in this chat counts, so the bot's answer is found
        even if it arrived before this call. ``after_message_id`` ignores everything about
        messages with that id or lower. Raises TimeoutError listing what the chat got.
        """
        deadline = time.monotonic() + timeout
        chat = self._chats.get(chat_id)
        position = after
        while True:
            if chat is None:
                chat = self._chats.get(chat_id)
            if chat is not None:
                if position is None:
                    position = chat.last_user_cursor
                events = chat.events
                while position < len(events):
                    msg = events[position]
                    position += 1
                    if after_message_id is not None and msg.message_id <= after_message_id:
                        continue
                    if msg.deleted:
                        continue
                    if predicate is None or predicate(msg):
                        return msg
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(self._describe_chat(chat_id, timeout))
            if chat is None:
                await asyncio.sleep(min(remaining, 0.02))
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(chat.changed.wait(), remaining)

    def _describe_chat(self, chat_id: int, timeout: float) -> str:
        chat = self._chats.get(chat_id)
        if chat is None:
            return f"no matching bot message in chat {chat_id} within {timeout}s: unknown chat"
        got = [
            f"  #{m.message_id}{' (edited)' if m.edited else ''}"
            f"{' (deleted)' if m.deleted else ''}: {m.text[:200]!r}"
            + (f" buttons={[b.get('text') for b in m.buttons]}" if m.buttons else "")
            for m in chat.messages.values()
        ]
        listing = "\n".join(got[-20:]) if got else "  (nothing)"
        return (
            f"no matching bot message in chat {chat_id} within {timeout}s; "
            f"the chat received {len(got)} message(s):\n{listing}"
        )

    def commands(
        self, scope: str | dict[str, Any] = "default", language_code: str = ""
    ) -> list[dict[str, Any]]:
        """Commands set for exactly this scope (``"default"``, ``{"type": "chat", ...}``...)."""
        return list(self._commands.get((self._scope_key(scope), language_code), []))

    def documents(self, chat_id: int) -> list[StoredFile]:
        return [m.file for m in self.messages(chat_id) if m.kind == "document" and m.file]

    def photos(self, chat_id: int) -> list[StoredFile]:
        return [m.file for m in self.messages(chat_id) if m.kind == "photo" and m.file]

    def reply_keyboard(self, chat_id: int) -> dict[str, Any] | None:
        """The reply keyboard the participant currently sees in this chat, if any."""
        chat = self._chats.get(chat_id)
        return chat.reply_keyboard if chat else None

    @property
    def pending_updates(self) -> int:
        return len(self._updates)

    def reset_stats(self) -> None:
        self.stats = StandInStats()

    # ------------------------------------------------------------------ side door: faults

    def block_chat(self, chat_id: int, *, notify: bool = False) -> None:
        """Sends/edits to the chat now fail with 403, as when the user blocks the bot.

        With ``notify`` the bot also gets the my_chat_member update Telegram sends.
        """
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = self._ensure_chat(
                chat_id, "private" if chat_id > 0 else "group", None, None, None
            )
        chat.blocked = True
        if notify:
            status = "kicked"
            self._enqueue(
                {
                    "my_chat_member": {
                        "chat": chat.chat,
                        "from": self._users.get(
                            chat_id, {"id": chat_id, "is_bot": False, "first_name": "User"}
                        ),
                        "date": int(time.time()),
                        "old_chat_member": {"status": "member", "user": self.bot_user},
                        "new_chat_member": {
                            "status": status,
                            "user": self.bot_user,
                            "until_date": 0,
                        },
                    }
                }
            )

    def unblock_chat(self, chat_id: int) -> None:
        chat = self._chats.get(chat_id)
        if chat is not None:
            chat.blocked = False

    def fail_next(self, n: int = 1, status: int = 500, method: str | None = None) -> None:
        """The next ``n`` Bot API requests (of ``method``, if given) fail with ``status``."""
        if n > 0:
            self._faults.append(_Fault(n, status, method.lower() if method else None))

    def slow(self, seconds: float, method: str | None = None) -> None:
        """Delay answers (to ``method``, or all) by ``seconds``; 0 switches it off.

        The request is carried out after the delay even if the client gave up, just as a
        slow Telegram may deliver a message whose response the bot never saw.
        """
        key = method.lower() if method else None
        if seconds > 0:
            self._slow[key] = seconds
        else:
            self._slow.pop(key, None)

    @property
    def flood_limits(self) -> FloodLimits | None:
        return self._flood.limits if self._flood else None

    @flood_limits.setter
    def flood_limits(self, value: bool | FloodLimits | None) -> None:
        """``True`` for Telegram-like defaults, a FloodLimits for custom rates, off otherwise."""
        if value is True:
            self._flood = FloodControl(FloodLimits())
        elif isinstance(value, FloodLimits):
            self._flood = FloodControl(value)
        else:
            self._flood = None


def _photo_sizes(stored: StoredFile) -> list[dict[str, Any]]:
    width, height = _image_size(stored.content)
    return [
        {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "width": width,
            "height": height,
            "file_size": len(stored.content),
        }
    ]


def _image_size(content: bytes) -> tuple[int, int]:
    # Only PNG is cheap to measure; other formats report a plausible thumbnail size.
    if content[:8] == b"\x89PNG\r\n\x1a\n" and len(content) >= 24:
        return int.from_bytes(content[16:20], "big"), int.from_bytes(content[20:24], "big")
    return 320, 240


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
