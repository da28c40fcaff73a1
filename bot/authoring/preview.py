"""A draft played in the coordinator's own chat exactly as a participant meets it, with nothing
stored: the one decision of the participant's journey (bot.participation.decide) runs over a
person made from the draft, and its effects are kept in the draft's row instead of in
answers. Same cards, same buttons, same branching, same summary and Change buttons, and the
same language: the draft's texts in the coordinator's, when it has them, as a participant who
chose that language meets them (otherwise its own, with the participant's note).

The buttons carry ``v:`` before the participant's callback data, so a preview's press never
reaches a real invitation, and a real card's press never reaches a preview.
"""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot.authoring.drafts import Dialog, draft_of, preview_buttons
from bot.consultations.catalogue import question_columns
from bot.consultations.sets import ConsultationSet
from bot.kernel import i18n
from bot.kernel.reply import BUTTONS_OFF, Button, OutgoingMessage, Reply
from bot.participation import presses
from bot.participation.cards import render
from bot.participation.decide import (
    Decision,
    DropAnswer,
    Event,
    Resume,
    SaveAnswer,
    SetEditing,
    SetStatus,
    Typed,
    decide,
)
from bot.participation.state import (
    AnswerData,
    InvitationData,
    PersonState,
    QuestionData,
    texts_in,
    translated,
)
from storage.models import DialogState, InvitationStatus

PREFIX = "v"
INVITATION = 1  # a preview's one invitation, as its buttons name it


def waiting_for_text(session: Session, chat_id: int) -> bool:
    draft = draft_of(session, chat_id)
    return draft is not None and draft[0].step == "preview"


def start(session: Session, d: Dialog) -> Reply:
    """Preview (again): from the first question, with no answers."""
    draft = draft_of(session, d.chat_id)
    if draft is None:
        raise d.refuse("no_draft")
    state, spec = draft
    played = {"status": InvitationStatus.STARTED.value, "answers": {}, "editing": None}
    state.step, state.data = "preview", {**state.data, "played": played}
    state.updated_at = d.now
    reply = _play(state, spec, d, Resume())
    texts, untranslated = _texts(spec)
    intro = d.say(
        "preview_intro",
        title=texts.get("title", spec.title),
        intro=texts.get("intro", spec.intro),
        untranslated=untranslated,
    )
    reply.messages.insert(0, OutgoingMessage(intro))
    return reply


def press(session: Session, d: Dialog, data: str) -> Reply:
    """A press on a preview's card or summary: ``v:`` and the participant's callback data."""
    pressed = presses.parse(data.removeprefix(f"{PREFIX}:"))
    if not isinstance(pressed, presses.Press) or pressed.invitation_id != INVITATION:
        raise d.refuse("forged")
    return _event(session, d, pressed)


def typed(session: Session, d: Dialog, text: str) -> Reply:
    return _event(session, d, Typed(text))


def _event(session: Session, d: Dialog, event: Event) -> Reply:
    draft = draft_of(session, d.chat_id)
    if draft is None:
        raise d.refuse("no_draft")
    state, spec = draft
    if state.step != "preview":
        raise d.refuse("preview_over")
    return _play(state, spec, d, event)


def _texts(spec: ConsultationSet) -> tuple[dict[str, str], bool]:
    """The draft's texts in the language being spoken (the coordinator's), by key, and whether
    it lacks that language (then its own is said), as for a participant."""
    return texts_in({"language": spec.language, "translations": spec.translations}, i18n.current())


def _play(state: DialogState, spec: ConsultationSet, d: Dialog, event: Event) -> Reply:
    played = state.data["played"]
    texts, _untranslated = _texts(spec)
    person = _person(spec, texts, played, d)
    decision = decide(person, event, d.now)
    played = _apply(played, decision)
    state.data = {**state.data, "played": played}
    state.updated_at = d.now
    intro = OutgoingMessage(texts.get("intro", spec.intro))
    reply = _marked(render(decision, d.renderer, lambda _invitation: intro))
    if _finished(decision):
        reply.say(OutgoingMessage(d.say("preview_done", spec=spec), preview_buttons(d)))
    return reply


def _questions(spec: ConsultationSet, texts: dict[str, str]) -> tuple[QuestionData, ...]:
    names = {f.name for f in fields(QuestionData)}
    return tuple(
        translated(
            QuestionData(
                id=position + 1,
                **{k: v for k, v in question_columns(position, q).items() if k in names},
            ),
            texts,
        )
        for position, q in enumerate(spec.questions)
    )


def _person(
    spec: ConsultationSet, texts: dict[str, str], played: dict[str, Any], d: Dialog
) -> PersonState:
    answers = {
        int(question_id): AnswerData(
            int(question_id),
            bool(a["skipped"]),
            a["text"],
            a["number"],
            frozenset(a["keys"]),
        )
        for question_id, a in played["answers"].items()
    }
    invitation = InvitationData(
        id=INVITATION,
        status=InvitationStatus(played["status"]),
        editing_question_id=played["editing"],
        prompt_message_id=None,
        round_open=True,
        closes_at=d.now + timedelta(days=7),
        title=texts.get("title", spec.title),
        consultation_id=0,
        questions=_questions(spec, texts),
        answers=answers,
        closing=texts.get("closing", spec.closing),
    )
    return PersonState(
        joined=True,
        stopped=False,
        invitations=(invitation,),
        text_limit=d.settings.privacy.max_text_length,
    )


def _apply(played: dict[str, Any], decision: Decision) -> dict[str, Any]:
    """The decision's effects, kept in the draft instead of the database."""
    answers = dict(played["answers"])
    out = {**played}
    for effect in decision.effects:
        if isinstance(effect, SaveAnswer):
            answers[str(effect.question_id)] = {
                "keys": list(effect.keys),
                "number": effect.number,
                "text": effect.text,
                "skipped": effect.skipped,
            }
        elif isinstance(effect, DropAnswer):
            answers.pop(str(effect.question_id), None)
        elif isinstance(effect, SetStatus):
            out["status"] = effect.status.value
        elif isinstance(effect, SetEditing):
            out["editing"] = effect.question_id
    out["answers"] = answers
    return out


def _finished(decision: Decision) -> bool:
    """The last question was just answered (not an answer changed afterwards)."""
    return any(
        isinstance(e, SetStatus) and e.status == InvitationStatus.COMPLETED
        for e in decision.effects
    )


def _marked(reply: Reply) -> Reply:
    """The participant's buttons, pointed at the preview; nothing remembered as a real card."""

    def mark(message: OutgoingMessage) -> OutgoingMessage:
        if message is BUTTONS_OFF:
            return message
        buttons = tuple(
            tuple(
                replace(b, callback_data=f"{PREFIX}:{b.callback_data}")
                if isinstance(b, Button) and b.callback_data
                else b
                for b in row
            )
            for row in message.buttons
        )
        return replace(message, buttons=buttons)

    reply.messages = [mark(m) for m in reply.messages]
    if reply.edit is not None:
        reply.edit = mark(reply.edit)
    reply.card_for = None
    reply.edit_message_id = None
    return reply
