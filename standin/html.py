"""Telegram's HTML parse mode: turn the bot's HTML into plain text plus message entities.

The parser follows the behaviour of tdlib's ``parse_html`` (which the real Bot API server
uses) closely enough that the error messages a bot sees are the ones Telegram would send:
an unsupported tag, an unmatched or unclosed tag all fail the whole request with
``Bad Request: can't parse entities: ...``. Offsets and lengths are in UTF-16 code units,
as in the Bot API, so PTB's ``Message.text_html`` reconstructs the markup correctly.
"""

from __future__ import annotations

from typing import Any

SUPPORTED_TAGS = frozenset(
    {
        "a",
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    }
)

_SIMPLE_ENTITY = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}

_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}

# tdlib treats these bytes as HTML whitespace inside tags.
_SPACES = frozenset(" \t\r\n\f\v")


class EntityParseError(ValueError):
    """The text is not valid Telegram HTML; ``str(exc)`` is tdlib's wording."""


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Bot API entity offsets."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _byte_offset(text: str, index: int) -> int:
    # Telegram reports byte offsets in the UTF-8 source, not character indices.
    return len(text[:index].encode("utf-8"))


def _decode_entity(text: str, i: int) -> tuple[str, int] | None:
    """Decode an HTML entity starting at ``text[i] == '&'``; return (char, next index).

    Unknown or malformed entities return None so the ampersand is kept literally, which is
    what Telegram does with e.g. ``&nbsp;`` or a bare ``&``.
    """
    end = text.find(";", i + 1, i + 12)
    if end == -1:
        return None
    body = text[i + 1 : end]
    if body.startswith(("#x", "#X")):
        digits, base = body[2:], 16
    elif body.startswith("#"):
        digits, base = body[1:], 10
    else:
        ch = _NAMED_ENTITIES.get(body)
        return (ch, end + 1) if ch is not None else None
    if not digits:
        return None
    try:
        code = int(digits, base)
    except ValueError:
        return None
    if code == 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        return None
    return chr(code), end + 1


