"""The one decision for every press, typed answer and /resume of a person in a round: a pure
function of where they are (bot.participation.state) and what they did, returning the effects
to write and what to say, as plain data (in the style of goflow: the step is pure, the host,
bot.participation.journey, applies its effects and renders what it says).

Every press is checked against the state, never trusted: the invitation must be the
presser's, its round open, the question one that applies (its condition holds) and the one
being asked, and the value one it offers.

Branching: a question whose condition is false is not asked (state.InvitationData.asked).
When a changed answer makes later answers no longer apply, they are dropped (DropAnswer) and
the person is told which; questions that now apply are asked before the summary comes again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from bot.kernel import i18n
from bot.participation.presses import Press, scale_number
from bot.participation.state import WAITING, AnswerData, InvitationData, PersonState, QuestionData
from storage.models import InvitationStatus


def N_(message: str) -> str:
    """Marks a message for extraction (make messages); it is translated where it is said."""
    return message


YESNO = (("yes", N_("Yes")), ("no", N_("No")))


# --- what the person did, besides pressing ------------------------------------------------
@dataclass(frozen=True)
class Typed:
    text: str


@dataclass(frozen=True)
class Media:
    kind: str  # "sticker", "photo", "voice"... (Telegram's names; the template says them)


@dataclass(frozen=True)
class Resume:
    typed: bool = False  # they typed something when nothing was being asked
    quiet: bool = False  # say nothing when nothing is waiting


@dataclass(frozen=True)
class Again:
    """An update decided before, delivered again by Telegram after the process that decided it
    died, so its reply may never have been sent: `press`, or (None) a typed message. Nothing
    is decided again; the person is shown where they are."""

    press: Press | None = None


Event = Press | Typed | Media | Resume | Again


# --- effects: what to write ---------------------------------------------------------------
@dataclass(frozen=True)
class SaveAnswer:
    """Write (or overwrite) one answer with its choices and its options' codes. A free text
    (`recode`) is coded as it is stored, replacing the coder's earlier codes. `changed`: a
    confirmed answer now says something else, so it is marked changed (a tick before Done
    is not an answer yet, and saying the same again changes nothing)."""

    invitation_id: int
    question_id: int
    answer_id: int | None  # the row to overwrite, None for a new one
    at: datetime
    keys: tuple[str, ...] = ()
    number: float | None = None
    text: str | None = None
    skipped: bool = False
    codes: tuple[str, ...] = ()
    recode: bool = False
    changed: bool = False


@dataclass(frozen=True)
class DropAnswer:
    """Delete an answer (with its choices, codes and review) whose question no longer applies
    after an earlier answer changed: what was not asked is not kept."""

    invitation_id: int
    question_id: int
    answer_id: int


@dataclass(frozen=True)
class SetStatus:  # and when it was taken (a start or a delivery already noted is kept)
    invitation_id: int
    status: InvitationStatus
    at: datetime


@dataclass(frozen=True)
class SetEditing:  # the question asked out of order: changed after finishing, or being ticked
    invitation_id: int
    question_id: int | None


Effect = SaveAnswer | DropAnswer | SetStatus | SetEditing


# --- what to say ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Text:
    template: str  # under messages/participant/
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Card:
    """A question with its buttons, and the answer so far when it is being changed; or, once
    `answered`, as it stays in the chat: the question and the answer, no buttons."""

    invitation: InvitationData
    question: QuestionData
    previous: QuestionData | None = None  # just answered: its answer heads the card
    answered: bool = False


@dataclass(frozen=True)
class Summary:
    invitation: InvitationData


@dataclass(frozen=True)
class Intro:  # a round's intro with Start now / Later / Not this time
    invitation_id: int
    buttons: bool = True  # False once pressed: its buttons no longer offer anything


Said = Text | Card | Summary | Intro


@dataclass
class Decision:
    effects: list[Effect] = field(default_factory=list)
    toast: Text | None = None  # shown on the pressed button; None: just stop its spinner
    edit: Said | None = None  # the pressed card (or the typed-over card) becomes this
    edit_typed_card: bool = False  # edit the invitation's card below which they typed
    messages: list[Said] = field(default_factory=list)
    refused: str | None = None  # why nothing changed (for the log)

    def say(self, said: Said) -> Decision:
        self.messages.append(said)
        return self


def refuse(template: str, reason: str, *, toast: bool = False, **params: Any) -> Decision:
    """A press that changes nothing; `template` says why, kindly, once: on the pressed button
    (a passing `toast`) or as a message, never both."""
    said = Text(template, params)
    return Decision(toast=said if toast else None, messages=[] if toast else [said], refused=reason)


def _bad_button(state: PersonState, reason: str) -> Decision:  # /resume only if something waits
    return refuse("bad_button.html", reason, waiting=state.next_invitation() is not None)


def decide(state: PersonState, event: Event, now: datetime) -> Decision:
    if isinstance(event, Press):
        return _press(state, event, now)
    if isinstance(event, Typed):
        return _typed(state, event.text, now)
    if isinstance(event, Media):
        return _media(state, event.kind)
    if isinstance(event, Again):
        return _again(state, event, now)
    return _resume(state, event, now)


def _press(state: PersonState, press: Press, now: datetime, *, again: bool = False) -> Decision:
    if state.stopped:
        return Decision(messages=[Text("stopped_hint.html")])
    invitation = state.invitation(press.invitation_id)
    if invitation is None:
        return _bad_button(state, "invitation not this person's")
    if not invitation.round_open:
        return refuse("round_closed.html", f"round of invitation {invitation.id} not open")
    question = None
    if press.question_id is not None:
        question = invitation.question(press.question_id)
        if question is None:
            return _bad_button(state, "question not in this round")
        if not invitation.applies(question):  # never asked: no button of ours is on it
            return _bad_button(state, "question not asked: its condition is false")
    if press.kind == "go":
        return _start(state, invitation, now)
    if press.kind == "later":
        return Decision(messages=[Text("later.html")])
    if press.kind == "no":
        return _decline(state, invitation, now)
    assert question is not None
    if press.kind == "e":
        if invitation.status != InvitationStatus.COMPLETED:
            return refuse("already_saved.html", "change before finishing", toast=True)
        changing = replace(invitation, editing_question_id=question.id)
        return Decision(
            effects=_set_editing(invitation, question.id), messages=[Card(changing, question)]
        )
    forged = _forged(question, press)
    if forged:  # checked first: "Already saved" would claim a value nobody was offered
        return _bad_button(state, forged)
    if invitation.status not in (InvitationStatus.STARTED, InvitationStatus.COMPLETED):
        return refuse("already_saved.html", f"invitation is {invitation.status}", toast=True)
    current = invitation.current_question()
    if again or current is None or current.id != question.id:
        return _where(invitation, question, press.on, again=again)
    return _answer(state, invitation, question, press, now)


def _where(
    invitation: InvitationData, pressed: QuestionData, on: int | None, *, again: bool
) -> Decision:
    """A press that changes nothing: on a question already answered (a second tap, or a card
    whose edit never reached the chat) or delivered `again`. The pressed card is brought to
    where the person is: the question being asked, with the pressed one's answer on top, or,
    once that is on another card (typed answers move the question below) or the round is
    finished, the pressed question's answer. A repeated tap says "Already saved" on the button;
    a press delivered again repeats what its lost reply said (the next card, the summary)."""
    current = invitation.current_question()
    on_card = on is None or invitation.prompt_message_id in (None, on)
    if current is not None and on_card:
        answered = pressed.id != current.id and pressed.id in invitation.answers
        edit: Said = Card(invitation, current, previous=pressed if answered else None)
    else:
        edit = Card(invitation, pressed, answered=True)
    if not again:
        return Decision(
            toast=Text("already_saved.html"), edit=edit, refused="not the question being asked"
        )
    return Decision(edit=edit, messages=[Summary(invitation)] if current is None else [])


def _again(state: PersonState, again: Again, now: datetime) -> Decision:
    if again.press is not None:  # an intro's or a Change press decides nothing new
        return _press(state, again.press, now, again=again.press.kind in ("a", "t", "d", "s"))
    if state.stopped:
        return Decision()
    if state.next_invitation() is None:  # a typed answer that finished a round: its summary
        finished = state.finished()
        return Decision(messages=[Summary(finished)] if finished else [])
    return _resume(state, Resume(quiet=True), now)


def _answer(
    state: PersonState,
    invitation: InvitationData,
    question: QuestionData,
    press: Press,
    now: datetime,
) -> Decision:
    known = invitation.answers.get(question.id)
    if press.kind == "a":
        keys, number = _button_value(question, press.value or "") or ([], None)
        answer = AnswerData(None, number=number, keys=frozenset(keys))
        return _advance(state, *_save(invitation, question, answer, now), now)
    if press.kind == "s":
        return _advance(
            state, *_save(invitation, question, AnswerData(None, skipped=True), now), now
        )
    if press.kind == "d":
        if known is None or not known.keys:
            return refuse("pick_one.html", "done with nothing ticked", toast=True)
        return _advance(state, invitation, question, [], now)
    index = int(press.value or "")
    ticked = _toggled(
        question, known.keys if known else frozenset(), str(question.options[index]["id"])
    )
    after, _, save = _save(invitation, question, AnswerData(None, keys=ticked), now)
    # The ticks are stored as given; the question stays the one asked until Done.
    return Decision(
        effects=[*save, *_set_editing(invitation, question.id)],
        edit=Card(replace(after, editing_question_id=question.id), question),
    )


def _forged(question: QuestionData, press: Press) -> str | None:
    """Why `press` is no button this bot put on `question`'s card, or None if it could be."""
    value = press.value or ""
    if press.kind == "a" and _button_value(question, value) is None:
        return f"{value!r} is no answer to a {question.type}"
    if press.kind == "s" and (question.type != "text" or question.required):
        return "skip on a required question"
    if press.kind in ("t", "d") and question.type != "multi":
        return "tick or done on a non-multi question"
    if press.kind == "t" and not (
        value.isascii() and value.isdigit() and int(value) < len(question.options)
    ):
        return f"no option {value!r}"
    return None


