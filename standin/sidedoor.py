"""The side door over HTTP: the stand-in's Python API as JSON under ``/_standin/``.

A bot running in a subprocess (crash tests, benchmarks, the demo) is driven from outside
through these routes. Every route accepts a JSON object body (POST) or query parameters
(GET) and answers ``{"ok": true, "result": ...}`` or ``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .models import BotMessage, FloodLimits
from .server import BotApiServer

Args = dict[str, Any]
Action = Callable[[BotApiServer, Args], Any | Awaitable[Any]]

_USER_KW = ("chat_id", "first_name", "username", "chat_type", "chat_title")
_MEDIA_KW = ("chat_id", "chat_type", "chat_title")


def _pick(args: Args, names: tuple[str, ...]) -> Args:
    return {k: args[k] for k in names if args.get(k) is not None}


def _int(args: Args, name: str) -> int:
    if name not in args:
        raise ValueError(f"missing {name!r}")
    return int(args[name])


def _opt_int(args: Args, name: str) -> int | None:
    value = args.get(name)
    return None if value is None or value == "" else int(value)


def _msg(msg: BotMessage | None) -> dict[str, Any] | None:
    return msg.to_dict() if msg is not None else None


def _bytes(args: Args, default: bytes | None = None) -> bytes:
    if "content_b64" in args:
        return base64.b64decode(args["content_b64"])
    if "content" in args:
        return str(args["content"]).encode("utf-8")
    if default is None:
        raise ValueError("missing 'content_b64' (or 'content' as text)")
    return default


def _predicate(args: Args) -> Callable[[BotMessage], bool] | None:
    """Predicates cannot travel as JSON, so the common ones are spelled as fields."""
    contains = args.get("text_contains")
    pattern = re.compile(args["text_regex"]) if args.get("text_regex") else None
    button = args.get("has_button")
    kind = args.get("kind")
    if contains is None and pattern is None and button is None and kind is None:
        return None

    def check(msg: BotMessage) -> bool:
        if contains is not None and contains not in msg.text:
            return False
        if pattern is not None and not pattern.search(msg.text):
            return False
        if button is not None and all(b.get("text") != button for b in msg.buttons):
            return False
        return kind is None or msg.kind == kind

    return check


async def _wait(s: BotApiServer, a: Args) -> dict[str, Any] | None:
    msg = await s.wait_for_message(
        _int(a, "chat_id"),
        after=_opt_int(a, "after"),
        after_message_id=_opt_int(a, "after_message_id"),
        predicate=_predicate(a),
        timeout=float(a.get("timeout", 5.0)),
    )
    return _msg(msg)


def _flood(s: BotApiServer, a: Args) -> dict[str, Any] | None:
    enabled = a.get("enabled", True)
    if isinstance(enabled, str):
        enabled = enabled.lower() in ("1", "true", "on", "yes")
    if not enabled:
        s.flood_limits = False
    else:
        fields = {k: float(v) for k, v in a.items() if k in FloodLimits.__dataclass_fields__}
        s.flood_limits = FloodLimits(**fields)
    limits = s.flood_limits
    return None if limits is None else dict(limits.__dict__)


def _duplicates(s: BotApiServer, a: Args) -> bool:
    enabled = a.get("enabled", True)
    if isinstance(enabled, str):
        enabled = enabled.lower() in ("1", "true", "on", "yes")
    s.duplicate_updates = bool(enabled)
    return s.duplicate_updates


ACTIONS: dict[str, Action] = {
    # participants
    "send_text": lambda s, a: s.send_text(
        _int(a, "user_id"), str(a["text"]), **_pick(a, (*_USER_KW, "reply_to_message_id"))
    ),
    "send_command": lambda s, a: s.send_command(
        _int(a, "user_id"), str(a["command"]), a.get("args"), **_pick(a, _USER_KW)
    ),
    "press_button": lambda s, a: s.press_button(
        _int(a, "user_id"),
        _int(a, "message_id"),
        str(a["callback_data"]),
        **_pick(a, ("chat_id",)),
    ),
    "press": lambda s, a: s.press(
        _int(a, "user_id"),
        _int(a, "message_id"),
        str(a["button_text"]),
        **_pick(a, ("chat_id",)),
    ),
    "send_sticker": lambda s, a: s.send_sticker(
        _int(a, "user_id"), **_pick(a, (*_MEDIA_KW, "emoji"))
    ),
    "send_photo": lambda s, a: s.send_photo(
        _int(a, "user_id"),
        _bytes(a, b"\xff\xd8\xff\xe0standin-photo\xff\xd9"),
        **_pick(a, (*_MEDIA_KW, "caption")),
    ),
    "send_voice": lambda s, a: s.send_voice(
        _int(a, "user_id"),
        _bytes(a, b"OggS\x00standin-voice"),
        **_pick(a, (*_MEDIA_KW, "duration")),
    ),
    "send_location": lambda s, a: s.send_location(
        _int(a, "user_id"), float(a["latitude"]), float(a["longitude"]), **_pick(a, _MEDIA_KW)
    ),
    "send_document": lambda s, a: s.send_document(
        _int(a, "user_id"),
        _bytes(a),
        str(a.get("file_name", "document.txt")),
        **_pick(a, (*_MEDIA_KW, "mime_type", "caption")),
    ),
    "send_update": lambda s, a: s.send_update(a["update"]),
    "register_chat": lambda s, a: s.register_chat(
        _int(a, "chat_id"), **_pick(a, ("chat_type", "first_name", "username", "title"))
    ),
    # inspection
    "messages": lambda s, a: [
        m.to_dict()
        for m in s.messages(_int(a, "chat_id"), include_deleted=bool(a.get("include_deleted")))
    ],
    "last_message": lambda s, a: _msg(s.last_message(_int(a, "chat_id"))),
    "cursor": lambda s, a: s.cursor(_int(a, "chat_id")),
    "wait_for_message": _wait,
    "callback_answers": lambda s, a: [c.to_dict() for c in s.callback_answers],
    "commands": lambda s, a: s.commands(a.get("scope", "default"), str(a.get("language_code", ""))),
    "documents": lambda s, a: [
        f.to_dict(with_content=True) for f in s.documents(_int(a, "chat_id"))
    ],
    "photos": lambda s, a: [f.to_dict(with_content=True) for f in s.photos(_int(a, "chat_id"))],
    "reply_keyboard": lambda s, a: s.reply_keyboard(_int(a, "chat_id")),
    "stats": lambda s, a: {**s.stats.to_dict(), "pending_updates": s.pending_updates},
    "reset_stats": lambda s, a: s.reset_stats(),
    "info": lambda s, a: {
        "url": s.url,
        "bot_base_url": s.bot_base_url,
        "file_base_url": s.file_base_url,
        "bot": s.bot_user,
    },
    # faults
    "block_chat": lambda s, a: s.block_chat(_int(a, "chat_id"), notify=bool(a.get("notify"))),
    "unblock_chat": lambda s, a: s.unblock_chat(_int(a, "chat_id")),
    "fail_next": lambda s, a: s.fail_next(
        int(a.get("n", 1)), int(a.get("status", 500)), a.get("method")
    ),
    "slow": lambda s, a: s.slow(float(a.get("seconds", 0)), a.get("method")),
    "duplicate_updates": _duplicates,
    "flood_limits": _flood,
}


def add_side_door_routes(app: web.Application, stand_in: BotApiServer) -> None:
    async def handle(request: web.Request) -> web.Response:
        action = ACTIONS.get(request.match_info["action"])
        if action is None:
            return web.json_response(
                {"ok": False, "error": f"unknown action; known: {sorted(ACTIONS)}"}, status=404
            )
        args: Args = dict(request.query)
        if request.method == "POST" and request.body_exists:
            try:
                body = await request.json()
            except ValueError:
                return web.json_response({"ok": False, "error": "body must be JSON"}, status=400)
            if isinstance(body, dict):
                args.update(body)
        try:
            result = action(stand_in, args)
            if isinstance(result, Awaitable):
                result = await result
        except TimeoutError as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=408)
        except (LookupError, ValueError, TypeError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response({"ok": True, "result": result})

    app.router.add_route("*", "/_standin/{action}", handle)


class BotApiStandIn(BotApiServer):
    """The stand-in: the Bot API, and the side door both in Python and over HTTP."""

    def make_app(self) -> web.Application:
        app = super().make_app()
        add_side_door_routes(app, self)
        return app
