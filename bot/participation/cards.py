"""What a participant sees: a round's intro and reminder, the question card with its buttons,
the answered card, the summary, and the Reply a decision (bot.participation.decide) says."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.feedback.actions import recent_feedback
from bot.kernel import i18n
from bot.kernel.dialogs import button
from bot.kernel.render import TELEGRAM_LIMIT, Renderer, shown_length
from bot.kernel.reply import BUTTONS_OFF, Button, OutgoingMessage, Reply, rows
from bot.participation.decide import (
    Card,
    Decision,
    Intro,
    Said,
    Summary,
    Text,
    labels,
)
from bot.participation.state import AnswerData, InvitationData, QuestionData, texts_in
from storage.models import Invitation, InvitationStatus, Question

T = "messages/participant/"


def invitation_message(
    session: Session, renderer: Renderer, invitation: Invitation, *, partnership: str
) -> OutgoingMessage:
    """The intro that opens a round for one person, with Start now / Later / Not this time,
    in their language (rendered for them: it may wait in the outbox)."""
    with i18n.speaking(invitation.participant.language or i18n.chosen()):
        return _invitation_message(session, renderer, invitation, partnership=partnership)


def _invitation_message(
    session: Session, renderer: Renderer, invitation: Invitation, *, partnership: str
) -> OutgoingMessage:
    round_ = invitation.round
    consultation = round_.consultation
    texts, untranslated = texts_in(consultation.spec, i18n.current())
    text = renderer.render(
        T + "invitation.html",
        title=texts.get("title", consultation.title),
        untranslated=untranslated,
        partnership=partnership,
        intro=texts.get("intro", consultation.intro),
        minutes=consultation.estimated_minutes,
        questions=len(consultation.questions),
        up_to=_branches(consultation.questions),
        closes_at=round_.closes_at,
        since_last=_since_last_time(session, invitation),
    )
    return OutgoingMessage(
        text=text,
        buttons=rows(
            [button(renderer, "start_now", f"p:go:{invitation.id}")],
            [
                button(renderer, "later", f"p:later:{invitation.id}"),
                button(renderer, "not_this_time", f"p:no:{invitation.id}"),
            ],
        ),
    )


def _since_last_time(session: Session, invitation: Invitation, limit: int = 3) -> list[Any]:
    """'You said, we did' published since this person was last asked: closing the loop is
    what makes the next round worth answering."""
    previous = session.scalar(
        select(func.max(Invitation.invited_at)).where(
            Invitation.participant_id == invitation.participant_id,
            Invitation.id != invitation.id,
        )
    )
    if previous is None:
        return []
    return recent_feedback(session, invitation.participant_id, since=previous)[:limit]


def reminder_message(
    session: Session, renderer: Renderer, invitation: Invitation, *, partnership: str
) -> OutgoingMessage:
    """A gentle nudge before a round closes, with Continue / Not this time, in their
    language."""
    with i18n.speaking(invitation.participant.language or i18n.chosen()):
        return _reminder_message(session, renderer, invitation, partnership=partnership)


def _reminder_message(
    session: Session, renderer: Renderer, invitation: Invitation, *, partnership: str
) -> OutgoingMessage:
    round_ = invitation.round
    texts, _untranslated = texts_in(round_.consultation.spec, i18n.current())
    text = renderer.render(
        T + "reminder.html",
        title=texts.get("title", round_.consultation.title),
        partnership=partnership,
        answered=len(invitation.answers),
        total=len(round_.consultation.questions),
        up_to=_branches(round_.consultation.questions),
        closes_at=round_.closes_at,
    )
    return OutgoingMessage(
        text=text,
        buttons=rows(
            [
                button(renderer, "continue", f"p:go:{invitation.id}"),
                button(renderer, "not_this_time", f"p:no:{invitation.id}"),
            ]
        ),
    )


def _branches(questions: list[Question]) -> bool:
    """Whether some question is asked only on a condition: then a count of questions is how
    many there are at most ("up to 6"), not how many each person is asked."""
    return any(q.relevant for q in questions)


def describe(question: Any, answer: AnswerData | None) -> str:
    """An answer in words; `question` is a Question row or QuestionData."""
    if answer is None:
        return ""
    if answer.skipped:
        return i18n.gettext("(skipped)")
    if question.type == "text":
        return answer.text or ""
    if question.type == "scale":
        return "" if answer.number is None else f"{answer.number:g}"
    named = labels(question)
    return ", ".join(named[k] for k in named if k in answer.keys)


def _buttons(
    renderer: Renderer, question: QuestionData, invitation_id: int, chosen: Any
) -> list[list[Button]]:
    at = f"{invitation_id}:{question.id}"
    if question.type in ("single", "multi"):
        kind = "a" if question.type == "single" else "t"
        ticks = chosen if question.type == "multi" else ()
        buttons = [
            [Button(("✓ " if str(o["id"]) in ticks else "") + str(o["label"]), f"{kind}:{at}:{i}")]
            for i, o in enumerate(question.options)
        ]
        return [*buttons, [button(renderer, "done", f"d:{at}")]] if kind == "t" else buttons
    if question.type == "yesno":
        return [[Button(label, f"a:{at}:{key}") for key, label in labels(question).items()]]
    if question.type == "scale":
        scale = question.scale or {}
        low, high = int(scale.get("min", 1)), int(scale.get("max", 5))
        numbers = [Button(str(n), f"a:{at}:{n}") for n in range(low, high + 1)]
        # Phones show six buttons in a row comfortably; wider scales get two rows.
        half = len(numbers) // 2
        return [numbers] if len(numbers) <= 6 else [numbers[:half], numbers[half:]]
    if question.type == "text" and not question.required:
        return [[button(renderer, "skip", f"s:{at}")]]
    return []


def _card(renderer: Renderer, card: Card) -> OutgoingMessage:
    invitation, question = card.invitation, card.question
    answer = invitation.answers.get(question.id)
    number, total, up_to = invitation.place(question)
    place = {"number": number, "total": total, "up_to": up_to}
    if card.answered:
        text = renderer.render(
            T + "answered.html", **place, question=question, answer=describe(question, answer)
        )
        return OutgoingMessage(text=text)
    previous = None
    if card.previous is not None:
        said = describe(card.previous, invitation.answers.get(card.previous.id))
        previous = {"question": card.previous.text, "answer": said}
    text = renderer.render(
        T + "question.html",
        **place,
        question=question,
        scale=question.scale or {},
        editing=invitation.status == InvitationStatus.COMPLETED and answer is not None,
        current=describe(question, answer),
        previous=previous,
    )
    chosen = answer.keys if answer else frozenset()
    return OutgoingMessage(
        text=text, buttons=rows(*_buttons(renderer, question, invitation.id, chosen))
    )


def _summary(renderer: Renderer, invitation: InvitationData) -> OutgoingMessage:
    """Thanks, every answer in words, and a Change button per question; in one message. Only
    the questions asked are listed: one whose condition is false was not."""
    asked = invitation.asked
    items = [(q, describe(q, invitation.answers.get(q.id))) for q in asked]

    def text(cap: int | None) -> str:
        shown = [(q, shortened(answer, cap)) for q, answer in items]
        return renderer.render(
            T + "summary.html", title=invitation.title, items=shown, closes_at=invitation.closes_at
        )

    buttons = [
        button(renderer, "change", f"e:{invitation.id}:{q.id}", number=n)
        for n, q in enumerate(asked, 1)
    ]
    return OutgoingMessage(
        text=fitted(text, max((len(answer) for _, answer in items), default=0)),
        buttons=rows(*[buttons[i : i + 4] for i in range(0, len(buttons), 4)]),
    )


def shortened(answer: str, cap: int | None) -> str:
    """`answer` in at most `cap` characters, an ellipsis saying where it was cut."""
    if cap is None or len(answer) <= cap:
        return answer
    return answer[: cap - 1].rstrip() + "…"


def fitted(text: Callable[[int | None], str], longest: int) -> str:
    """`text(None)` if Telegram takes it as one message, else `text(cap)` with the largest cap
    on each answer that fits: six long typed answers make a summary Telegram refuses, and the
    person would never see it or its Change buttons. A cap of 1 always fits: a set has at most
    12 questions of at most 300 characters each (bot.consultations.sets)."""
    whole = text(None)
    if shown_length(whole) <= TELEGRAM_LIMIT:
        return whole
    low, high = 1, longest  # text(low) fits (see above); find the largest cap that does
    while low < high:
        middle = (low + high + 1) // 2
        if shown_length(text(middle)) <= TELEGRAM_LIMIT:
            low = middle
        else:
            high = middle - 1
    return text(low)


def render(
    decision: Decision, renderer: Renderer, intro: Callable[[int], OutgoingMessage]
) -> Reply:
    """The Reply that says what `decision` says; `intro` renders a round's intro."""

    def message(said: Said) -> OutgoingMessage:
        if isinstance(said, Text):
            return OutgoingMessage(renderer.render(T + said.template, **said.params))
        if isinstance(said, Card):
            return _card(renderer, said)
        if isinstance(said, Summary):
            return _summary(renderer, said.invitation)
        assert isinstance(said, Intro)
        # Pressed, its text stays as it is: rendering it again cost a Start now press more
        # than all its other work (bench/press_cost.py).
        return intro(said.invitation_id) if said.buttons else BUTTONS_OFF

    reply = Reply(toast=message(decision.toast).text if decision.toast else None)
    if decision.edit is not None:
        reply.edit = message(decision.edit)
        if decision.edit_typed_card and isinstance(decision.edit, Card):
            reply.edit_message_id = decision.edit.invitation.prompt_message_id
    for said in decision.messages:
        if isinstance(said, Card):
            reply.card(said.invitation.id, message(said))
        else:
            reply.say(message(said))
    return reply