def _toggled(question: QuestionData, chosen: frozenset[str], key: str) -> frozenset[str]:
    exclusive = {str(o["id"]) for o in question.options if o.get("exclusive")}
    if key in chosen:
        return chosen - {key}
    if key in exclusive:
        return frozenset({key})  # "None of these" clears the others
    return chosen - exclusive | {key}


def _button_value(question: QuestionData, value: str) -> tuple[list[str], float | None] | None:
    if question.type == "single":
        if value.isascii() and value.isdigit() and int(value) < len(question.options):
            return [str(question.options[int(value)]["id"])], None
    elif question.type == "yesno":
        if value in labels(question):
            return [value], None
    elif question.type == "scale":
        scale = question.scale or {}
        number = scale_number(value)
        if number is not None and scale.get("min", 1) <= number <= scale.get("max", 5):
            return [], float(number)
    return None


def labels(question: Any) -> dict[str, str]:
    """Option id -> label; `question` is a Question row or QuestionData."""
    if question.type == "yesno" and not question.options:
        return {key: i18n.gettext(label) for key, label in YESNO}
    return {str(o["id"]): str(o["label"]) for o in question.options}


def option_codes(question: Any, keys: frozenset[str], number: float | None) -> set[str]:
    """The codes an answer carries from its options and from the question's coding rules."""
    codes: set[str] = set()
    for option in question.options:
        if str(option["id"]) in keys:
            codes.update(option.get("codes") or [])
    coding = question.coding or {}
    rule_codes = coding.get("codes") or []
    if question.type == "yesno" and coding.get("codes_when") in keys:
        codes.update(rule_codes)
    limit = coding.get("codes_at_most")
    if question.type == "scale" and limit is not None and number is not None and number <= limit:
        codes.update(rule_codes)
    return codes


