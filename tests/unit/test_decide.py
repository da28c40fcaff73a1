"""The journey's one decision as a table: (where the person is, what they did) -> (what is
written, what is said). Pure: no database, no Telegram, no rendering."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.participation.decide import (
    Again,
    Card,
    Decision,
    DropAnswer,
    Effect,
    Event,
    Intro,
    Media,
    Resume,
    Said,
    SaveAnswer,
    SetEditing,
    SetStatus,
    Summary,
    Text,
    Typed,
    decide,
)
from bot.participation.presses import Press
from bot.participation.state import AnswerData, InvitationData, PersonState, QuestionData
from storage.models import InvitationStatus as S

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
CLOSES = datetime(2026, 3, 9, 17, 0, tzinfo=UTC)
ME, OTHER = 7, 8  # my invitation, and a second one of mine in another open round


def question(qid: int, key: str, type_: str, **fields: Any) -> QuestionData:
    return QuestionData(
        id=qid,
        key=key,
        type=type_,
        text=key.capitalize() + "?",
        help=None,
        required=fields.get("required", True),
        options=fields.get("options", []),
        scale=fields.get("scale"),
        max_length=fields.get("max_length"),
        coding=fields.get("coding", {}),
        relevant=fields.get("relevant"),
        constraint_message=fields.get("constraint_message"),
    )


QUESTIONS = (
    question(
        11,
        "single",
        "single",
        options=[
            {"id": "early", "label": "Early"},
            {"id": "late", "label": "Late", "codes": ["x.late"]},
        ],
    ),
    question(
        12,
        "multi",
        "multi",
        options=[
            {"id": "funding", "label": "Funding", "codes": ["x.funding"]},
            {"id": "forms", "label": "Forms", "codes": ["x.forms"]},
            {"id": "none", "label": "None of these", "exclusive": True},
        ],
    ),
    question(
        13,
        "scale",
        "scale",
        scale={"min": 1, "max": 5},
        coding={"codes": ["x.unequal"], "codes_at_most": 2},
    ),
    question(14, "yesno", "yesno", coding={"codes": ["x.unheard"], "codes_when": "no"}),
    question(15, "story", "text", max_length=20),
    question(16, "more", "text", required=False),
)
Q = {q.key: q for q in QUESTIONS}
# The answers of someone who answered in order, by question key.
GIVEN = {
    "single": AnswerData(101, keys=frozenset({"early"})),
    "multi": AnswerData(102, keys=frozenset({"forms"})),
    "scale": AnswerData(103, number=3.0),
    "yesno": AnswerData(104, keys=frozenset({"yes"})),
    "story": AnswerData(105, text="It was fine"),
    "more": AnswerData(106, skipped=True),
}


def invitation(
    status: S = S.STARTED,
    *,
    answered: int = 0,
    id_: int = ME,
    editing: str | None = None,
    round_open: bool = True,
    **answers: AnswerData,
) -> InvitationData:
    """An invitation with its first `answered` questions answered (as GIVEN), plus `answers`."""
    so_far = {q.id: GIVEN[q.key] for q in QUESTIONS[:answered]}
    so_far.update({Q[key].id: answer for key, answer in answers.items()})
    return InvitationData(
        id=id_,
        status=status,
        editing_question_id=Q[editing].id if editing else None,
        prompt_message_id=500 + id_,
        round_open=round_open,
        closes_at=CLOSES,
        title="Pulse",
        consultation_id=1,
        questions=QUESTIONS,
        answers=so_far,
    )


def person(*invitations: InvitationData, stopped: bool = False) -> PersonState:
    return PersonState(joined=True, stopped=stopped, invitations=invitations, text_limit=300)


def said(thing: Said | None) -> str | None:
    """What is said, in short: a template's name, or which card for which question."""
    if thing is None:
        return None
    if isinstance(thing, Text):  # and the flags it is rendered with
        flags = [name for name, value in thing.params.items() if value is True]
        return " ".join([thing.template.removesuffix(".html"), *flags])
    if isinstance(thing, Card) and thing.answered:
        return f"answered {thing.question.key}"
    if isinstance(thing, Card):
        after = f" after {thing.previous.key}" if thing.previous else ""
        return f"card {thing.invitation.id}:{thing.question.key}{after}"
    if isinstance(thing, Summary):
        return f"summary {thing.invitation.id}"
    assert isinstance(thing, Intro)
    return f"intro {thing.invitation_id}" + ("" if thing.buttons else " without buttons")


