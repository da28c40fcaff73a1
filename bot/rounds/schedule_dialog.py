"""The /schedule dialog as plain decisions over a session: each step reads and writes one
DialogState row and returns the next screen (an OutgoingMessage), so any process and any
restart can carry the dialog on (firm principle 1).

Callback data is ``co:s:<step>:<value>``. A press is checked against the stored step (a stale
button from an earlier step is refused) and its value against what that step offered (a
forged value is refused); nothing changes in either case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from bot.consultations.catalogue import current_consultations
from bot.kernel import dialogs
from bot.kernel.config import Settings
from bot.kernel.render import Renderer
from bot.kernel.reply import Button, OutgoingMessage, rows
from bot.rounds.lifecycle import (
    RoundError,
    create_schedule,
    describe_audience,
    occurrences,
    preview_audience,
    schedule_once,
    segment_values,
)
from storage.models import Consultation, DialogState, Round

KIND = "schedule"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DURATIONS = (1, 3, 7, 10, 14)
REMINDERS = {"0": [], "1": [1], "2": [2], "1,3": [1, 3]}
MONTHLY = {
    "1mon": ("1-7", "mon", "first Monday"),
    "1st": ("1", "*", "1st of the month"),
    "15th": ("15", "*", "15th of the month"),
    "1fri": ("1-7", "fri", "first Friday"),
}
TEXT_STEPS = ("at", "time", "cron")


class DialogError(Exception):
    """A press or a text the dialog cannot use; the message says why, kindly."""


@dataclass
class Screen:
    message: OutgoingMessage
    done: bool = False
    round_id: int | None = None
    opens_now: bool = False


def _state(session: Session, chat_id: int) -> DialogState | None:
    return dialogs.dialog_state(session, chat_id, KIND)


def waiting_for_text(session: Session, chat_id: int) -> bool:
    return dialogs.waiting_for_text(session, chat_id, KIND, TEXT_STEPS)


def _b(text: str, step: str, value: str) -> Button:
    return Button(text, f"co:s:{step}:{value}")


def _set(state: DialogState, step: str, now: datetime, **data: Any) -> None:
    state.step = step
    state.data = {**state.data, **data}
    state.updated_at = now


def start(session: Session, chat_id: int, *, now: datetime) -> Screen:
    consultations = current_consultations(session)
    if not consultations:
        raise DialogError(
            "There are no consultation sets yet. Import one: consultbot consultations import"
        )
    session.execute(
        delete(DialogState).where(DialogState.chat_id == chat_id, DialogState.kind == KIND)
    )
    session.add(DialogState(chat_id=chat_id, kind=KIND, step="con", data={}, updated_at=now))
    return Screen(
        OutgoingMessage(
            "<b>Schedule a round</b> (1/5)\nWhich consultation?",
            rows(
                *[[_b(c.title, "con", str(c.id))] for c in consultations], [_b("Cancel", "x", "x")]
            ),
        )
    )


def _audience_screen() -> Screen:
    return Screen(
        OutgoingMessage(
            "<b>Who is asked?</b> (2/5)",
            rows(
                [_b("Everyone", "aud", "everyone"), _b("Organisations", "aud", "organisations")],
                [_b("Service users", "aud", "service_users")],
                [
                    _b("By area", "aud", "seg:area"),
                    _b("By size", "aud", "seg:size"),
                    _b("By sector", "aud", "seg:sector"),
                ],
            ),
        )
    )


def _when_screen() -> Screen:
    return Screen(
        OutgoingMessage(
            "<b>When?</b> (3/5)",
            rows(
                [_b("Now", "when", "now"), _b("A date and time", "when", "at")],
                [
                    _b("Weekly", "when", "weekly"),
                    _b("Monthly", "when", "monthly"),
                    _b("Cron", "when", "cron"),
                ],
            ),
        )
    )


def _duration_screen() -> Screen:
    return Screen(
        OutgoingMessage(
            "<b>How long does it stay open?</b> (4/5)",
            rows([_b(f"{d} day{'s' if d != 1 else ''}", "dur", str(d)) for d in DURATIONS]),
        )
    )


def _remind_screen() -> Screen:
    return Screen(
        OutgoingMessage(
            "<b>Remind those who have not finished?</b> (5/5)",
            rows(
                [_b("No reminder", "rem", "0"), _b("1 day before closing", "rem", "1")],
                [_b("2 days before", "rem", "2"), _b("3 days and 1 day before", "rem", "1,3")],
            ),
        )
    )


def press(
    session: Session,
    chat_id: int,
    data: str,
    *,
    now: datetime,
    settings: Settings,
    renderer: Renderer,
    actor: int,
) -> Screen:
    """Handle a ``co:s:...`` button."""
    parts = data.split(":", 3)
    if len(parts) != 4 or parts[:2] != ["co", "s"]:
        raise DialogError("I did not recognise that button.")
    step, value = parts[2], parts[3]
    state = _state(session, chat_id)
    if step == "x":
        if state is not None:
            session.delete(state)
        return Screen(OutgoingMessage("Scheduling cancelled. Nothing was planned."), done=True)
    if state is None:
        raise DialogError("That dialog has ended. Send /schedule to start again.")
    if state.step != step:
        raise DialogError(
            "That button belongs to an earlier step. Please use the latest message, "
            "or send /schedule to start again."
        )
    if step == "con":
        consultation = session.get(Consultation, int(value)) if value.isdigit() else None
        if consultation is None or consultation.retired:
            raise DialogError("That consultation is not available.")
        _set(state, "aud", now, consultation_id=consultation.id, title=consultation.title)
        return _audience_screen()
    if step == "aud":
        if value in ("everyone", "organisations", "service_users"):
            _set(state, "when", now, audience={"who": value, "where": {}})
            return _when_screen()
        if value.startswith("seg:") and value[4:] in ("area", "size", "sector"):
            key = value[4:]
            values = segment_values(session, key)[:12]
            if not values:
                raise DialogError(f"No organisation has a {key} yet; choose another audience.")
            _set(state, "val", now, segment=key, values=values)
            return Screen(
                OutgoingMessage(
                    f"Which {key}?",
                    rows(*[[_b(v[:40], "val", str(i))] for i, v in enumerate(values)]),
                )
            )
        raise DialogError("That audience is not one I offered.")
    if step == "val":
        values = state.data.get("values", [])
        if not value.isdigit() or int(value) >= len(values):
            raise DialogError("That option is not one I offered.")
        _set(
            state,
            "when",
            now,
            audience={"who": "organisations", "where": {state.data["segment"]: values[int(value)]}},
        )
        return _when_screen()
    if step == "when":
        if value == "now":
            _set(state, "dur", now, when={"mode": "now"})
            return _duration_screen()
        if value == "at":
            _set(state, "at", now)
            return Screen(
                OutgoingMessage(
                    f"Send the date and time, like <code>"
                    f"{(now + timedelta(days=7)).astimezone(settings.zone):%Y-%m-%d} 09:00</code> "
                    f"({settings.partnership.timezone})."
                )
            )
        if value == "weekly":
            _set(state, "dow", now)
            return Screen(
                OutgoingMessage(
                    "Which day of the week?", rows([_b(d.title(), "dow", d) for d in DAYS])
                )
            )
        if value == "monthly":
            _set(state, "dom", now)
            return Screen(
                OutgoingMessage(
                    "Which day of the month?",
                    rows(*[[_b(label, "dom", k)] for k, (_, _, label) in MONTHLY.items()]),
                )
            )
        if value == "cron":
            _set(state, "cron", now)
            return Screen(
                OutgoingMessage(
                    f"Send a cron expression (minute hour day month weekday, fields ANDed, in "
                    f"{settings.partnership.timezone}), like <code>0 9 1-7 * mon</code> "
                    "for the first Monday at 09:00."
                )
            )
        raise DialogError("That option is not one I offered.")
    if step == "dow":
        if value not in DAYS:
            raise DialogError("That day is not one I offered.")
        _set(
            state,
            "time",
            now,
            pattern={"day": "*", "dow": value, "label": f"every {value.title()}"},
        )
        return Screen(OutgoingMessage("At what time? Send it like <code>09:30</code>."))
    if step == "dom":
        if value not in MONTHLY:
            raise DialogError("That day is not one I offered.")
        day, dow, label = MONTHLY[value]
        _set(state, "time", now, pattern={"day": day, "dow": dow, "label": f"monthly, {label}"})
        return Screen(OutgoingMessage("At what time? Send it like <code>09:30</code>."))
    if step == "dur":
        if not value.isdigit() or int(value) not in DURATIONS:
            raise DialogError("That option is not one I offered.")
        _set(state, "rem", now, days=int(value))
        return _remind_screen()
    if step == "rem":
        if value not in REMINDERS:
            raise DialogError("That option is not one I offered.")
        _set(state, "ok", now, reminders=REMINDERS[value])
        return _summary(session, state, now=now, settings=settings, renderer=renderer)
    if step == "ok":
        if value != "go":
            raise DialogError("That option is not one I offered.")
        return _confirm(session, state, chat_id, now=now, settings=settings, actor=actor)
    raise DialogError("I did not recognise that button.")


TIME_RE = re.compile(r"^\s*([01]?\d|2[0-3])[:.]([0-5]\d)\s*$")


def text(session: Session, chat_id: int, raw: str, *, now: datetime, settings: Settings) -> Screen:
    """Handle typed input for the steps that ask for it."""
    state = _state(session, chat_id)
    if state is None or state.step not in TEXT_STEPS:
        raise DialogError("I was not expecting that. Send /schedule to plan a round.")
    raw = raw.strip()[:120]
    zone = settings.zone
    if state.step == "at":
        try:
            local = datetime.strptime(raw, "%Y-%m-%d %H:%M")
        except ValueError:
            raise DialogError("Please send it as <code>YYYY-MM-DD HH:MM</code>.") from None
        at = local.replace(tzinfo=zone)
        if at <= now:
            raise DialogError("That moment has passed; please send a future date and time.")
        _set(state, "dur", now, when={"mode": "at", "at": at.isoformat()})
        return _duration_screen()
    if state.step == "time":
        match = TIME_RE.match(raw)
        if not match:
            raise DialogError("Please send the time like <code>09:30</code>.")
        pattern = state.data["pattern"]
        cron = f"{int(match[2])} {int(match[1])} {pattern['day']} * {pattern['dow']}"
        _set(
            state,
            "dur",
            now,
            when={
                "mode": "cron",
                "cron": cron,
                "label": f"{pattern['label']} at {int(match[1]):02d}:{match[2]}",
            },
        )
        return _duration_screen()
    # cron
    try:
        found = occurrences(raw, zone, now, 1)
    except RoundError as exc:
        raise DialogError(f"I could not read that: {exc}") from None
    if not found:
        raise DialogError("That expression never fires.")
    _set(state, "dur", now, when={"mode": "cron", "cron": raw, "label": f"cron {raw}"})
    return _duration_screen()


def _dates(data: dict[str, Any], now: datetime, settings: Settings) -> tuple[str, list[datetime]]:
    when = data["when"]
    if when["mode"] == "now":
        return "now", [now]
    if when["mode"] == "at":
        return "once", [datetime.fromisoformat(when["at"])]
    return when["label"], occurrences(when["cron"], settings.zone, now, 3)


def _summary(
    session: Session, state: DialogState, *, now: datetime, settings: Settings, renderer: Renderer
) -> Screen:
    data = state.data
    preview = preview_audience(
        session,
        data["audience"],
        now=now,
        cap=settings.rounds.max_rounds_per_period,
        period_days=settings.rounds.period_days,
    )
    label, dates = _dates(data, now, settings)
    text_ = renderer.render(
        "messages/coordinator/schedule_summary.html",
        title=data["title"],
        audience=describe_audience(data["audience"]),
        size=preview.size,
        left_out=preview.left_out_orgs,
        busy=preview.busy,
        when=label,
        dates=dates,
        days=data["days"],
        reminders=[f"{d} day{'s' if d != 1 else ''}" for d in data["reminders"]],
    )
    return Screen(OutgoingMessage(text_, rows([_b("Confirm", "ok", "go"), _b("Cancel", "x", "x")])))


def _confirm(
    session: Session,
    state: DialogState,
    chat_id: int,
    *,
    now: datetime,
    settings: Settings,
    actor: int,
) -> Screen:
    data = state.data
    consultation = session.get(Consultation, data["consultation_id"])
    if consultation is None:
        raise DialogError("That consultation is gone. Send /schedule to start again.")
    open_for = timedelta(days=data["days"])
    reminders = [timedelta(days=d) for d in data["reminders"]]
    when = data["when"]
    if when["mode"] == "cron":
        schedule, round_ = create_schedule(
            session,
            consultation,
            audience=data["audience"],
            cron=when["cron"],
            zone=settings.zone,
            open_for=open_for,
            remind_before=reminders,
            now=now,
            actor=actor,
            progress_chat_id=chat_id,
        )
        message = (
            f"Scheduled: {when['label']} (schedule {schedule.id}). "
            f"The first round is #{round_.id}. /rounds to watch."
        )
    else:
        opens_at = now if when["mode"] == "now" else datetime.fromisoformat(when["at"])
        round_ = schedule_once(
            session,
            consultation,
            audience=data["audience"],
            opens_at=opens_at,
            open_for=open_for,
            remind_before=reminders,
            actor=actor,
            progress_chat_id=chat_id,
        )
        message = (
            f"Round #{round_.id} is opening now; I will show progress here."
            if when["mode"] == "now"
            else f"Round #{round_.id} is scheduled. /round {round_.id} to watch it."
        )
    session.delete(state)
    return Screen(
        OutgoingMessage(message), done=True, round_id=round_.id, opens_now=when["mode"] == "now"
    )


def cancel_buttons(round_: Round) -> OutgoingMessage:
    series = (
        [Button("Cancel it and stop the series", f"co:xs:{round_.id}")]
        if round_.schedule_id is not None
        else []
    )
    return OutgoingMessage(
        f"Cancel round #{round_.id} ({round_.consultation.title}, {round_.status.value})? "
        "Unsent invitations are withdrawn; answers already given are kept."
        + (" It is part of a recurring series." if series else ""),
        rows(
            [Button("Yes, cancel it", f"co:x:{round_.id}"), Button("Keep it", f"co:k:{round_.id}")],
            series,
        ),
    )
