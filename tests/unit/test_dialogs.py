"""The dialogs' shared helpers: numbers in typed text and callback data are ASCII digits."""

from __future__ import annotations

import pytest

from bot.kernel.dialogs import number


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7", 7),
        ("007", 7),
        ("123456789", 123456789),
        ("1234567890", None),  # ten digits: no round or action id is that long
        ("", None),
        ("-1", None),
        ("+1", None),
        (" 1", None),
        ("1.0", None),
        ("²", None),  # str.isdigit says yes, int() refuses
        ("٣", None),  # an Arabic-Indic three: int() reads it, we do not
    ],
)
def test_number_takes_only_ascii_digits(text: str, expected: int | None) -> None:
    assert number(text) == expected