def save(key: str, answer_id: int | None = None, **fields: Any) -> SaveAnswer:
    return SaveAnswer(ME, Q[key].id, answer_id, NOW, recode=Q[key].type == "text", **fields)


def status(status_: S, invitation_id: int = ME) -> SetStatus:
    return SetStatus(invitation_id, status_, NOW)


def press(
    kind: str,
    key: str | None = None,
    value: str | None = None,
    inv: int = ME,
    on: int | None = None,
) -> Press:
    return Press(kind, inv, Q[key].id if key else None, value, on)  # type: ignore[arg-type]


# A refusal is said once: a forged or stale button in a message, a repeat in a passing toast.
BAD = {"messages": ["bad_button waiting"]}
SAVED = {"toast": "already_saved"}


def case(
    name: str,
    state: PersonState,
    event: Event,
    effects: list[Effect] | None = None,
    *,
    toast: str | None = None,
    edit: str | None = None,
    messages: list[str] | None = None,
) -> Any:
    expected = {"effects": effects or [], "toast": toast, "edit": edit, "messages": messages or []}
    return pytest.param(state, event, expected, id=name)


def refused(name: str, state: PersonState, event: Event, outcome: dict[str, Any]) -> Any:
    param = case(name, state, event, **outcome)
    return pytest.param(*param.values[:2], {**param.values[2], "refused": True}, id=name)