def _read_attribute_value(text: str, i: int, n: int) -> tuple[str, int]:
    """Read a quoted or unquoted attribute value starting at ``i``."""
    out: list[str] = []
    if text[i] in "'\"":
        quote = text[i]
        i += 1
        while i < n and text[i] != quote:
            if text[i] == "&":
                decoded = _decode_entity(text, i)
                if decoded is not None:
                    out.append(decoded[0])
                    i = decoded[1]
                    continue
            out.append(text[i])
            i += 1
        if i < n:
            i += 1
        return "".join(out), i
    while i < n and text[i] not in _SPACES and text[i] != ">":
        out.append(text[i])
        i += 1
    return "".join(out), i


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram HTML; return the plain text and its entities (Bot API dicts).

    Raises EntityParseError with Telegram's message on malformed input.
    """
    if "<" not in text and "&" not in text:
        return text, []

    n = len(text)
    result: list[str] = []
    offset = 0  # UTF-16 offset into result
    # Each open tag: (tag_name, argument, utf16 start offset)
    stack: list[tuple[str, str, int]] = []
    entities: list[dict[str, Any]] = []
    i = 0
    while i < n:
        ch = text[i]
        if ch == "&":
            decoded = _decode_entity(text, i)
            if decoded is not None:
                result.append(decoded[0])
                offset += 2 if ord(decoded[0]) > 0xFFFF else 1
                i = decoded[1]
                continue
        if ch != "<":
            result.append(ch)
            offset += 2 if ord(ch) > 0xFFFF else 1
            i += 1
            continue

        begin = i
        i += 1
        if i < n and text[i] == "/":
            if not stack:
                raise EntityParseError(
                    f"Unexpected end tag at byte offset {_byte_offset(text, begin)}"
                )
            i += 1
            name_start = i
            while i < n and text[i] not in _SPACES and text[i] != ">":
                i += 1
            end_name = text[name_start:i].lower()
            while i < n and text[i] in _SPACES:
                i += 1
            if i >= n or text[i] != ">":
                raise EntityParseError(
                    f"Unclosed end tag at byte offset {_byte_offset(text, begin)}"
                )
            i += 1
            tag, argument, start = stack.pop()
            if end_name and end_name != tag:
                raise EntityParseError(
                    f"Unmatched end tag at byte offset {_byte_offset(text, begin)}, "
                    f'expected "</{tag}>", found "</{end_name}>"'
                )
            entity = _make_entity(tag, argument, start, offset - start, stack, entities)
            if entity is not None:
                entities.append(entity)
            continue

        name_start = i
        while i < n and text[i] not in _SPACES and text[i] != ">":
            i += 1
        if i >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
        tag = text[name_start:i].lower()
        if tag not in SUPPORTED_TAGS:
            raise EntityParseError(
                f'Unsupported start tag "{tag}" at byte offset {_byte_offset(text, begin)}'
            )
        argument = ""
        expandable = False
        while i < n and text[i] != ">":
            while i < n and text[i] in _SPACES:
                i += 1
            if i >= n or text[i] == ">":
                break
            attr_start = i
            while i < n and text[i] not in _SPACES and text[i] not in "=>":
                i += 1
            attr = text[attr_start:i].lower()
            if not attr:
                raise EntityParseError(
                    f'Empty attribute name in the tag "{tag}" at byte offset '
                    f"{_byte_offset(text, begin)}"
                )
            while i < n and text[i] in _SPACES:
                i += 1
            if i >= n or text[i] != "=":
                if tag == "blockquote" and attr == "expandable":
                    expandable = True
                    continue
                raise EntityParseError(
                    f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                    f"at byte offset {_byte_offset(text, begin)}"
                )
            i += 1
            while i < n and text[i] in _SPACES:
                i += 1
            if i >= n:
                raise EntityParseError(
                    f'Unclosed start tag "{tag}" at byte offset {_byte_offset(text, begin)}'
                )
            value, i = _read_attribute_value(text, i, n)
            if i >= n:
                raise EntityParseError(
                    f"Unclosed start tag at byte offset {_byte_offset(text, begin)}"
                )
            if tag == "a" and attr == "href":
                argument = value
            elif tag == "code" and attr == "class" and value.startswith("language-"):
                argument = value[len("language-") :]
            elif tag == "span" and attr == "class" and value.startswith("tg-"):
                argument = value[3:]
            elif tag == "tg-emoji" and attr == "emoji-id":
                argument = value
        if i >= n:
            raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
        i += 1  # skip '>'
        if tag == "span" and argument != "spoiler":
            raise EntityParseError(
                f'Tag "span" must have class "tg-spoiler" at byte offset '
                f"{_byte_offset(text, begin)}"
            )
        if tag == "blockquote" and expandable:
            argument = "expandable"
        stack.append((tag, argument, offset))

    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities = _merge_pre_language(entities)
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(result), entities


def _make_entity(
    tag: str,
    argument: str,
    start: int,
    length: int,
    stack: list[tuple[str, str, int]],
    entities: list[dict[str, Any]],
) -> dict[str, Any] | None:
    if length == 0:
        # Telegram silently drops entities that cover no text.
        return None
    if tag in _SIMPLE_ENTITY:
        return {"type": _SIMPLE_ENTITY[tag], "offset": start, "length": length}
    if tag == "a":
        if not argument:
            return None
        return {"type": "text_link", "offset": start, "length": length, "url": argument}
    if tag == "blockquote":
        kind = "expandable_blockquote" if argument == "expandable" else "blockquote"
        return {"type": kind, "offset": start, "length": length}
    if tag == "tg-emoji":
        if not argument:
            return None
        return {
            "type": "custom_emoji",
            "offset": start,
            "length": length,
            "custom_emoji_id": argument,
        }
    if tag == "pre":
        return {"type": "pre", "offset": start, "length": length}
    if tag == "code":
        # <pre><code class="language-x">...</code></pre> is one pre entity with a language.
        if stack and stack[-1][0] == "pre" and stack[-1][2] == start:
            if argument:
                entities.append(
                    {
                        "type": "pre",
                        "offset": start,
                        "length": length,
                        "language": argument,
                        "_inner": True,
                    }
                )
            return None
        return {"type": "code", "offset": start, "length": length}
    return None


def _merge_pre_language(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fold the language of an inner ``<code class=language-x>`` into its ``<pre>`` entity."""
    inner = {(e["offset"], e["length"]): e["language"] for e in entities if e.get("_inner")}
    if not inner:
        return entities
    out: list[dict[str, Any]] = []
    for e in entities:
        if e.get("_inner"):
            continue
        if e["type"] == "pre" and (e["offset"], e["length"]) in inner:
            e = {**e, "language": inner[(e["offset"], e["length"])]}
        out.append(e)
    return out


def strip_text(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Trim surrounding whitespace as Telegram does and shift/clip entities to match."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    if not stripped:
        return "", []
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    total = utf16_len(stripped)
    out: list[dict[str, Any]] = []
    for e in entities:
        start = max(e["offset"] - lead, 0)
        end = min(e["offset"] - lead + e["length"], total)
        if end > start:
            out.append({**e, "offset": start, "length": end - start})
    return stripped, out
