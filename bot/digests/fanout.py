"""Who gets which digest: leads see partnership-wide figures and their own organisation's detail;
coordinators see everything at or above k. Also the round-close fan-out through the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from bot.coding.stored import codebook_for
from bot.digests.compile import catch_up_coding, compile_digest
from bot.digests.digest import Digest, DigestError, Scope
from bot.digests.render import chart_pngs, render_chart_caption, render_html, render_telegram
from bot.digests.scopes import quarter_scope, round_scope
from bot.kernel.context import AppContext
from bot.kernel.people import find_participant, may_be_messaged, role_of
from bot.kernel.reply import OutgoingMessage
from bot.outbox.payloads import document_payload, photo_payload
from bot.outbox.queue import enqueue
from storage.models import (
    Invitation,
    Participant,
    Role,
    Round,
    RoundStatus,
)


@dataclass
class Viewer:
    telegram_user_id: int
    role: Role
    participant_id: int | None
    organisation_id: int | None

    @property
    def audience(self) -> str:
        return "coordinator" if self.role == Role.COORDINATOR else "lead"


def viewer(session: Session, ctx: AppContext, telegram_user_id: int) -> Viewer | None:
    """Who is asking, or None for someone who may not see digests."""
    role = role_of(session, ctx.settings, telegram_user_id)
    if role not in (Role.LEAD, Role.COORDINATOR):
        return None
    person = find_participant(session, telegram_user_id)
    return Viewer(
        telegram_user_id,
        role,
        person.id if person else None,
        person.organisation_id if person else None,
    )


def _visible(v: Viewer) -> object:
    """Rounds a lead may see: closed rounds they or their organisation were invited to."""
    if v.role == Role.COORDINATOR:
        return Round.status == RoundStatus.CLOSED
    mine = [Invitation.participant_id == (v.participant_id or -1)]
    if v.organisation_id is not None:
        mine.append(Invitation.organisation_id == v.organisation_id)
    return (Round.status == RoundStatus.CLOSED) & exists().where(
        Invitation.round_id == Round.id, or_(*mine)
    )


def visible_round_ids(session: Session, v: Viewer) -> list[int]:
    return list(
        session.scalars(select(Round.id).where(_visible(v)).order_by(Round.closed_at, Round.id))  # type: ignore[arg-type]
    )


def scope_for(
    session: Session, ctx: AppContext, v: Viewer, argument: str, now: datetime | None = None
) -> Scope:
    """Parse the /digest argument ('' latest, 'N', 'quarter') into a scope the viewer may see."""
    argument = argument.strip().lower()
    visible = visible_round_ids(session, v)
    if argument in ("quarter", "q"):
        scope = quarter_scope(session, ctx.settings, now or ctx.clock.now())
        allowed = tuple(r for r in scope.round_ids if r in visible)
        if not allowed:
            raise DigestError("You were not part of any round that closed in that quarter.")
        previous = tuple(r for r in scope.previous if r in visible)
        return Scope(allowed, scope.label, scope.start, scope.end, previous, scope.previous_label)
    if argument == "":
        if not visible:
            raise DigestError("No round you can see has closed yet.")
        return round_scope(session, visible[-1])
    if not argument.isdigit() or len(argument) > 9:
        raise DigestError("Send /digest, /digest followed by a round number, or /digest quarter.")
    round_id = int(argument)
    if round_id not in visible:
        # Same answer for "no such round" and "not yours": round numbers are not a secret
        # worth probing for, but nothing is gained by telling them apart either.
        raise DigestError(f"Round {round_id} is not closed, or it is not one you can see.")
    return round_scope(session, round_id)


def digest_for(
    session: Session, ctx: AppContext, v: Viewer, scope: Scope, now: datetime | None = None
) -> Digest:
    """The viewer's digest of `scope` (the lead's /digest): first the catch-up coding of any
    answers stored without codes, in the caller's transaction, then the compile, which reads."""
    codebook = codebook_for(ctx.settings, ctx.loaded)
    catch_up_coding(session, scope, codebook)
    return compile_digest(
        session,
        ctx.settings,
        scope,
        organisation_id=v.organisation_id if v.role == Role.LEAD else None,
        audience=v.audience,
        codebook=codebook,
        now=now or ctx.clock.now(),
    )


def round_recipients(session: Session, round_id: int) -> list[Participant]:
    """Coordinators, and the leads who (or whose organisation) were invited to the round;
    none who has said /stop or blocked the bot."""
    invited = exists().where(
        Invitation.round_id == round_id,
        or_(
            Invitation.participant_id == Participant.id,
            (Invitation.organisation_id == Participant.organisation_id)
            & Participant.organisation_id.is_not(None),
        ),
    )
    return list(
        session.scalars(
            select(Participant)
            .where(
                may_be_messaged(),
                or_(
                    Participant.role == Role.COORDINATOR,
                    (Participant.role == Role.LEAD) & invited,
                ),
            )
            .order_by(Participant.id)
        )
    )


@dataclass
class _Copy:
    """One audience's rendering of a round's digest, shared by everyone who gets that copy."""

    parts: list[str]
    photos: dict[str, dict[str, Any]]  # chart name -> photo payload
    html: bytes


def enqueue_round_digest(session: Session, ctx: AppContext, round_id: int) -> int:
    """Queue the digest of a closed round to its coordinators and leads: the Telegram messages,
    the charts as photos (only those the HTML file shows, so none under k), and the printable
    HTML file. Each lead's copy carries their own organisation's detail. Safe to call twice:
    dedupe keys make the second call add nothing. Returns deliveries queued."""
    scope = round_scope(session, round_id)
    codebook = codebook_for(ctx.settings, ctx.loaded)
    catch_up_coding(session, scope, codebook)
    now = ctx.clock.now()
    copies: dict[tuple[str, int | None], _Copy] = {}
    charts: dict[str, bytes | None] = {}
    queued = 0
    for person in round_recipients(session, round_id):
        assert person.chat_id is not None
        audience = "coordinator" if person.role == Role.COORDINATOR else "lead"
        org = person.organisation_id if audience == "lead" else None
        if (audience, org) not in copies:
            digest = compile_digest(
                session,
                ctx.settings,
                scope,
                organisation_id=org,
                audience=audience,
                codebook=codebook,
                now=now,
            )
            copies[(audience, org)] = _Copy(
                parts=render_telegram(digest, ctx.renderer),
                photos={
                    name: photo_payload(
                        png, caption=render_chart_caption(digest, ctx.renderer, name)
                    )
                    for name, png in chart_pngs(digest, charts).items()
                },
                html=render_html(digest, ctx.renderer, chart_cache=charts).encode("utf-8"),
            )
        copy = copies[(audience, org)]
        base = f"digest:{round_id}:{person.id}"
        items: list[tuple[str, OutgoingMessage | dict[str, Any]]] = [
            (f"{base}:{i}", OutgoingMessage(text, disable_notification=i > 0))
            for i, text in enumerate(copy.parts)
        ]
        items += [
            (f"{base}:chart:{name}", {**photo, "disable_notification": True})
            for name, photo in copy.photos.items()
        ]
        caption = "The full digest, with charts, to open or print."
        html = document_payload(f"digest-round-{round_id}.html", content=copy.html, caption=caption)
        items.append((f"{base}:file", html))
        for key, message in items:
            added = enqueue(
                session,
                chat_id=person.chat_id,
                message=message,
                kind="digest",
                not_before=now,
                participant_id=person.id,
                round_id=round_id,
                dedupe_key=key,
            )
            queued += added is not None
    return queued