CASES = [
    # --- the round's intro: Start now, Later, Not this time ---------------------------------
    case(
        "start now: started, first question on a new card",
        person(invitation(S.DELIVERED)),
        press("go"),
        [status(S.STARTED)],
        edit="intro 7 without buttons",
        messages=["card 7:single"],
    ),
    case(
        "start now again part-way: the question being asked",
        person(invitation(answered=2)),
        press("go"),
        edit="intro 7 without buttons",
        messages=["card 7:scale"],
    ),
    case(
        "start now with ticks not yet done: the multi question still",
        person(invitation(answered=1, editing="multi", multi=AnswerData(9))),
        press("go"),
        edit="intro 7 without buttons",
        messages=["card 7:multi"],
    ),
    case(
        "start now after finishing: the summary",
        person(invitation(S.COMPLETED, answered=6)),
        press("go"),
        edit="intro 7 without buttons",
        messages=["summary 7"],
    ),
    case(
        "start now while another round is in progress: that one first, this one queued",
        person(invitation(answered=1, id_=OTHER), invitation(S.DELIVERED)),
        press("go"),
        [status(S.QUEUED)],
        messages=["one_at_a_time", "card 8:multi"],
    ),
    case(
        "later: nothing changes",
        person(invitation(S.DELIVERED)),
        press("later"),
        messages=["later"],
    ),
    case(
        "not this time before finishing: declined",
        person(invitation(answered=2)),
        press("no"),
        [status(S.DECLINED)],
        messages=["declined"],
    ),
    case(
        "not this time: declined, and the round waiting next is offered",
        person(invitation(S.DELIVERED), invitation(S.QUEUED, id_=OTHER)),
        press("no"),
        [status(S.DECLINED), status(S.DELIVERED, OTHER)],
        messages=["declined", "intro 8"],
    ),
    case(
        "not this time while ticking: declined, no longer asked out of order",
        person(invitation(answered=1, editing="multi")),
        press("no"),
        [status(S.DECLINED), SetEditing(ME, None)],
        messages=["declined"],
    ),
    case(
        "not this time after finishing: answers kept, and they hear they already finished",
        person(invitation(S.COMPLETED, answered=6)),
        press("no"),
        messages=["declined finished"],
    ),
    # --- every question type -----------------------------------------------------------------
    case(
        "single: stored with its option's code, the card moves on in place",
        person(invitation()),
        press("a", "single", "1"),
        [save("single", keys=("late",), codes=("x.late",))],
        edit="card 7:multi after single",
    ),
    case(
        "multi: a tick is stored at once, the question stays asked",
        person(invitation(answered=1)),
        press("t", "multi", "0"),
        [save("multi", keys=("funding",), codes=("x.funding",)), SetEditing(ME, Q["multi"].id)],
        edit="card 7:multi",
    ),
    case(
        "multi: a second tick adds to the first (ticks before Done are no change)",
        person(
            invitation(
                answered=1, editing="multi", multi=AnswerData(9, keys=frozenset({"funding"}))
            )
        ),
        press("t", "multi", "1"),
        [save("multi", 9, keys=("funding", "forms"), codes=("x.forms", "x.funding"))],
        edit="card 7:multi",
    ),
    case(
        "multi: the exclusive option clears the others",
        person(
            invitation(
                answered=1,
                editing="multi",
                multi=AnswerData(9, keys=frozenset({"funding", "forms"})),
            )
        ),
        press("t", "multi", "2"),
        [save("multi", 9, keys=("none",))],
        edit="card 7:multi",
    ),
    case(
        "multi: a real option clears the exclusive one",
        person(
            invitation(answered=1, editing="multi", multi=AnswerData(9, keys=frozenset({"none"})))
        ),
        press("t", "multi", "0"),
        [save("multi", 9, keys=("funding",), codes=("x.funding",))],
        edit="card 7:multi",
    ),
    case(
        "multi: a tick again unticks",
        person(
            invitation(answered=1, editing="multi", multi=AnswerData(9, keys=frozenset({"forms"})))
        ),
        press("t", "multi", "1"),
        [save("multi", 9)],
        edit="card 7:multi",
    ),
    case(
        "multi: Done moves on",
        person(
            invitation(answered=1, editing="multi", multi=AnswerData(9, keys=frozenset({"forms"})))
        ),
        press("d", "multi"),
        [SetEditing(ME, None)],
        edit="card 7:scale after multi",
    ),
    refused(
        "multi: Done with nothing ticked",
        person(invitation(answered=1, editing="multi", multi=AnswerData(9))),
        press("d", "multi"),
        {"toast": "pick_one"},
    ),
    case(
        "scale: a low number carries the question's code",
        person(invitation(answered=2)),
        press("a", "scale", "2"),
        [save("scale", number=2.0, codes=("x.unequal",))],
        edit="card 7:yesno after scale",
    ),
    case(
        "scale: a higher one does not",
        person(invitation(answered=2)),
        press("a", "scale", "5"),
        [save("scale", number=5.0)],
        edit="card 7:yesno after scale",
    ),
    case(
        "yes/no: 'no' carries the question's code",
        person(invitation(answered=3)),
        press("a", "yesno", "no"),
        [save("yesno", keys=("no",), codes=("x.unheard",))],
        edit="card 7:story after yesno",
    ),
    case(
        "required text: typed, coded as stored; the card loses its buttons, the next is new",
        person(invitation(answered=4)),
        Typed("<b>late</b> & slow"),
        [save("story", text="<b>late</b> & slow")],
        edit="answered story",
        messages=["card 7:more"],
    ),
    case(
        "required text: longer than the question allows is not stored",
        person(invitation(answered=4)),
        Typed("x" * 21),
        messages=["too_long"],
    ),
    case(
        "required text: blank asks again",
        person(invitation(answered=4)),
        Typed("   "),
        messages=["card 7:story"],
    ),
    refused(
        "required text: no Skip",
        person(invitation(answered=4)),
        press("s", "story"),
        BAD,
    ),
    case(
        "optional text: Skip finishes; the summary follows",
        person(invitation(answered=5)),
        press("s", "more"),
        [save("more", skipped=True), status(S.COMPLETED)],
        edit="answered more",
        messages=["summary 7"],
    ),
    case(
        "optional text: typed, the last answer finishes and the next round is offered",
        person(invitation(answered=5), invitation(S.QUEUED, id_=OTHER)),
        Typed("More money"),
        [save("more", text="More money"), status(S.COMPLETED), status(S.DELIVERED, OTHER)],
        edit="answered more",
        messages=["summary 7", "intro 8"],
    ),
    case(
        "typed where a button is expected: use the buttons",
        person(invitation(answered=2)),
        Typed("three"),
        messages=["use_buttons", "card 7:scale"],
    ),
    case(
        "a sticker: what is expected instead",
        person(invitation(answered=2)),
        Media("sticker"),
        messages=["not_text", "card 7:scale"],
    ),
    # --- change after finishing ----------------------------------------------------------------
    case(
        "change after finishing: the question asked again with the answer so far",
        person(invitation(S.COMPLETED, answered=6)),
        press("e", "scale"),
        [SetEditing(ME, Q["scale"].id)],
        messages=["card 7:scale"],
    ),
    case(
        "change after finishing: the new answer replaces the old; the summary again",
        person(invitation(S.COMPLETED, answered=6, editing="scale")),
        press("a", "scale", "1"),
        [
            save("scale", 103, number=1.0, codes=("x.unequal",), changed=True),
            SetEditing(ME, None),
        ],
        edit="answered scale",
        messages=["summary 7"],
    ),
    case(
        "change after finishing to the same answer: stored, not marked changed",
        person(invitation(S.COMPLETED, answered=6, editing="scale")),
        press("a", "scale", "3"),
        [save("scale", 103, number=3.0), SetEditing(ME, None)],
        edit="answered scale",
        messages=["summary 7"],
    ),
    case(
        "change a text after finishing: typed, recoded",
        person(invitation(S.COMPLETED, answered=6, editing="story")),
        Typed("Better now"),
        [save("story", 105, text="Better now", changed=True), SetEditing(ME, None)],
        edit="answered story",
        messages=["summary 7"],
    ),
    case(
        "change a multi after finishing: each tick changes the confirmed answer",
        person(invitation(S.COMPLETED, answered=6, editing="multi")),
        press("t", "multi", "0"),
        [
            save(
                "multi",
                102,
                keys=("funding", "forms"),
                codes=("x.forms", "x.funding"),
                changed=True,
            )
        ],
        edit="card 7:multi",
    ),
    refused(
        "change before finishing",
        person(invitation(answered=3)),
        press("e", "single"),
        SAVED,
    ),
    # --- stale -------------------------------------------------------------------------------
    refused(
        "round closed (or cancelled): nothing changes",
        person(invitation(round_open=False)),
        press("a", "single", "0"),
        {"messages": ["round_closed"]},
    ),
    refused(
        "Start now once the round has closed",
        person(invitation(S.DELIVERED, round_open=False)),
        press("go"),
        {"messages": ["round_closed"]},
    ),
    refused(
        "a second tap on a question already answered: the card moves on to the one asked",
        person(invitation(answered=1)),
        press("a", "single", "0", on=500 + ME),
        {**SAVED, "edit": "card 7:multi after single"},
    ),
    refused(
        "a tap on a card a typed answer left above: it shows its answer",
        person(invitation(answered=5)),
        press("a", "single", "0", on=400),
        {**SAVED, "edit": "answered single"},
    ),
    refused(
        "Skip again on the last card after finishing: its answer, no second summary",
        person(invitation(S.COMPLETED, answered=6)),
        press("s", "more"),
        {**SAVED, "edit": "answered more"},
    ),
    refused(
        "an answer to a declined invitation",
        person(invitation(S.DECLINED)),
        press("a", "single", "0"),
        SAVED,
    ),
    # --- forged --------------------------------------------------------------------------------
    refused(
        "someone else's invitation", person(invitation()), press("a", "single", "0", inv=99), BAD
    ),
    refused(
        "someone else's invitation, nothing waiting for me: no /resume offered",
        person(invitation(S.COMPLETED, answered=6)),
        press("a", "single", "0", inv=99),
        {"messages": ["bad_button"]},
    ),
    refused(
        "no such option on a question already answered: forged, not already saved",
        person(invitation(answered=1)),
        press("a", "single", "7"),
        BAD,
    ),
    refused(
        "no such tick on a multi question already answered",
        person(invitation(answered=2)),
        press("t", "multi", "9"),
        BAD,
    ),
    refused(
        "no such option after finishing",
        person(invitation(S.COMPLETED, answered=6)),
        press("a", "yesno", "maybe"),
        {"messages": ["bad_button"]},
    ),
    refused("no such option", person(invitation()), press("a", "single", "2"), BAD),
    refused(
        "a superscript digit for an option", person(invitation()), press("a", "single", "²"), BAD
    ),
    refused(
        "Arabic-Indic digits for a scale",
        person(invitation(answered=2)),
        press("a", "scale", "٣"),
        BAD,
    ),
    refused("scale out of range", person(invitation(answered=2)), press("a", "scale", "6"), BAD),
    refused("neither yes nor no", person(invitation(answered=3)), press("a", "yesno", "1"), BAD),
    refused(
        "a superscript digit for a tick",
        person(invitation(answered=1)),
        press("t", "multi", "²"),
        BAD,
    ),
    refused(
        "a tick on a question that is no multi",
        person(invitation()),
        press("t", "single", "0"),
        BAD,
    ),
    refused(
        "a question of another consultation",
        person(invitation()),
        Press("a", ME, 999, "0"),
        BAD,
    ),
    case(
        "after /stop: only the hint",
        person(invitation(), stopped=True),
        press("a", "single", "0"),
        messages=["stopped_hint"],
    ),
    # --- finished, and resuming ------------------------------------------------------------------
    case(
        "/resume after finishing, the round open: its summary, to change an answer",
        person(invitation(S.COMPLETED, answered=6)),
        Resume(),
        messages=["summary 7"],
    ),
    case(
        "/resume after finishing two rounds: the later one's summary",
        person(invitation(S.COMPLETED, answered=6), invitation(S.COMPLETED, id_=OTHER)),
        Resume(),
        messages=["summary 8"],
    ),
    case(
        "/resume after finishing, the round closed: nothing waiting",
        person(invitation(S.COMPLETED, answered=6, round_open=False)),
        Resume(),
        messages=["nothing_waiting"],
    ),
    case(
        "quietly after finishing (/start, /resume after /pause): nothing said",
        person(invitation(S.COMPLETED, answered=6)),
        Resume(quiet=True),
    ),
    case(
        "typed after finishing: nothing waiting",
        person(invitation(S.COMPLETED, answered=6)),
        Typed("hello"),
        messages=["nothing_waiting typed"],
    ),
    case(
        "/resume with a round waiting: its intro, delivered",
        person(invitation(S.PENDING)),
        Resume(),
        [status(S.DELIVERED)],
        messages=["intro 7"],
    ),
    case(
        "/resume part-way: the question being asked",
        person(invitation(answered=3)),
        Resume(),
        messages=["card 7:yesno"],
    ),
    case("quietly, with nothing waiting: nothing said", person(), Resume(quiet=True)),
    # --- delivered again after the process that decided it died: where they are ------------
    case(
        "an answer again: nothing written, the card moves on, no 'Already saved'",
        person(invitation(answered=1)),
        Again(press("a", "single", "0", on=500 + ME)),
        edit="card 7:multi after single",
    ),
    case(
        "a tick again: not ticked twice, the card shows the ticks",
        person(
            invitation(answered=1, editing="multi", multi=AnswerData(9, keys=frozenset({"forms"})))
        ),
        Again(press("t", "multi", "1")),
        edit="card 7:multi",
    ),
    case(
        "the last answer again: its card shows it, and the summary comes again",
        person(invitation(S.COMPLETED, answered=6)),
        Again(press("s", "more")),
        edit="answered more",
        messages=["summary 7"],
    ),
    case(
        "Start now again: the question asked, nothing written",
        person(invitation(answered=2)),
        Again(press("go")),
        edit="intro 7 without buttons",
        messages=["card 7:scale"],
    ),
    refused(
        "an answer again once the round closed: it says so",
        person(invitation(answered=1, round_open=False)),
        Again(press("a", "single", "0")),
        {"messages": ["round_closed"]},
    ),
    case(
        "a typed answer again, part-way: the question asked",
        person(invitation(answered=4)),
        Again(),
        messages=["card 7:story"],
    ),
    case(
        "a typed answer again that finished the round: its summary",
        person(invitation(S.COMPLETED, answered=6)),
        Again(),
        messages=["summary 7"],
    ),
    case("typed again with nothing open: nothing said", person(), Again()),
    case(
        "typed again after /stop: nothing said",
        person(invitation(answered=4), stopped=True),
        Again(),
    ),
]


