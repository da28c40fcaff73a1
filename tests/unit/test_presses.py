"""Callback data is parsed once, into typed values; anything else is None."""

from __future__ import annotations

import pytest

from bot.participation.presses import (
    ConsentPress,
    ForgetPress,
    Press,
    ProfilePress,
    SwitchPress,
    parse,
)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("p:go:12", Press("go", 12)),
        ("p:later:12", Press("later", 12)),
        ("p:no:12", Press("no", 12)),
        ("a:12:34:0", Press("a", 12, 34, "0")),
        ("a:12:34:yes", Press("a", 12, 34, "yes")),
        ("a:12:34:no", Press("a", 12, 34, "no")),
        ("a:12:34:-2", Press("a", 12, 34, "-2")),  # a scale may start below zero
        ("t:12:34:2", Press("t", 12, 34, "2")),
        ("d:12:34", Press("d", 12, 34)),
        ("s:12:34", Press("s", 12, 34)),
        ("e:12:34", Press("e", 12, 34)),
        ("p:go:999999999", Press("go", 999_999_999)),  # nine digits: the most an id may have
        ("c:ok:AbC-_9", ConsentPress(True, "AbC-_9")),
        ("c:ok:", ConsentPress(True, "")),  # joining as an individual
        ("c:no", ConsentPress(False)),
        ("j:yes:AbC-_9", SwitchPress(True, "AbC-_9")),
        ("j:no", SwitchPress(False)),
        ("pf:0:3", ProfilePress(0, 3, joining=False)),
        ("pf:1:0:j", ProfilePress(1, 0, joining=True)),
        ("f:yes", ForgetPress(True)),
        ("f:no", ForgetPress(False)),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_good_data(data: str, expected: object) -> None:
    assert parse(data) == expected


@pytest.mark.parametrize(
    "data",
    [
        "",
        "garbage",
        "p:go:",
        "p:go:0",  # ids start at 1
        "p:go:1234567890",  # ten digits: longer than any id
        "p:go:" + "9" * 30,
        "p:go:²",  # "²".isdigit() is True, and int() refuses it
        "p:go:١٢",  # Arabic-Indic digits: int() reads them, no id is written so
        "p:go:１２",  # full-width digits
        "p:go:+12",
        "p:go:-12",
        "p:go: 12",
        "p:go:12 ",
        "p:go:12:extra",
        "p:start:12",
        "a:12:34",
        "a:12:34:",
        "a:12:34:²",
        "a:12:34:٣",
        "a:12:34:maybe",
        "a:12:34:0:0",
        "a:not:a:number",
        "a:12:x:0",
        "t:12:34:-1",
        "t:12:34:yes",
        "t:12:34:²",
        "d:12",
        "d:12:34:0",
        "s:12:²",
        "e:²:34",
        "c:ok",
        "c:ok:bad code",
        "c:ok:коде",
        "c:maybe",
        "j:yes:",
        "j:yes:a/b",
        "pf:1",
        "pf:1:²",
        "pf:1:2:x",
        "pf:-1:2",
        "f:maybe",
        "f:yes:1",
        "c:ok:" + "a" * 60,  # over Telegram's 64 bytes: not made by this bot
        "a:1:2:" + "1" * 60,
    ],
)
def test_bad_data(data: str) -> None:
    assert parse(data) is None


def test_every_button_the_bot_makes_fits_in_64_bytes_and_parses() -> None:
    longest = "a:999999999:999999999:-999999999"
    assert len(longest.encode()) <= 64 and parse(longest) == Press(
        "a", 999_999_999, 999_999_999, "-999999999"
    )
