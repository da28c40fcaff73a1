"""The guided /action dialog ("you said, we did"), as plain decisions over a session like
bot.rounds.schedule_dialog: each step reads and writes one DialogState row and returns the next
screen, so any process and any restart can carry the dialog on (firm principle 1).

Steps: the round (recent closed rounds), the finding (the round's most named barriers from
its digest, or a typed line), what will be done, who, by when, then Save or Cancel.

Callback data is ``ac:<dialog>:<step>:<value>``, where <dialog> is a random token made when the
dialog starts (row ids are no good: SQLite gives a deleted row's id to the next one). A press
is refused, changing nothing, when its dialog has ended or been replaced (the token no longer
matches), when it belongs to an earlier step, or when its value is not one the step offered.
"""

from __future__ import annotations

import calendar
import re
import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.coding.codebook import Codebook
from bot.digests.compile import compile_digest, prepare
from bot.digests.scopes import round_scope
from bot.feedback.actions import (
    MAX_FIELD,
    MAX_OWNER,
    ActionInput,
    FeedbackError,
    add_action,
    parse_due,
)
from bot.kernel import dialogs
from bot.kernel.reply import Button, OutgoingMessage, Reply, rows
from storage.models import DialogState, Round, RoundStatus

KIND = "action"
PREFIX = "ac"
RECENT_ROUNDS = 6
TOP_CODES = 5
TEXT_STEPS = ("finding", "what", "who", "date")
TOKEN = re.compile(r"[0-9a-f]{8}")
DUE_CHOICES = ("2w", "1m", "3m")


@dataclass
class Dialog(dialogs.Dialog):
    folder = "action"
    codebook: Codebook

    @property
    def today(self) -> date:
        return self.now.astimezone(self.settings.zone).date()

    def button(self, state: DialogState, key: str, step: str, value: str, **context: Any) -> Button:
        data = f"{PREFIX}:{state.data['token']}:{step}:{value}"
        return dialogs.button(self.renderer, key, data, **context)

    def cancel(self, state: DialogState) -> list[Button]:
        return [self.button(state, "cancel", "x", "x")]


def waiting_for_text(session: Session, chat_id: int) -> bool:
    return dialogs.waiting_for_text(session, chat_id, KIND, TEXT_STEPS)


def _state(session: Session, chat_id: int) -> DialogState | None:
    return dialogs.dialog_state(session, chat_id, KIND)


def _closed_round(session: Session, d: Dialog, round_id: int) -> Round:
    round_ = session.get(Round, round_id)
    if round_ is None or round_.status != RoundStatus.CLOSED:
        raise d.refuse("not_closed", round_id=round_id)
    return round_


