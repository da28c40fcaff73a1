"""Callback data of a participant's buttons, parsed once into typed values.

Every number must be 1-9 ASCII digits: `str.isdigit` also accepts "²" and other Unicode
digits, which `int()` then refuses or reads as another number. Data in no known shape parses
to None; the caller answers it with a short, kind reply and logs it.

  p:go:<inv>  p:later:<inv>  p:no:<inv>     the round intro / reminder
  a:<inv>:<q>:<v>                            answer: option index, scale number, yes | no
  t:<inv>:<q>:<i>   d:<inv>:<q>              multi: toggle option i, Done
  s:<inv>:<q>                                skip an optional text question
  e:<inv>:<q>                                change an answer after finishing
  c:ok:<code>  c:no                          the privacy notice (empty code: as an individual)
  j:yes:<code>  j:no                         someone already joined opened another invite link
  pf:<q>:<o>   pf:<q>:<o>:j                  a profile answer (":j" while joining)
  f:yes  f:no                                /forget's confirmation
  l:<lang>   l:<lang>:j:<code>               /language, and the choice before the notice
  c:ok:<code>:<lang>                         the notice, in the language chosen before it
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# The first part of the callback data of every button above: handlers route on it.
PREFIXES = ("p", "a", "t", "d", "s", "e", "c", "j", "pf", "f", "l")
MAX_DATA_BYTES = 64  # Telegram's limit; anything longer was not made by this bot

_NUMBER = re.compile(r"[0-9]{1,9}")
_SCALE_VALUE = re.compile(r"-?[0-9]{1,9}")
_YESNO_OR_NUMBER = re.compile(r"yes|no|-?[0-9]{1,9}")
# An invite code as invites.create_invite makes it (token_urlsafe), empty for an individual.
_CODE = re.compile(r"[A-Za-z0-9_-]*")
_LANGUAGE = re.compile(r"[a-z]{2,3}")  # whether the deployment offers it is the service's check

JourneyKind = Literal["go", "later", "no", "a", "t", "d", "s", "e"]


@dataclass(frozen=True)
class Press:
    """A press on a round's intro or on a question card."""

    kind: JourneyKind
    invitation_id: int
    question_id: int | None = None
    value: str | None = None  # "a": option index, scale number, yes | no; "t": option index
    on: int | None = None  # the pressed message's id, when Telegram says it (not in the data)


@dataclass(frozen=True)
class ConsentPress:
    yes: bool  # agreed to the privacy notice
    code: str = ""  # the invite's
    language: str | None = None  # chosen before the notice (None: only one is offered)


@dataclass(frozen=True)
class LanguagePress:
    language: str
    joining: bool = False  # chosen before the privacy notice: nothing is stored yet
    code: str = ""  # while joining: the invite's


@dataclass(frozen=True)
class SwitchPress:
    yes: bool  # join by the other invite
    code: str = ""


@dataclass(frozen=True)
class ProfilePress:
    question_index: int
    option_index: int
    joining: bool


@dataclass(frozen=True)
class ForgetPress:
    yes: bool  # erase everything


AnyPress = Press | ConsentPress | SwitchPress | ProfilePress | ForgetPress | LanguagePress


def _number(text: str) -> int | None:
    return int(text) if _NUMBER.fullmatch(text) and int(text) > 0 else None


def parse(data: str) -> AnyPress | None:
    """The press `data` stands for, or None if it is malformed or forged."""
    if len(data.encode()) > MAX_DATA_BYTES:
        return None
    parts = data.split(":")
    head, rest = parts[0], parts[1:]
    if head == "p" and len(rest) == 2 and rest[0] in ("go", "later", "no"):
        invitation = _number(rest[1])
        return None if invitation is None else Press(rest[0], invitation)  # type: ignore[arg-type]
    if head in ("a", "t", "d", "s", "e") and len(rest) == (3 if head in ("a", "t") else 2):
        invitation, question = _number(rest[0]), _number(rest[1])
        if invitation is None or question is None:
            return None
        value = rest[2] if len(rest) == 3 else None
        if value is not None and not (_YESNO_OR_NUMBER if head == "a" else _NUMBER).fullmatch(
            value
        ):
            return None
        return Press(head, invitation, question, value)  # type: ignore[arg-type]
    return _parse_other(head, rest)


def _parse_other(head: str, rest: list[str]) -> AnyPress | None:
    if head in ("c", "j", "f") and rest in (["no"],):
        return {"c": ConsentPress(False), "j": SwitchPress(False), "f": ForgetPress(False)}[head]
    if head == "f" and rest == ["yes"]:
        return ForgetPress(True)
    if head in ("c", "j") and len(rest) == 2 and rest[0] == ("ok" if head == "c" else "yes"):
        if not _CODE.fullmatch(rest[1]) or (head == "j" and not rest[1]):
            return None
        return ConsentPress(True, rest[1]) if head == "c" else SwitchPress(True, rest[1])
    if head == "c" and len(rest) == 3 and rest[0] == "ok":
        if not (_CODE.fullmatch(rest[1]) and _LANGUAGE.fullmatch(rest[2])):
            return None
        return ConsentPress(True, rest[1], rest[2])
    if head == "l" and rest and _LANGUAGE.fullmatch(rest[0]):
        if len(rest) == 1:
            return LanguagePress(rest[0])
        if len(rest) == 3 and rest[1] == "j" and _CODE.fullmatch(rest[2]):
            return LanguagePress(rest[0], joining=True, code=rest[2])
        return None
    if head == "pf" and len(rest) in (2, 3) and rest[2:] in ([], ["j"]):
        if not (_NUMBER.fullmatch(rest[0]) and _NUMBER.fullmatch(rest[1])):
            return None
        return ProfilePress(int(rest[0]), int(rest[1]), joining=len(rest) == 3)
    return None


def scale_number(value: str) -> int | None:
    """An answer press's value as a scale number (it may be negative), if it is one."""
    return int(value) if _SCALE_VALUE.fullmatch(value) else None