def _save(
    invitation: InvitationData, question: QuestionData, answer: AnswerData, now: datetime
) -> tuple[InvitationData, QuestionData, list[Effect]]:
    """The effect that stores `answer`, and the invitation as it is once stored.

    An answer already stored is confirmed once the invitation is finished: before that the
    only answer stored again is a multi question's ticks before Done (answers come in order,
    and Change is offered after finishing only)."""
    known = invitation.answers.get(question.id)
    confirmed = invitation.status == InvitationStatus.COMPLETED
    effect = SaveAnswer(
        invitation_id=invitation.id,
        question_id=question.id,
        answer_id=known.answer_id if known else None,
        at=now,
        keys=tuple(k for k in labels(question) if k in answer.keys),
        number=answer.number,
        text=answer.text,
        skipped=answer.skipped,
        codes=tuple(sorted(option_codes(question, answer.keys, answer.number))),
        recode=question.type == "text",
        changed=known is not None and confirmed and not _same(known, answer),
    )
    return invitation.answered(question, answer), question, [effect]


def _same(one: AnswerData, other: AnswerData) -> bool:
    """The same answer, wherever each is stored."""
    return (one.skipped, one.text, one.number, one.keys) == (
        other.skipped,
        other.text,
        other.number,
        other.keys,
    )