@pytest.mark.parametrize(("state", "event", "expected"), CASES)
def test_decision(state: PersonState, event: Event, expected: dict[str, Any]) -> None:
    expected = dict(expected)
    is_refusal = expected.pop("refused", False)
    decision = decide(state, event, NOW)
    assert {
        "effects": decision.effects,
        "toast": said(decision.toast),
        "edit": said(decision.edit),
        "messages": [said(m) for m in decision.messages],
    } == expected
    # Anything refused changes nothing, says why in the log, and says it to the person once.
    assert (decision.refused is not None) == is_refusal
    if decision.refused:
        assert not decision.effects
        assert (decision.toast is None) != (not decision.messages)


def test_a_card_shows_the_answer_being_changed_and_the_ticks_so_far() -> None:
    changing = person(invitation(S.COMPLETED, answered=6))
    [card] = decide(changing, press("e", "multi"), NOW).messages
    assert isinstance(card, Card) and card.invitation.editing_question_id == Q["multi"].id
    assert card.invitation.answers[Q["multi"].id].keys == {"forms"}
    ticking = person(invitation(answered=1, editing="multi", multi=AnswerData(9)))
    decision = decide(ticking, press("t", "multi", "1"), NOW)
    assert isinstance(decision.edit, Card)
    assert decision.edit.invitation.answers[Q["multi"].id].keys == {"forms"}


