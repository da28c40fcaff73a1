"""What a delivery row asks to send (``Delivery.payload``, JSON). The Bot API client
(bot.telegram.client.ConsultBot.send_delivery) turns a payload into a request.

* Text: ``OutgoingMessage.to_payload()``, i.e.
  ``{"text": "<b>Telegram HTML</b>", "buttons": [[{"text": "Start", "callback_data": "p:go:1"}]],
  "disable_notification": false}``. Texts over 4,096 characters are refused by Telegram (400)
  and end FAILED: split them before you enqueue.
* Document: ``{"document": {"filename": "digest.html", "content_b64": "<base64>"}, "caption":
  "<b>HTML</b>, at most 1,024 characters", "buttons": [...]}``; instead of ``content_b64`` a
  ``"path"`` to a file readable by the sending process may be given (keep payloads small: a
  path for anything over a few hundred kB). Build one with :func:`document_payload`.
* Photo: ``{"photo": {"content_b64": "<base64 PNG or JPEG>"}, "caption": "<b>HTML</b>, at most
  1,024 characters", "buttons": [...]}`` (or a ``"path"``, as for a document), sent with
  sendPhoto so it shows inline in the chat. Build one with :func:`photo_payload`.

Once a delivery is finished (SENT, FAILED, UNREACHABLE or CANCELLED: nothing sends it again)
its payload is replaced with :data:`PURGED`, so people's words (a digest's quotes, its file)
are not kept after they were delivered. What dedupe and later edits need lives in columns of
their own (``dedupe_key``, ``telegram_message_id``) and stays.

``Delivery.kind`` is free text for reporting and for what a round close cancels: the round code
uses ``invitation`` and ``reminder`` (cancelled when the round closes), ``notice`` for the
coordinator; use ``digest``, ``feedback``... for yours. Give a ``dedupe_key`` whenever the same
delivery could be written twice (e.g. ``digest:<round>:<participant>``).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

CAPTION_LIMIT = 1024

# A finished delivery's payload: what it said is gone, and that it was purged is plain.
PURGED: dict[str, Any] = {"purged": True}


def document_payload(
    filename: str,
    *,
    content: bytes | None = None,
    path: Path | None = None,
    caption: str = "",
    buttons: list[list[dict[str, str]]] | None = None,
) -> dict[str, Any]:
    """A payload that sends a file (see the module docstring)."""
    if (content is None) == (path is None):
        raise ValueError("give either content or path")
    document: dict[str, Any] = {"filename": filename}
    if content is not None:
        document["content_b64"] = base64.b64encode(content).decode("ascii")
    else:
        document["path"] = str(path)
    return {"document": document, "caption": caption, "buttons": buttons or []}


def photo_payload(
    content: bytes,
    *,
    caption: str = "",
    buttons: list[list[dict[str, str]]] | None = None,
) -> dict[str, Any]:
    """A payload that sends an image inline (see the module docstring). A caption over
    Telegram's limit is refused here, where the caller can fix it, not as a 400 at send time."""
    if len(caption) > CAPTION_LIMIT:
        raise ValueError(f"caption over {CAPTION_LIMIT} characters")
    return {
        "photo": {"content_b64": base64.b64encode(content).decode("ascii")},
        "caption": caption,
        "buttons": buttons or [],
    }


def media_content(media: dict[str, Any]) -> bytes:
    """The bytes of a payload's document or photo: inline, or read from its path (OSError
    when the file has gone)."""
    if "content_b64" in media:
        return base64.b64decode(media["content_b64"])
    return Path(media["path"]).read_bytes()