def add_months(day: date, months: int) -> date:
    """The same day `months` later, or the month's last day if it is shorter (31 Jan -> 28 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _due(choice: str, today: date) -> date:
    if choice == "2w":
        return today + timedelta(days=14)
    return add_months(today, 1 if choice == "1m" else 3)


# ------------------------------------------------------------------ screens


def start(session: Session, d: Dialog, round_id: int | None = None) -> Reply:
    """Begin at the round step, or with `round_id` (``/action N``) at the finding step."""
    round_ = _closed_round(session, d, round_id) if round_id is not None else None
    recent: list[Round] = []
    if round_ is None:
        recent = list(
            session.scalars(
                select(Round)
                .where(Round.status == RoundStatus.CLOSED)
                .order_by(Round.closed_at.desc(), Round.id.desc())
                .limit(RECENT_ROUNDS)
            )
        )
        if not recent:
            raise d.refuse("no_rounds")
    state = dialogs.begin(session, d.chat_id, KIND, "rnd", d.now, token=secrets.token_hex(4))
    if round_ is not None:
        return Reply().say(_finding_screen(session, d, state, round_))
    dialogs.advance(state, "rnd", d.now, rounds=[r.id for r in recent])
    buttons = [[d.button(state, "round", "rnd", str(r.id), round=r)] for r in recent]
    return Reply().say(
        OutgoingMessage(d.say("round", rounds=recent), rows(*buttons, d.cancel(state)))
    )


def _finding_screen(
    session: Session, d: Dialog, state: DialogState, round_: Round
) -> OutgoingMessage:
    scope = round_scope(session, round_.id)
    prepare(session, scope, d.codebook)  # a no-op once the round's close published it
    digest = compile_digest(
        session, d.settings, scope, audience="coordinator", codebook=d.codebook, now=d.now
    )
    top = digest.barriers.rows[:TOP_CODES]
    dialogs.advance(state, "code", d.now, round_id=round_.id, codes=[r.code for r in top])
    token = state.data["token"]
    buttons = [[Button(str(r.label)[:48], f"{PREFIX}:{token}:code:{i}")] for i, r in enumerate(top)]
    return OutgoingMessage(
        d.say("finding", round=round_, rows=top, k=digest.k),
        rows(*buttons, [d.button(state, "other_finding", "code", "other")], d.cancel(state)),
    )


def _ask(d: Dialog, state: DialogState, field: str) -> OutgoingMessage:
    return OutgoingMessage(d.say("ask", field=field), rows(d.cancel(state)))


def _due_screen(d: Dialog, state: DialogState) -> OutgoingMessage:
    today = d.today
    return OutgoingMessage(
        d.say("due", dates={k: _due(k, today) for k in DUE_CHOICES}),
        rows(
            [d.button(state, "due", "due", k, choice=k) for k in DUE_CHOICES],
            [d.button(state, "due", "due", k, choice=k) for k in ("type", "none")],
            d.cancel(state),
        ),
    )


def _summary(session: Session, d: Dialog, state: DialogState) -> OutgoingMessage:
    data = state.data
    code = data.get("barrier_code")
    round_ = session.get(Round, data["round_id"])
    return OutgoingMessage(
        d.say(
            "summary",
            round=round_,
            round_id=data["round_id"],
            finding=data["finding"],
            barrier=d.codebook[code].label if code and code in d.codebook else None,
            action=data["action"],
            owner=data["owner"],
            due=date.fromisoformat(data["due"]) if data.get("due") else None,
        ),
        rows([d.button(state, "save", "ok", "save"), *d.cancel(state)]),
    )


# ------------------------------------------------------------------ input


def press(session: Session, d: Dialog, data: str, *, actor: int) -> Reply:
    """Handle an ``ac:...`` button: the pressed message becomes the next step."""
    return Reply(edit=_press(session, d, data, actor=actor), edit_or_send=True)


def _press(session: Session, d: Dialog, data: str, *, actor: int) -> OutgoingMessage:
    parts = data.split(":")
    if len(parts) != 4 or parts[0] != PREFIX or not TOKEN.fullmatch(parts[1]):
        raise d.refuse("unknown")
    token, step, value = parts[1:]
    state = _state(session, d.chat_id)
    if state is None or state.data.get("token") != token:
        raise d.refuse("ended")
    if step == "x":
        session.delete(state)
        return OutgoingMessage(d.say("cancelled"))
    if step != state.step:
        raise d.refuse("earlier")
    if step == "rnd":
        round_id = dialogs.number(value)
        if round_id is None or round_id not in state.data.get("rounds", []):
            raise d.refuse("not_offered")
        return _finding_screen(session, d, state, _closed_round(session, d, round_id))
    if step == "code":
        if value == "other":
            dialogs.advance(state, "finding", d.now)
            return _ask(d, state, "finding")
        codes = state.data.get("codes", [])
        chosen = dialogs.number(value)
        if chosen is None or chosen >= len(codes) or codes[chosen] not in d.codebook:
            raise d.refuse("not_offered")
        code = codes[chosen]
        dialogs.advance(state, "what", d.now, barrier_code=code, finding=d.codebook[code].label)
        return _ask(d, state, "what")
    if step == "due":
        if value == "type":
            dialogs.advance(state, "date", d.now)
            return _ask(d, state, "date")
        if value != "none" and value not in DUE_CHOICES:
            raise d.refuse("not_offered")
        due = None if value == "none" else _due(value, d.today).isoformat()
        dialogs.advance(state, "ok", d.now, due=due)
        return _summary(session, d, state)
    if step == "ok" and value == "save":
        return _save(session, d, state, actor)
    raise d.refuse("not_offered")


def text(session: Session, d: Dialog, raw: str) -> Reply:
    """Handle a typed line for the steps that ask for one; the next step is a new message."""
    return Reply().say(_text(session, d, raw))


def _text(session: Session, d: Dialog, raw: str) -> OutgoingMessage:
    state = _state(session, d.chat_id)
    if state is None or state.step not in TEXT_STEPS:
        raise d.refuse("not_expecting")
    raw = raw.strip()
    limit = MAX_OWNER if state.step == "who" else MAX_FIELD
    if len(raw) > limit:
        raise d.refuse("too_long", length=len(raw), limit=limit)
    if not raw:
        raise d.refuse("empty")
    if state.step == "finding":
        dialogs.advance(state, "what", d.now, finding=raw, barrier_code=None)
        return _ask(d, state, "what")
    if state.step == "what":
        dialogs.advance(state, "who", d.now, action=raw)
        return _ask(d, state, "who")
    if state.step == "who":
        dialogs.advance(state, "due", d.now, owner=raw)
        return _due_screen(d, state)
    try:
        due = parse_due(raw)
    except FeedbackError:
        raise d.refuse("bad_date") from None
    if due < d.today:
        raise d.refuse("past_date")
    dialogs.advance(state, "ok", d.now, due=due.isoformat())
    return _summary(session, d, state)


def _save(session: Session, d: Dialog, state: DialogState, actor: int) -> OutgoingMessage:
    # Claim the dialog by deleting it, and save only if this press deleted it: a second Save
    # (a double press, another process) finds nothing to delete and saves nothing.
    claimed = session.execute(
        delete(DialogState)
        .where(DialogState.id == state.id, DialogState.step == "ok")
        .returning(DialogState.data)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if claimed is None:
        raise d.refuse("ended")
    session.expunge(state)
    due = claimed.get("due")
    action = add_action(
        session,
        claimed["round_id"],
        ActionInput(
            barrier_code=claimed.get("barrier_code"),
            finding=claimed["finding"],
            action=claimed["action"],
            owner=claimed["owner"],
            due_on=date.fromisoformat(due) if due else None,
        ),
        actor=actor,
    )
    return OutgoingMessage(d.say("saved", action_id=action.id, round_id=claimed["round_id"]))