def test_a_typed_answer_edits_the_card_it_was_typed_below() -> None:
    decision = decide(person(invitation(answered=4)), Typed("fine"), NOW)
    assert decision.edit_typed_card and isinstance(decision.edit, Card) and decision.edit.answered
    assert decision.edit.invitation.prompt_message_id == 500 + ME
    pressed = decide(person(invitation()), press("a", "single", "0"), NOW)
    assert not pressed.edit_typed_card


def test_deciding_never_changes_the_state_it_was_given() -> None:
    state = person(invitation(answered=5), invitation(S.QUEUED, id_=OTHER))
    before = replace(state)
    decision: Decision = decide(state, Typed("More money"), NOW)
    assert decision.effects and state == before
    assert state.invitations[0].answers.keys() == {q.id for q in QUESTIONS[:5]}


# --- branching: questions asked only when their condition holds ------------------------------
BRANCHING = (
    question(21, "feedback", "yesno"),
    question(
        22,
        "why",
        "single",
        options=[{"id": "nobody", "label": "Nobody told me"}, {"id": "lost", "label": "Lost"}],
        relevant="${feedback} = 'no'",
    ),
    # A chain: asked only when `why` was asked and answered so.
    question(23, "who", "text", required=False, relevant="selected(${why}, 'nobody')"),
    question(24, "rating", "scale", scale={"min": 1, "max": 5}, relevant="${feedback} = 'yes'"),
    question(25, "more", "text", required=False, max_length=10, constraint_message="Ten at most"),
)
B = {q.key: q for q in BRANCHING}
# The answers of someone told nothing by nobody, by question key.
SAID_NO = {
    "feedback": AnswerData(201, keys=frozenset({"no"})),
    "why": AnswerData(202, keys=frozenset({"nobody"})),
    "who": AnswerData(203, text="The council"),
    "more": AnswerData(205, skipped=True),
}


