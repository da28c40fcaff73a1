"""The coordinator's round commands in chat (/rounds, /round N, /remind N, /close N, /cancel N
and the confirmation buttons of the last two) as services over a session that return the Reply
to send. A RoundError (an unknown round, one already closed) rolls the transaction back; the
handler says it kindly."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from bot.digests.segments import segment_label, segment_names
from bot.kernel import dialogs
from bot.kernel.reply import OutgoingMessage, Reply, rows
from bot.rounds.audiences import describe_audience
from bot.rounds.closing import cancel_round, close_round, stop_series
from bot.rounds.reminders import remind_round
from bot.rounds.services import RoundError, Services
from bot.rounds.watching import get_round, list_rounds, round_stats
from storage.models import Round, RoundStatus

# Callback data: co:c:<round> closes, co:x:<round> cancels, co:xs:<round> cancels and stops
# its series, co:k:<round> keeps it as it is (the answer to either question).
CLOSE, CANCEL, CANCEL_SERIES, KEEP = "c", "x", "xs", "k"
ENDING_PRESS = re.compile(r"co:(c|x|xs|k):([0-9]{1,9})")


def _say(services: Services, name: str, toast: str | None = None, **context: Any) -> Reply:
    text = services.renderer.render(f"messages/coordinator/{name}.html", **context)
    return Reply(toast=toast).say(text)


def overview(session: Session, services: Services) -> Reply:
    """/rounds: the newest rounds with their response rates."""
    return _say(services, "rounds", rounds=list_rounds(session, services.k), k=services.k)


def detail(session: Session, services: Services, round_id: int) -> Reply:
    """/round N: one round's figures, overall and by segment."""
    round_ = get_round(session, round_id)
    audience = describe_audience(services.renderer, round_.audience)
    stats = round_stats(session, round_, services.k)
    names = segment_names(services.renderer.templates)
    return _say(
        services,
        "round",
        s=stats,
        audience=audience,
        segment=lambda dimension, label: segment_label(names, dimension, label),
    )


def remind(
    session: Session, services: Services, round_id: int, *, now: datetime, actor: int
) -> Reply:
    """/remind N: remind those who have not finished, now."""
    count = remind_round(
        session,
        get_round(session, round_id),
        now=now,
        services=services,
        key=f"m{now:%Y%m%d%H%M}",
        actor=actor,
    )
    return _say(services, "acted", outcome="reminded", count=count, round_id=round_id)


def ask_close(session: Session, services: Services, round_id: int) -> Reply:
    """/close N: ask first, with Yes / Keep it open: closing cannot be undone, and the digest
    goes to the leads and coordinators at once."""
    round_ = _not_ended(session, round_id)
    renderer = services.renderer
    return Reply().say(
        OutgoingMessage(
            renderer.render("messages/coordinator/close_confirm.html", round=round_),
            rows(
                [
                    dialogs.button(renderer, "close_round", f"co:{CLOSE}:{round_id}"),
                    dialogs.button(renderer, "keep_open", f"co:{KEEP}:{round_id}"),
                ]
            ),
        )
    )


def _not_ended(session: Session, round_id: int) -> Round:
    round_ = get_round(session, round_id)
    if round_.status not in (RoundStatus.SCHEDULED, RoundStatus.OPEN):
        raise RoundError("ended", round_id=round_id, status=round_.status.value)
    return round_


def ask_cancel(session: Session, services: Services, round_id: int) -> Reply:
    """/cancel N: ask first, with Yes / Keep (and stop the series, for a recurring round)."""
    round_ = _not_ended(session, round_id)
    renderer = services.renderer
    series = round_.schedule_id is not None
    return Reply().say(
        OutgoingMessage(
            renderer.render(
                "messages/coordinator/cancel_confirm.html", round=round_, series=series
            ),
            rows(
                [
                    dialogs.button(renderer, "cancel_round", f"co:{CANCEL}:{round_id}"),
                    dialogs.button(renderer, "keep_round", f"co:{KEEP}:{round_id}"),
                ],
                [dialogs.button(renderer, "cancel_series", f"co:{CANCEL_SERIES}:{round_id}")]
                if series
                else [],
            ),
        )
    )


def is_close_press(data: str) -> bool:
    """Whether `data` answers /close's question with Yes (the handler runs it as heavy work:
    the digest is compiled)."""
    press = ENDING_PRESS.fullmatch(data)
    return press is not None and press[1] == CLOSE


def answer_ending(
    session: Session, services: Services, data: str, *, now: datetime, actor: int
) -> Reply:
    """A press on /close's or /cancel's question; the round is checked afresh (a second press,
    or one on an old question, finds it already closed or cancelled and says so)."""
    press = ENDING_PRESS.fullmatch(data)
    if press is None:
        raise dialogs.DialogError(_toast(services, "unknown"))
    choice, round_id = press[1], int(press[2])
    if choice == KEEP:
        return _say(services, "acted", _toast(services, "kept"), outcome="kept", round_id=round_id)
    round_ = get_round(session, round_id)
    if choice == CLOSE:
        # Its digest is compiled and queued in this transaction.
        close_round(session, round_, now=now, actor=actor, on_closed=services.on_closed)
        toast = _toast(services, "closed")
        return _say(services, "acted", toast, outcome="closed", round_id=round_id)
    cancel_round(session, round_, now=now, actor=actor)
    stopped = (
        stop_series(session, round_, now=now, actor=actor) if choice == CANCEL_SERIES else None
    )
    toast = _toast(services, "cancelled")
    return _say(services, "acted", toast, outcome="cancelled", round_id=round_id, stopped=stopped)


def _toast(services: Services, outcome: str) -> str:
    return services.renderer.render("messages/coordinator/toast.txt", outcome=outcome)
