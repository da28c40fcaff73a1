"""Branching: the ``relevant`` conditions of a consultation's questions.

A condition decides whether a question is asked, from the answers given before it. It is
written in a subset of XLSForm's XPath, parsed by the grammar below (lark), checked against the
questions before it when a consultation is loaded, and evaluated for each person as they answer.

The subset::

    ${q} = 'x'          ${q} != 'x'         the answer to a single or yes/no question
    ${q} = ''           ${q} != ''          not answered (not asked, skipped) / answered
    selected(${q}, 'x')                     option x ticked (multi), or chosen (single, yes/no)
    count-selected(${q}) >= 2               how many options were ticked
    ${q} > 3   (< <= >= = !=)               a scale's number
    A and B    A or B    not(A)    ( A )

What is not answered counts as '' (as in XLSForm): ``${q} != 'x'`` holds for someone who was
never asked q, and a number compared with '' is false (XPath's NaN).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Protocol

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from bot.kernel.i18n import _

GRAMMAR = r"""
    ?start: or_
    ?or_: and_
        | and_ ("or" and_)+         -> any_of
    ?and_: atom
         | atom ("and" atom)+       -> all_of
    ?atom: comparison
         | "not" "(" or_ ")"        -> negation
         | "selected" "(" ref "," STRING ")"   -> selected
         | "(" or_ ")"
    comparison: operand OP operand
    ?operand: ref
            | STRING                -> string
            | NUMBER                -> number
            | "count-selected" "(" ref ")"      -> count_selected
    ref: "${" NAME "}"
    OP: "!=" | "<=" | ">=" | "=" | "<" | ">"
    STRING: /'[^']*'/ | /"[^"]*"/
    NUMBER: /-?\d+(\.\d+)?/
    NAME: /[A-Za-z_][A-Za-z0-9_.-]*/
    %import common.WS
    %ignore WS