def _set_editing(invitation: InvitationData, question_id: int | None) -> list[Effect]:
    if invitation.editing_question_id == question_id:
        return []
    return [SetEditing(invitation.id, question_id)]


def _advance(
    state: PersonState,
    invitation: InvitationData,
    answered: QuestionData,
    effects: list[Effect],
    now: datetime,
    *,
    typed: bool = False,
) -> Decision:
    """After an answer: the card moves on to the next question in place, or shows the answer
    and the summary follows. A typed answer sits below the card, so the card only loses its
    buttons and the next question comes as a new card under what they typed.

    An answer changed after finishing may make later answers no longer apply: they are
    dropped, and said so; a question that now applies is asked (on a new card, still out of
    order) before the summary comes again."""
    stale = invitation.stale_answers()
    now_is = replace(invitation.without(stale), editing_question_id=None)
    following = now_is.current_question()
    decision = Decision(effects=[*effects, *_drops(invitation, stale)])
    decision.edit = Card(now_is, answered, answered=True)
    decision.edit_typed_card = typed
    if stale:
        decision.say(Text("removed.html", {"questions": [q.text for q in stale]}))
    if invitation.status == InvitationStatus.COMPLETED:
        asking = following.id if following is not None else None
        decision.effects += _set_editing(invitation, asking)
        if following is None:
            return decision.say(Summary(now_is))
        return decision.say(Card(replace(now_is, editing_question_id=asking), following))
    decision.effects += _set_editing(invitation, None)
    if following is None:
        return _finish(state, now_is, decision, now)
    if typed:
        return decision.say(Card(now_is, following))
    decision.edit = Card(now_is, following, previous=answered)
    return decision


def _drops(invitation: InvitationData, questions: list[QuestionData]) -> list[Effect]:
    stored = ((q, invitation.answers[q.id].answer_id) for q in questions)
    return [DropAnswer(invitation.id, q.id, a) for q, a in stored if a is not None]


def _finish(
    state: PersonState, invitation: InvitationData, decision: Decision, now: datetime
) -> Decision:
    decision.effects.append(SetStatus(invitation.id, InvitationStatus.COMPLETED, now))
    finished = replace(invitation, status=InvitationStatus.COMPLETED)
    decision.say(Summary(finished))
    if finished.closing:
        decision.say(Text("closing.html", {"text": finished.closing}))
    return _offer_next(state, finished, decision, now)


def _offer_next(
    state: PersonState, after: InvitationData, decision: Decision, now: datetime
) -> Decision:
    """Once a round is finished or declined, the one waiting next (if any) is offered."""
    now_is = tuple(after if i.id == after.id else i for i in state.invitations)
    following = replace(state, invitations=now_is).next_invitation()
    if following is None or following.id == after.id:
        return decision
    if following.status in WAITING:
        decision.effects.append(SetStatus(following.id, InvitationStatus.DELIVERED, now))
    return decision.say(Intro(following.id))