def branching(
    status: S = S.STARTED,
    *,
    editing: str | None = None,
    closing: str | None = None,
    **answers: AnswerData,
) -> InvitationData:
    return InvitationData(
        id=ME,
        status=status,
        editing_question_id=B[editing].id if editing else None,
        prompt_message_id=500 + ME,
        round_open=True,
        closes_at=CLOSES,
        title="Branching",
        consultation_id=2,
        questions=BRANCHING,
        answers={B[key].id: answer for key, answer in answers.items()},
        closing=closing,
    )


def b_press(kind: str, key: str, value: str | None = None) -> Press:
    return Press(kind, ME, B[key].id, value)  # type: ignore[arg-type]


def b_save(key: str, answer_id: int | None = None, **fields: Any) -> SaveAnswer:
    return SaveAnswer(ME, B[key].id, answer_id, NOW, recode=B[key].type == "text", **fields)


def drop(key: str) -> DropAnswer:
    return DropAnswer(ME, B[key].id, SAID_NO[key].answer_id)  # type: ignore[arg-type]


BRANCHING_CASES = [
    case(
        "yes: the questions for 'no' are not asked, the card moves on past them",
        person(branching()),
        b_press("a", "feedback", "yes"),
        [b_save("feedback", keys=("yes",))],
        edit="card 7:rating after feedback",
    ),
    case(
        "no: the question for 'no' is asked",
        person(branching()),
        b_press("a", "feedback", "no"),
        [b_save("feedback", keys=("no",))],
        edit="card 7:why after feedback",
    ),
    case(
        "a chain: not asked when the question it hangs on was answered otherwise",
        person(branching(feedback=SAID_NO["feedback"])),
        b_press("a", "why", "1"),
        [b_save("why", keys=("lost",))],
        edit="card 7:more after why",
    ),
    case(
        "/resume part-way: the first question that applies",
        person(branching(feedback=AnswerData(201, keys=frozenset({"yes"})))),
        Resume(),
        messages=["card 7:rating"],
    ),
    refused(
        "a press on a question whose condition is false: refused like a forged one",
        person(branching(feedback=AnswerData(201, keys=frozenset({"yes"})))),
        b_press("a", "why", "0"),
        BAD,
    ),
    refused(
        "Change on a question that was not asked: refused like a forged one",
        person(branching(S.COMPLETED, feedback=AnswerData(201, keys=frozenset({"yes"})))),
        b_press("e", "why"),
        {"messages": ["bad_button"]},
    ),
    case(
        "change: answers that no longer apply go, chain and all; what now applies is asked",
        person(branching(S.COMPLETED, editing="feedback", **SAID_NO)),
        b_press("a", "feedback", "yes"),
        [
            b_save("feedback", 201, keys=("yes",), changed=True),
            drop("why"),
            drop("who"),
            SetEditing(ME, B["rating"].id),
        ],
        edit="answered feedback",
        messages=["removed", "card 7:rating"],
    ),
    case(
        "change: the one hanging on it goes; nothing new applies, so the summary",
        person(branching(S.COMPLETED, editing="why", **SAID_NO)),
        b_press("a", "why", "1"),
        [b_save("why", 202, keys=("lost",), changed=True), drop("who"), SetEditing(ME, None)],
        edit="answered why",
        messages=["removed", "summary 7"],
    ),
    case(
        "change: a newly asked question answered, then the summary",
        person(
            branching(
                S.COMPLETED,
                editing="rating",
                feedback=AnswerData(201, keys=frozenset({"yes"})),
                more=SAID_NO["more"],
            )
        ),
        b_press("a", "rating", "4"),
        [b_save("rating", number=4.0), SetEditing(ME, None)],
        edit="answered rating",
        messages=["summary 7"],
    ),
    case(
        "a typed change that makes nothing new apply: the summary",
        person(branching(S.COMPLETED, editing="who", **SAID_NO)),
        Typed("The school"),
        [b_save("who", 203, text="The school", changed=True), SetEditing(ME, None)],
        edit="answered who",
        messages=["summary 7"],
    ),
    case(
        "/resume while a newly applicable question waits: that question",
        person(
            branching(
                S.COMPLETED,
                editing="rating",
                feedback=AnswerData(201, keys=frozenset({"yes"})),
                more=SAID_NO["more"],
            )
        ),
        Resume(),
        messages=["card 7:rating"],
    ),
    case(
        "finishing a set with closing words: the summary, then the closing words once",
        person(
            branching(
                closing="Thank you all",
                feedback=AnswerData(201, keys=frozenset({"yes"})),
                rating=AnswerData(204, number=2.0),
            )
        ),
        b_press("s", "more"),
        [b_save("more", skipped=True), status(S.COMPLETED)],
        edit="answered more",
        messages=["summary 7", "closing"],
    ),
    case(
        "a changed answer after finishing: no closing words again",
        person(branching(S.COMPLETED, editing="more", closing="Thank you all", **SAID_NO)),
        b_press("s", "more"),
        [b_save("more", 205, skipped=True), SetEditing(ME, None)],
        edit="answered more",
        messages=["summary 7"],
    ),
]