"""

Value = str | float | frozenset[str] | None  # an answer: option key, number, ticked keys, text


class ConditionError(ValueError):
    """A condition that cannot be read or does not fit the questions; ``column`` is 1-based
    within the condition's text, when the problem has one place. Said in the language being
    spoken when it is raised (a file is checked as it is loaded, for whoever sent it)."""

    def __init__(self, message: str, column: int | None = None) -> None:
        self.message = message
        self.column = column
        if column is not None:
            message = _("{problem} (at character {column})").format(problem=message, column=column)
        super().__init__(message)


# -- the tree -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Ref:
    name: str
    column: int


@dataclass(frozen=True)
class Literal:
    value: str | float


@dataclass(frozen=True)
class CountSelected:
    ref: Ref


Operand = Ref | Literal | CountSelected


@dataclass(frozen=True)
class Compare:
    left: Operand
    op: str
    right: Operand


@dataclass(frozen=True)
class Selected:
    ref: Ref
    option: str


@dataclass(frozen=True)
class Not:
    inner: Node


@dataclass(frozen=True)
class AllOf:
    parts: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    parts: tuple[Node, ...]


Node = Compare | Selected | Not | AllOf | AnyOf


@v_args(inline=True)
class _Tree(Transformer[Token, Node]):
    def ref(self, name: Token) -> Ref:
        return Ref(str(name), (name.column or 3) - 2)  # the column of "${"

    def string(self, token: Token) -> Literal:
        return Literal(str(token)[1:-1])

    def number(self, token: Token) -> Literal:
        return Literal(float(token))

    def count_selected(self, ref: Ref) -> CountSelected:
        return CountSelected(ref)

    def comparison(self, left: Operand, op: Token, right: Operand) -> Compare:
        return Compare(left, str(op), right)

    def selected(self, ref: Ref, option: Token) -> Selected:
        return Selected(ref, str(option)[1:-1])

    def negation(self, inner: Node) -> Not:
        return Not(inner)

    def all_of(self, *parts: Node) -> AllOf:
        return AllOf(parts)

    def any_of(self, *parts: Node) -> AnyOf:
        return AnyOf(parts)


@cache
def _parser() -> Lark:
    return Lark(GRAMMAR, parser="lalr", propagate_positions=True)


# -- evaluation -----------------------------------------------------------------------------
def _operand(operand: Operand, values: Mapping[str, Value]) -> Value:
    if isinstance(operand, Literal):
        return operand.value
    if isinstance(operand, CountSelected):
        value = values.get(operand.ref.name)
        if isinstance(value, frozenset):
            return float(len(value))
        return 0.0 if value in (None, "") else 1.0
    return values.get(operand.name)


def _as_number(value: Value) -> float:
    if isinstance(value, float | int):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return math.nan
    return math.nan


def _as_text(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, frozenset):
        return " ".join(sorted(value))
    if isinstance(value, float):
        return f"{value:g}"
    return value


_ORDER = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def _compare(left: Value, op: str, right: Value) -> bool:
    # XPath 1.0: with a number on either side both are compared as numbers (NaN never equal);
    # otherwise = and != compare text, and the ordering operators numbers.
    numeric = isinstance(left, float) or isinstance(right, float) or op in _ORDER
    if numeric:
        a, b = _as_number(left), _as_number(right)
        if op == "=":
            return a == b
        if op == "!=":
            return a != b
        return _ORDER[op](a, b)
    same = _as_text(left) == _as_text(right)
    return same if op == "=" else not same


def _holds(node: Node, values: Mapping[str, Value]) -> bool:
    if isinstance(node, Compare):
        return _compare(_operand(node.left, values), node.op, _operand(node.right, values))
    if isinstance(node, Selected):
        value = values.get(node.ref.name)
        if isinstance(value, frozenset):
            return node.option in value
        return value == node.option
    if isinstance(node, Not):
        return not _holds(node.inner, values)
    if isinstance(node, AllOf):
        return all(_holds(part, values) for part in node.parts)
    return any(_holds(part, values) for part in node.parts)


def _refs(node: Node) -> list[Ref]:
    if isinstance(node, Compare):
        operands = (node.left, node.right)
        return [
            o.ref if isinstance(o, CountSelected) else o
            for o in operands
            if not isinstance(o, Literal)
        ]
    if isinstance(node, Selected):
        return [node.ref]
    if isinstance(node, Not):
        return _refs(node.inner)
    return [ref for part in node.parts for ref in _refs(part)]


# -- checking against the questions ---------------------------------------------------------
class QuestionShape(Protocol):
    """What a check needs of a question: a Question of a set, or a stored one."""

    @property
    def type(self) -> str: ...


def _check(node: Node, earlier: Mapping[str, tuple[str, frozenset[str]]]) -> None:
    """Raise ConditionError where `node` does not fit the questions before it: name ->
    (type, option keys)."""
    if isinstance(node, Not):
        _check(node.inner, earlier)
        return
    if isinstance(node, AllOf | AnyOf):
        for part in node.parts:
            _check(part, earlier)
        return
    for ref in _refs(node):
        if ref.name not in earlier:
            raise ConditionError(
                _("{question} is not a question asked before this one").format(
                    question=_ref(ref.name)
                ),
                ref.column,
            )
    if isinstance(node, Selected):
        kind, options = earlier[node.ref.name]
        if kind not in ("single", "multi", "yesno"):
            raise ConditionError(
                _("selected() reads a question with options; {question} is {type}").format(
                    question=_ref(node.ref.name), type=kind
                ),
                node.ref.column,
            )
        if node.option not in options:
            raise ConditionError(
                _("{question} has no option {option} (its options: {options})").format(
                    question=_ref(node.ref.name),
                    option=repr(node.option),
                    options=", ".join(sorted(options)),
                ),
                node.ref.column,
            )
        return
    assert isinstance(node, Compare)
    _check_compare(node, earlier)


def _check_compare(node: Compare, earlier: Mapping[str, tuple[str, frozenset[str]]]) -> None:
    sides = (node.left, node.right)
    refs = [s for s in sides if isinstance(s, Ref)]
    literals = [s for s in sides if isinstance(s, Literal)]
    counted = [s for s in sides if isinstance(s, CountSelected)]
    if not refs and not counted:
        raise ConditionError(_("a comparison needs a question on one side, like ${q} = 'x'"))
    if len(refs) + len(counted) == 2:
        raise ConditionError(_("compare a question with a value, not with another question"))
    literal = literals[0].value
    if counted:
        name = counted[0].ref.name
        kind = earlier[name][0]
        if kind != "multi":
            raise ConditionError(
                _("count-selected() reads a multi question; {question} is {type}").format(
                    question=_ref(name), type=kind
                ),
                counted[0].ref.column,
            )
        if not isinstance(literal, float):
            raise ConditionError(
                _("count-selected() is compared with a number"), counted[0].ref.column
            )
        return
    ref = refs[0]
    kind, options = earlier[ref.name]
    if literal == "":
        if node.op not in ("=", "!="):
            raise ConditionError(_("'' (not answered) is compared with = or !="), ref.column)
        return
    question = _ref(ref.name)
    if kind == "multi":
        raise ConditionError(
            _("{question} is a multi question: use selected({question}, 'x')").format(
                question=question
            ),
            ref.column,
        )
    if kind == "scale":
        if not isinstance(literal, float):
            raise ConditionError(
                _("{question} is a scale: compare it with a number, like {question} >= 3").format(
                    question=question
                ),
                ref.column,
            )
        return
    if kind == "text":
        raise ConditionError(
            _("{question} is a text question: only = '' or != '' can be asked of it").format(
                question=question
            ),
            ref.column,
        )
    if node.op not in ("=", "!="):
        raise ConditionError(
            _("{question} has options: use = or !=, not {operator}").format(
                question=question, operator=node.op
            ),
            ref.column,
        )
    if str(literal) not in options:
        raise ConditionError(
            _("{question} has no option {option} (its options: {options})").format(
                question=question, option=repr(literal), options=", ".join(sorted(options))
            ),
            ref.column,
        )


def _ref(name: str) -> str:
    """A question as a condition names it: ${name}."""
    return "${" + name + "}"


# -- the public face ------------------------------------------------------------------------
@dataclass(frozen=True)
class Condition:
    """A parsed condition; ``text`` is what was written."""

    text: str
    tree: Node

    def names(self) -> frozenset[str]:
        """The questions it reads."""
        return frozenset(ref.name for ref in _refs(self.tree))

    def holds(self, values: Mapping[str, Value]) -> bool:
        """Whether the question is asked, given the answers so far by question key."""
        return _holds(self.tree, values)

    def check(self, earlier: Mapping[str, tuple[str, frozenset[str]]]) -> None:
        """Raise ConditionError unless every question it reads is among `earlier` (key ->
        (type, option keys)) and each is read in a way that fits its type."""
        _check(self.tree, earlier)


@cache
def parse(text: str) -> Condition:
    """Parse `text`; ConditionError (with the column) when it is not in the subset."""
    try:
        tree = _parser().parse(text)
    except UnexpectedCharacters as exc:
        raise ConditionError(_unexpected(text, exc), exc.column) from None
    except UnexpectedToken as exc:
        if exc.token.type == "$END":
            raise ConditionError(_("the condition stops too early"), len(text) + 1) from None
        raise ConditionError(_unexpected(text, exc), exc.column) from None
    except UnexpectedEOF:
        raise ConditionError(_("the condition stops too early"), len(text) + 1) from None
    except UnexpectedInput as exc:
        raise ConditionError(_unexpected(text, exc), exc.column) from None
    return Condition(text, _Tree().transform(tree))


def _unexpected(text: str, exc: UnexpectedInput) -> str:
    column = exc.column if isinstance(exc.column, int) and exc.column > 0 else 1
    rest = text[column - 1 :]
    if text.count("${") > text.count("}"):
        return _("a ${ has no closing }")
    if rest.startswith("=") and text[column - 2 : column - 1] == "=":
        return _("compare with a single = (XPath has no ==)")
    if rest[:1] in "'\"" and rest.count(rest[0]) < 2:
        return _("a quoted value has no closing quote")
    found = rest.split()[0] if rest.split() else rest
    return _("cannot read {text} here (see the conditions consultbot understands)").format(
        text=repr(found[:20])
    )
