"""Who gets which digest: leads see partnership-wide figures and their own organisation's detail;
coordinators see everything at or above k. Also the round-close fan-out through the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from bot.coding.stored import codebook_for
from bot.digests.compile import compile_digest, prepare
from bot.digests.digest import Digest, DigestError, Scope
from bot.digests.render import chart_pngs, render_chart_caption, render_html, render_telegram
from bot.digests.scopes import quarter_scope, round_scope
from bot.kernel import i18n
from bot.kernel.context import AppContext
from bot.kernel.i18n import _
from bot.kernel.people import find_participant, may_be_messaged, role_of
from bot.kernel.reply import OutgoingMessage
from bot.outbox.payloads import PURGED, document_payload, photo_payload
from bot.outbox.queue import enqueue
from storage.models import (
    Delivery,
    DeliveryStatus,
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
            raise DigestError(_("You were not part of any round that closed in that quarter."))
        previous = tuple(r for r in scope.previous if r in visible)
        return Scope(
            allowed, scope.label, scope.start, scope.end, previous, scope.previous_label, True
        )
    if argument == "":
        if not visible:
            raise DigestError(_("No round you can see has closed yet."))
        return round_scope(session, visible[-1])
    if not argument.isdigit() or len(argument) > 9:
        raise DigestError(
            _("Send /digest, /digest followed by a round number, or /digest quarter.")
        )
    round_id = int(argument)
    if round_id not in visible:
        # Same answer for "no such round" and "not yours": round numbers are not a secret
        # worth probing for, but nothing is gained by telling them apart either.
        raise DigestError(
            _("Round {round} is not closed, or it is not one you can see.").format(round=round_id)
        )
    return round_scope(session, round_id)


def digest_for(
    session: Session, ctx: AppContext, v: Viewer, scope: Scope, now: datetime | None = None
) -> Digest:
    """The viewer's digest of `scope` (the lead's /digest): first the catch-up coding of any
    answers stored without codes, in the caller's transaction, then the compile, which reads."""
    codebook = codebook_for(ctx.settings, ctx.loaded)
    prepare(session, scope, codebook)
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
    """One audience's rendering of a round's digest in one language, shared by everyone who
    gets that copy."""

    parts: list[str]
    photos: dict[str, dict[str, Any]]  # chart name -> photo payload
    html: bytes
    caption: str  # the HTML file's


class _Copies:
    """Each audience's copy of a round's digest in each reader's language: compiled once per
    audience (a compiled digest is in no language), rendered once per language, and shared
    (charts are drawn once per language for all the copies)."""

    def __init__(self, session: Session, ctx: AppContext, round_id: int) -> None:
        self.session, self.ctx, self.round_id = session, ctx, round_id
        self.scope = round_scope(session, round_id)
        self.codebook = codebook_for(ctx.settings, ctx.loaded)
        self.now = ctx.clock.now()
        self._digests: dict[tuple[str, int | None], Digest] = {}
        self._copies: dict[tuple[str, int | None, str], _Copy] = {}
        self._charts: dict[str, bytes | None] = {}

    def _digest(self, audience: str, org: int | None) -> Digest:
        if (audience, org) not in self._digests:
            self._digests[(audience, org)] = compile_digest(
                self.session,
                self.ctx.settings,
                self.scope,
                organisation_id=org,
                audience=audience,
                codebook=self.codebook,
                now=self.now,
            )
        return self._digests[(audience, org)]

    def _copy(self, audience: str, org: int | None, language: str) -> _Copy:
        key = (audience, org, language)
        if key not in self._copies:
            digest = self._digest(audience, org)
            renderer = self.ctx.renderer
            with i18n.speaking(language):
                self._copies[key] = _Copy(
                    parts=render_telegram(digest, renderer),
                    photos={
                        name: photo_payload(
                            png, caption=render_chart_caption(digest, renderer, name)
                        )
                        for name, png in chart_pngs(digest, self._charts).items()
                    },
                    html=render_html(digest, renderer, chart_cache=self._charts).encode("utf-8"),
                    caption=_("The full digest, with charts, to open or print."),
                )
        return self._copies[key]

    def items(self, person: Participant) -> list[tuple[str, OutgoingMessage | dict[str, Any]]]:
        """(dedupe key, message) of everything this person gets, in their language: the
        Telegram messages, the charts as photos (only those the HTML file shows, so none under
        k), the HTML file."""
        audience = "coordinator" if person.role == Role.COORDINATOR else "lead"
        org = person.organisation_id if audience == "lead" else None
        languages = self.ctx.settings.partnership.languages
        language = person.language if person.language in languages else languages[0]
        copy = self._copy(audience, org, language)
        base = f"digest:{self.round_id}:{person.id}"
        items: list[tuple[str, OutgoingMessage | dict[str, Any]]] = [
            (f"{base}:{i}", OutgoingMessage(text, disable_notification=i > 0))
            for i, text in enumerate(copy.parts)
        ]
        items += [
            (f"{base}:chart:{name}", {**photo, "disable_notification": True})
            for name, photo in copy.photos.items()
        ]
        name = f"digest-round-{self.round_id}.html"
        document = document_payload(name, content=copy.html, caption=copy.caption)
        items.append((f"{base}:file", document))
        return items


def enqueue_round_digest(session: Session, ctx: AppContext, round_id: int) -> int:
    """Publish a closed round's figures and queue its digest to its coordinators and leads.
    Each lead's copy carries their own organisation's detail. Safe to call twice: dedupe keys
    make the second call add nothing. Returns deliveries queued."""
    copies = _Copies(session, ctx, round_id)
    prepare(session, copies.scope, copies.codebook)
    queued = 0
    for person in round_recipients(session, round_id):
        assert person.chat_id is not None
        for key, message in copies.items(person):
            added = enqueue(
                session,
                chat_id=person.chat_id,
                message=message,
                kind="digest",
                not_before=copies.now,
                participant_id=person.id,
                round_id=round_id,
                dedupe_key=key,
            )
            queued += added is not None
    return queued


def rerender_pending_digests(session: Session, ctx: AppContext, round_ids: list[int]) -> int:
    """After an erasure took quotes out of these rounds' releases: rewrite the digest
    deliveries not yet sent from the releases as they now are (a part no longer needed is
    cancelled), so no queued message still carries the erased words. Returns rows changed."""
    changed = 0
    for round_id in round_ids:
        pending = {
            d.dedupe_key: d
            for d in session.scalars(
                select(Delivery).where(
                    Delivery.round_id == round_id,
                    Delivery.kind == "digest",
                    Delivery.status.in_([DeliveryStatus.PENDING, DeliveryStatus.SENDING]),
                )
            )
            if d.dedupe_key
        }
        if not pending:
            continue
        copies = _Copies(session, ctx, round_id)
        people = {p.id: p for p in round_recipients(session, round_id)}
        for person_id in {int(key.split(":")[2]) for key in pending}:
            person = people.get(person_id)
            fresh = dict(copies.items(person)) if person is not None else {}
            for key, delivery in pending.items():
                if int(key.split(":")[2]) != person_id:
                    continue
                message = fresh.get(key)
                if message is None:
                    delivery.status = DeliveryStatus.CANCELLED
                    delivery.payload = dict(PURGED)
                else:
                    delivery.payload = (
                        message.to_payload() if isinstance(message, OutgoingMessage) else message
                    )
                changed += 1
    session.flush()
    return changed