def _start(state: PersonState, invitation: InvitationData, now: datetime) -> Decision:
    if invitation.status == InvitationStatus.COMPLETED:
        return Decision(edit=Intro(invitation.id, buttons=False), messages=[Summary(invitation)])
    active = state.active()
    if active is not None and active.id != invitation.id:
        # One round at a time: finish (or decline) the one in progress first.
        decision = Decision(messages=[Text("one_at_a_time.html")])
        question = active.current_question()
        if question is not None:
            decision.say(Card(active, question))
        if invitation.status in (InvitationStatus.PENDING, InvitationStatus.DELIVERED):
            decision.effects.append(SetStatus(invitation.id, InvitationStatus.QUEUED, now))
        return decision
    # Started: the pressed intro keeps its words and loses its buttons.
    decision = Decision(edit=Intro(invitation.id, buttons=False))
    if invitation.status != InvitationStatus.STARTED:
        decision.effects.append(SetStatus(invitation.id, InvitationStatus.STARTED, now))
        invitation = replace(invitation, status=InvitationStatus.STARTED)
    question = invitation.current_question()
    if question is None:
        return _finish(state, invitation, decision, now)
    return decision.say(Card(invitation, question))


def _decline(state: PersonState, invitation: InvitationData, now: datetime) -> Decision:
    finished = invitation.status == InvitationStatus.COMPLETED
    decision = Decision(messages=[Text("declined.html", {"finished": finished})])
    if invitation.status in (*WAITING, InvitationStatus.STARTED):
        decision.effects += [
            SetStatus(invitation.id, InvitationStatus.DECLINED, now),
            *_set_editing(invitation, None),
        ]
        invitation = replace(invitation, status=InvitationStatus.DECLINED, editing_question_id=None)
    return _offer_next(state, invitation, decision, now)


def _typed(state: PersonState, text: str, now: datetime) -> Decision:
    """Free text: the answer to a text question, or a nudge back to what is waiting."""
    invitation = state.active()
    question = invitation.current_question() if invitation else None
    if invitation is None or question is None:
        return _resume(state, Resume(typed=True), now)
    if question.type != "text":
        return Decision(messages=[Text("use_buttons.html"), Card(invitation, question)])
    limit = min(question.max_length or state.text_limit, state.text_limit)
    if len(text) > limit:
        # Never truncate silently and never keep a half: nothing is stored until it fits.
        said = {"limit": limit, "length": len(text), "message": question.constraint_message}
        return Decision(messages=[Text("too_long.html", said)])
    if not text.strip():
        return Decision(messages=[Card(invitation, question)])
    save = _save(invitation, question, AnswerData(None, text=text), now)
    return _advance(state, *save, now, typed=True)


def _media(state: PersonState, kind: str) -> Decision:
    """A sticker, photo, voice note or location: kindly say what is expected instead."""
    invitation = state.active()
    question = invitation.current_question() if invitation else None
    expecting = question.type if question else None
    decision = Decision(messages=[Text("not_text.html", {"kind": kind, "expecting": expecting})])
    if invitation is not None and question is not None:
        decision.say(Card(invitation, question))
    return decision


def _resume(state: PersonState, resume: Resume, now: datetime) -> Decision:
    """Carry on where they left off, or offer the round that is waiting, or show the summary
    of the round they finished."""
    invitation = state.next_invitation()
    if invitation is None:
        finished = state.finished()
        if finished is not None and not (resume.quiet or resume.typed):
            # They finished a round still open: where they are is its summary, whose
            # buttons change an answer (and which may never have reached them).
            return Decision(messages=[Summary(finished)])
        if resume.quiet:
            return Decision()
        return Decision(messages=[Text("nothing_waiting.html", {"typed": resume.typed})])
    if invitation.status in WAITING:
        return Decision(
            effects=[SetStatus(invitation.id, InvitationStatus.DELIVERED, now)],
            messages=[Intro(invitation.id)],
        )
    question = invitation.current_question()
    if question is None:
        return Decision(messages=[Summary(invitation)])
    return Decision(messages=[Card(invitation, question)])