@pytest.mark.parametrize(("state", "event", "expected"), BRANCHING_CASES)
def test_branching_decision(state: PersonState, event: Event, expected: dict[str, Any]) -> None:
    test_decision(state, event, expected)


def test_the_removed_answers_are_named_by_their_question() -> None:
    changing = person(branching(S.COMPLETED, editing="feedback", **SAID_NO))
    decision = decide(changing, b_press("a", "feedback", "yes"), NOW)
    removed = decision.messages[0]
    assert isinstance(removed, Text) and removed.params == {"questions": ["Why?", "Who?"]}
    # The card and the summary after it see the answers as they now are.
    card = decision.messages[1]
    assert isinstance(card, Card) and set(card.invitation.answers) == {21, 25}


def test_only_the_questions_asked_are_counted_and_listed() -> None:
    told = branching(S.COMPLETED, feedback=AnswerData(201, keys=frozenset({"yes"})))
    assert [q.key for q in told.asked] == ["feedback", "rating", "more"]
    untold = branching(S.COMPLETED, **SAID_NO)
    assert [q.key for q in untold.asked] == ["feedback", "why", "who", "more"]
    # A count is a most while a later question may or may not be asked; exact after that.
    assert told.place(B["feedback"]) == (1, 5, True)
    assert told.place(B["rating"]) == (2, 3, False)
    assert untold.place(B["who"]) == (3, 5, True)
    assert untold.place(B["more"]) == (4, 4, False)
    # Before any answer, what is not answered counts as '': only the unconditional apply.
    assert [q.key for q in branching().asked] == ["feedback", "more"]


def test_too_long_says_the_questions_own_words_when_it_has_them() -> None:
    state = person(
        branching(feedback=SAID_NO["feedback"], why=AnswerData(202, keys=frozenset({"lost"})))
    )
    [said_] = decide(state, Typed("x" * 11), NOW).messages
    assert isinstance(said_, Text) and said_.template == "too_long.html"
    assert said_.params == {"limit": 10, "length": 11, "message": "Ten at most"}
