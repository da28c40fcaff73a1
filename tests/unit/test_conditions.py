"""Branching conditions: the grammar reads the documented subset and nothing else, evaluates as
XLSForm does, and a condition that does not fit the questions before it is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.consultations.conditions import ConditionError, Value, parse
from bot.consultations.sets import ConsultationError, load_consultation
from tests.unit.test_consultations import VALID, line_of, write

ANSWERS: dict[str, Value] = {
    "first": "late",
    "second": frozenset({"money", "time"}),
    "rating": 2.0,
    "feedback": "no",
    "obstacle": None,  # not asked, or skipped
}


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        ("${first} = 'late'", True),
        ("${first} != 'late'", False),
        ("${first}='early'", False),
        ("'late' = ${first}", True),
        ("selected(${second}, 'money')", True),
        ("selected(${second}, 'none')", False),
        ("selected(${first}, 'late')", True),
        ("count-selected(${second}) >= 2", True),
        ("count-selected(${second}) > 2", False),
        ("${rating} <= 2", True),
        ("${rating} > 2", False),
        ("${rating} = 2", True),
        ("${obstacle} = ''", True),
        ("${obstacle} != ''", False),
        # What is not answered is '': a number compared with it is never true (XPath's NaN)...
        ("${unasked} >= 1", False),
        ("${unasked} < 1", False),
        # ...but "is not x" holds for someone never asked.
        ("${unasked} != 'x'", True),
        ("${feedback} = 'no' and ${rating} < 3", True),
        ("${feedback} = 'yes' or ${rating} < 3", True),
        ("not(${feedback} = 'no')", False),
        ("not(${feedback} = 'yes' or ${rating} > 3) and selected(${second}, 'time')", True),
        ("(${feedback} = 'yes' or ${rating} > 3) and selected(${second}, 'time')", False),
        # and binds tighter than or, as in XPath
        ("${feedback} = 'yes' and ${rating} > 3 or ${first} = 'late'", True),
        ("${feedback} = 'yes' and (${rating} > 3 or ${first} = 'late')", False),
        ('${first} = "late"', True),
    ],
)
def test_conditions_evaluate_as_xlsform_does(condition: str, holds: bool) -> None:
    assert parse(condition).holds(ANSWERS) is holds


@pytest.mark.parametrize(
    ("condition", "message", "column"),
    [
        ("${first} = 'late' and", "stops too early", 22),
        ("${first = 'late'", "has no closing }", None),
        ("${first} == 'late'", "single =", 11),
        ("${first} = 'late", "no closing quote", 12),
        ("not ${first}", "cannot read", 5),
        ("${first} ~ 'late'", "cannot read", 10),
        ("position(..) = 1", "cannot read", 1),
        ("", "stops too early", 1),
    ],
)
def test_what_is_outside_the_subset_is_refused_with_its_place(
    condition: str, message: str, column: int | None
) -> None:
    with pytest.raises(ConditionError) as caught:
        parse(condition)
    assert message in caught.value.message
    if column is not None:
        assert caught.value.column == column


EARLIER = {
    "first": ("single", frozenset({"early", "late"})),
    "second": ("multi", frozenset({"money", "time", "none"})),
    "rating": ("scale", frozenset()),
    "obstacle": ("text", frozenset()),
}


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("${later} = 'x'", "${later} is not a question asked before this one"),
        ("${first} = 'sometimes'", "has no option 'sometimes'"),
        ("selected(${second}, 'cash')", "has no option 'cash'"),
        ("${second} = 'money'", "use selected(${second}, 'x')"),
        ("${rating} = 'high'", "compare it with a number"),
        ("${first} > 'early'", "use = or !="),
        ("${obstacle} = 'hello'", "only = '' or != ''"),
        ("selected(${rating}, '3')", "reads a question with options"),
        ("count-selected(${first}) > 1", "reads a multi question"),
        ("${first} = ${rating}", "not with another question"),
        ("'a' = 'b'", "needs a question on one side"),
    ],
)
def test_a_condition_must_fit_the_questions_before_it(condition: str, message: str) -> None:
    with pytest.raises(ConditionError) as caught:
        parse(condition).check(EARLIER)
    assert message in caught.value.message


def test_names_are_the_questions_read() -> None:
    condition = parse("selected(${second}, 'money') and not(${rating} > 3 or ${first} = '')")
    assert condition.names() == {"second", "rating", "first"}


# Random conditions over the answers above: printed, read back, they mean the same.
_COMPARISONS = st.sampled_from(
    [
        "${first} = 'late'",
        "${first} != 'early'",
        "selected(${second}, 'time')",
        "count-selected(${second}) < 2",
        "${rating} >= 3",
        "${obstacle} = ''",
    ]
)
_TREES = st.recursive(
    _COMPARISONS.map(lambda text: (text, parse(text).holds(ANSWERS))),
    lambda inner: st.one_of(
        st.tuples(inner).map(lambda a: (f"not({a[0][0]})", not a[0][1])),
        st.tuples(inner, inner).map(
            lambda ab: (f"({ab[0][0]} and {ab[1][0]})", ab[0][1] and ab[1][1])
        ),
        st.tuples(inner, inner).map(
            lambda ab: (f"({ab[0][0]} or {ab[1][0]})", ab[0][1] or ab[1][1])
        ),
    ),
    max_leaves=8,
)


@given(_TREES)
def test_nested_conditions_mean_what_their_parts_mean(tree: tuple[str, bool]) -> None:
    text, expected = tree
    assert parse(text).holds(ANSWERS) is expected


# -- in a consultation file ---------------------------------------------------------------------


def test_a_set_with_branching_loads(tmp_path: Path) -> None:
    text = VALID + "relevant = \"${feedback} = 'no' or ${rating} <= 2\"\n"
    spec = load_consultation(write(tmp_path, text))
    assert spec.questions[-1].relevant == "${feedback} = 'no' or ${rating} <= 2"


def test_a_condition_on_a_later_question_names_its_line(tmp_path: Path) -> None:
    text = VALID.replace(
        'text = "When are you asked?"\n',
        'text = "When are you asked?"\nrelevant = "${rating} > 2"\n',
    )
    with pytest.raises(ConsultationError) as caught:
        load_consultation(write(tmp_path, text))
    problem = caught.value.problems[0]
    assert problem.field == "questions[0].relevant"
    assert problem.line == line_of(text, "relevant =")
    assert "${rating} is not a question asked before this one" in problem.message


def test_translations_are_checked_against_the_texts(tmp_path: Path) -> None:
    ok = VALID + '\n[translations.cy]\ntitle = "Set prawf"\n"first.o.late" = "Hwyr"\n'
    spec = load_consultation(write(tmp_path, ok))
    assert spec.translations == {"cy": {"title": "Set prawf", "first.o.late": "Hwyr"}}
    bad = VALID + '\n[translations.cy]\n"first.o.never" = "Byth"\n'
    with pytest.raises(ConsultationError, match=r"'first\.o\.never' is no text"):
        load_consultation(write(tmp_path, bad))
    long = VALID + '\n[translations.cy]\n"first.o.late" = "' + "x" * 41 + '"\n'
    with pytest.raises(ConsultationError, match="at most 40 characters"):
        load_consultation(write(tmp_path, long))
