"""The /schedule dialog as plain decisions over a session: each step reads and writes one
DialogState row and returns the Reply that shows the next step, so any process and any restart
can carry the dialog on (firm principle 1).

Callback data is ``co:s:<step>:<value>``. A press is checked against the stored step (a stale
button from an earlier step is refused) and its value against what that step offered (a
forged value is refused); nothing changes in either case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bot.consultations.catalogue import current_consultations
from bot.digests.segments import segment_label, segment_names
from bot.kernel import dialogs
from bot.kernel.reply import Button, OutgoingMessage, Reply, rows
from bot.rounds.audiences import (
    audience_mismatch,
    describe_audience,
    intended_audience,
    preview_audience,
    segment_values,
)
from bot.rounds.planning import create_schedule, schedule_once
from bot.rounds.recurrence import occurrences
from bot.rounds.services import RoundError
from storage.models import Consultation, DialogState

KIND = "schedule"
PREFIX = "co:s"
CONFIRM = f"{PREFIX}:ok:go"
WHO = ("everyone", "organisations", "service_users")
SEGMENTS = ("area", "size", "sector")
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Monthly choices: cron day-of-month and day-of-week fields (ANDed, so 1-7 + mon = first Monday).
MONTHLY = {"1mon": ("1-7", "mon"), "1st": ("1", "*"), "15th": ("15", "*"), "1fri": ("1-7", "fri")}
DURATIONS = (1, 3, 7, 10, 14)
REMINDERS = {"0": [], "1": [1], "2": [2], "1,3": [1, 3]}
TEXT_STEPS = ("at", "time", "cron")
TIME_RE = re.compile(r"^\s*([01]?\d|2[0-3])[:.]([0-5]\d)\s*$", re.ASCII)


@dataclass
class Dialog(dialogs.Dialog):
    folder = "schedule"
    actor: int  # who schedules

    def button(self, key: str, step: str, value: str, **context: Any) -> Button:
        return dialogs.button(self.renderer, key, f"{PREFIX}:{step}:{value}", **context)

    def step(self, step: str, *buttons: list[Button], **context: Any) -> OutgoingMessage:
        return OutgoingMessage(self.say("step", step=step, **context), rows(*buttons))


def waiting_for_text(session: Session, chat_id: int) -> bool:
    return dialogs.waiting_for_text(session, chat_id, KIND, TEXT_STEPS)


def start(session: Session, d: Dialog) -> Reply:
    """/schedule: the first step, which consultation."""
    consultations = current_consultations(session)
    if not consultations:
        raise d.refuse("no_consultations")
    dialogs.begin(session, d.chat_id, KIND, "con", d.now)
    choices = [[Button(c.title, f"{PREFIX}:con:{c.id}")] for c in consultations]
    return Reply().say(d.step("con", *choices, [d.button("cancel", "x", "x")]))


def _next_screen(d: Dialog, step: str, **context: Any) -> OutgoingMessage:
    """The screens that are the same whatever came before."""
    if step == "aud":
        return d.step(
            "aud",
            [d.button(who, "aud", who) for who in WHO[:2]],
            [d.button(WHO[2], "aud", WHO[2])],
            [d.button("by_segment", "aud", f"seg:{k}", segment=k) for k in SEGMENTS],
            **context,
        )
    if step == "when":
        return d.step(
            "when",
            [d.button("now", "when", "now"), d.button("at", "when", "at")],
            [d.button(k, "when", k) for k in ("weekly", "monthly", "cron")],
        )
    if step == "dur":
        return d.step("dur", [d.button("days", "dur", str(n), days=n) for n in DURATIONS])
    keys = list(REMINDERS)
    return d.step(
        "rem",
        [d.button("remind", "rem", k, choice=k) for k in keys[:2]],
        [d.button("remind", "rem", k, choice=k) for k in keys[2:]],
    )


def press(session: Session, d: Dialog, data: str) -> Reply:
    """Handle a ``co:s:...`` button: the pressed message becomes the next step."""
    parts = data.split(":", 3)
    if len(parts) != 4 or ":".join(parts[:2]) != PREFIX:
        raise d.refuse("unknown")
    step, value = parts[2], parts[3]
    state = dialogs.dialog_state(session, d.chat_id, KIND)
    if step == "x":
        if state is not None:
            session.delete(state)
        return _step_reply(OutgoingMessage(d.say("done", outcome="cancelled")))
    if state is None:
        raise d.refuse("ended")
    if state.step != step:
        raise d.refuse("earlier")
    if step in ("dur", "rem", "ok"):
        return _step_reply(_finish(session, d, state, step, value))
    return _step_reply(_choose(session, d, state, step, value))


def _step_reply(message: OutgoingMessage) -> Reply:
    return Reply(edit=message, edit_or_send=True)


def _choose(
    session: Session, d: Dialog, state: DialogState, step: str, value: str
) -> OutgoingMessage:
    """The steps from the consultation to when it opens."""
    now = d.now
    if step == "con":
        chosen = dialogs.number(value)
        consultation = session.get(Consultation, chosen) if chosen is not None else None
        if consultation is None or consultation.retired:
            raise d.refuse("consultation")
        dialogs.advance(
            state, "aud", now, consultation_id=consultation.id, title=consultation.title
        )
        return _next_screen(d, "aud", written_for=intended_audience(consultation))
    if step == "aud":
        if value in WHO:
            dialogs.advance(state, "when", now, audience={"who": value, "where": {}})
            return _next_screen(d, "when")
        key = value.removeprefix("seg:")
        if not value.startswith("seg:") or key not in SEGMENTS:
            raise d.refuse("audience")
        # Those the set is written for, in one part: as `rounds schedule --where` asks them
        # by default, and only values some of them have.
        consultation = session.get(Consultation, state.data["consultation_id"])
        who = intended_audience(consultation) if consultation is not None else "everyone"
        values = segment_values(session, key, who)[:12]
        if not values:
            raise d.refuse("no_segment", segment=key)
        dialogs.advance(state, "val", now, segment=key, values=values, who=who)
        names = segment_names(d.renderer.templates)
        choices = [
            [Button(segment_label(names, key, v)[:40], f"{PREFIX}:val:{i}")]
            for i, v in enumerate(values)
        ]
        return d.step("val", *choices, segment=key)
    if step == "val":
        values, chosen = state.data.get("values", []), dialogs.number(value)
        if chosen is None or chosen >= len(values):
            raise d.refuse("not_offered")
        where = {state.data["segment"]: values[chosen]}
        who = state.data.get("who", "organisations")  # (a dialog begun before it was kept)
        dialogs.advance(state, "when", now, audience={"who": who, "where": where})
        return _next_screen(d, "when")
    if step == "when":
        return _when(d, state, value)
    if step == "dow" and value in DAYS:
        dialogs.advance(state, "time", now, pattern={"every": "weekly", "day": value})
    elif step == "dom" and value in MONTHLY:
        dialogs.advance(state, "time", now, pattern={"every": "monthly", "day": value})
    elif step in ("dow", "dom"):
        raise d.refuse("day")
    else:
        raise d.refuse("unknown")
    return d.step("time")


def _when(d: Dialog, state: DialogState, value: str) -> OutgoingMessage:
    now, timezone = d.now, d.settings.partnership.timezone
    if value == "now":
        dialogs.advance(state, "dur", now, when={"mode": "now"})
        return _next_screen(d, "dur")
    if value == "at":
        dialogs.advance(state, "at", now)
        return d.step("at", example=now + timedelta(days=7), timezone=timezone)
    if value == "weekly":
        dialogs.advance(state, "dow", now)
        return d.step("dow", [d.button("weekday", "dow", day, day=day) for day in DAYS])
    if value == "monthly":
        dialogs.advance(state, "dom", now)
        return d.step("dom", *[[d.button("monthday", "dom", k, day=k)] for k in MONTHLY])
    if value == "cron":
        dialogs.advance(state, "cron", now)
        return d.step("cron", timezone=timezone)
    raise d.refuse("not_offered")


def _finish(
    session: Session, d: Dialog, state: DialogState, step: str, value: str
) -> OutgoingMessage:
    """How long, which reminders, and the confirmation."""
    if step == "dur":
        days = dialogs.number(value)
        if days not in DURATIONS:
            raise d.refuse("not_offered")
        dialogs.advance(state, "rem", d.now, days=days)
        return _next_screen(d, "rem")
    if step == "rem":
        if value not in REMINDERS:
            raise d.refuse("not_offered")
        dialogs.advance(state, "ok", d.now, reminders=REMINDERS[value])
        return _summary(session, d, state)
    if value != "go":
        raise d.refuse("not_offered")
    return _confirm(session, d, state)


def text(session: Session, d: Dialog, raw: str) -> Reply:
    """Handle typed input for the steps that ask for it; the next step comes as a new message."""
    state = dialogs.dialog_state(session, d.chat_id, KIND)
    if state is None or state.step not in TEXT_STEPS:
        raise d.refuse("not_expecting")
    raw = raw.strip()[:120]
    if state.step == "at":
        try:
            local = datetime.strptime(raw, "%Y-%m-%d %H:%M")
        except ValueError:
            raise d.refuse("bad_moment") from None
        at = local.replace(tzinfo=d.settings.zone)
        if at <= d.now:
            raise d.refuse("past")
        when: dict[str, Any] = {"mode": "at", "at": at.isoformat()}
    elif state.step == "time":
        match = TIME_RE.match(raw)
        if not match:
            raise d.refuse("bad_time")
        pattern = state.data["pattern"]
        day, dow = (
            MONTHLY[pattern["day"]] if pattern["every"] == "monthly" else ("*", pattern["day"])
        )
        cron = f"{int(match[2])} {int(match[1])} {day} * {dow}"
        time = f"{int(match[1]):02d}:{match[2]}"
        when = {"mode": "cron", "cron": cron, **pattern, "time": time}
    else:
        try:
            found = occurrences(raw, d.settings.zone, d.now, 1)
        except RoundError as exc:
            raise d.refuse("bad_cron", **exc.details) from None
        if not found:
            raise d.refuse("never_fires")
        when = {"mode": "cron", "cron": raw, "every": "cron"}
    dialogs.advance(state, "dur", d.now, when=when)
    return Reply().say(_next_screen(d, "dur"))


def _dates(d: Dialog, when: dict[str, Any]) -> list[datetime]:
    if when["mode"] == "now":
        return [d.now]
    if when["mode"] == "at":
        return [datetime.fromisoformat(when["at"])]
    return occurrences(when["cron"], d.settings.zone, d.now, 3)


def _summary(session: Session, d: Dialog, state: DialogState) -> OutgoingMessage:
    data = state.data
    consultation = session.get(Consultation, data["consultation_id"])
    intended = audience_mismatch(consultation, data["audience"]) if consultation else None
    rounds = d.settings.rounds
    preview = preview_audience(
        session,
        data["audience"],
        now=d.now,
        cap=rounds.max_rounds_per_period,
        period_days=rounds.period_days,
    )
    text_ = d.say(
        "summary",
        title=data["title"],
        audience=describe_audience(d.renderer, data["audience"]),
        size=preview.size,
        left_out=preview.left_out_orgs,
        busy=preview.busy,
        when=data["when"],
        dates=_dates(d, data["when"]),
        days=data["days"],
        reminders=data["reminders"],
        intended=intended,  # set only when it is not the audience chosen: a warning
        chosen=data["audience"]["who"],
    )
    return OutgoingMessage(
        text_, rows([d.button("confirm", "ok", "go"), d.button("cancel", "x", "x")])
    )


def _confirm(session: Session, d: Dialog, state: DialogState) -> OutgoingMessage:
    data = state.data
    consultation = session.get(Consultation, data["consultation_id"])
    if consultation is None:
        raise d.refuse("consultation_gone")
    plan: dict[str, Any] = {
        "audience": data["audience"],
        "open_for": timedelta(days=data["days"]),
        "remind_before": [timedelta(days=n) for n in data["reminders"]],
        "actor": d.actor,
        "progress_chat_id": d.chat_id,
    }
    when = data["when"]
    session.delete(state)
    if when["mode"] == "cron":
        schedule, round_ = create_schedule(
            session, consultation, cron=when["cron"], zone=d.settings.zone, now=d.now, **plan
        )
        return OutgoingMessage(
            d.say(
                "done", outcome="recurring", when=when, schedule_id=schedule.id, round_id=round_.id
            )
        )
    opens_at = d.now if when["mode"] == "now" else datetime.fromisoformat(when["at"])
    round_ = schedule_once(session, consultation, opens_at=opens_at, **plan)
    return OutgoingMessage(d.say("done", outcome=when["mode"], round_id=round_.id))
