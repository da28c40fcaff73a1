"""Invite links: creating, checking and using the codes behind `https://t.me/<bot>?start=<code>`.

A code is the only secret in a link, so it is random (secrets.token_urlsafe) and long enough
that guessing one is hopeless; token_urlsafe's alphabet is exactly Telegram's deep-link alphabet
[A-Za-z0-9_-].
"""

from __future__ import annotations

import enum
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from bot.kernel.audit import record
from bot.kernel.dialogs import DialogError, button
from bot.kernel.i18n import _
from bot.kernel.render import Renderer
from bot.kernel.reply import OutgoingMessage, Reply, rows
from storage.models import AuditEvent, Invite, Organisation, Role

CODE_BYTES = 12  # 16 characters: short enough for callback data, far too many to guess
CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# A brake on guessing: after this many codes that match nothing within the window, no code
# from that person is checked until the oldest of them is older than the window.
WRONG_CODES_ALLOWED = 5
WRONG_CODES_WINDOW = timedelta(minutes=10)
WRONG_CODE = "invite.unknown"  # the audit action that counts them
# The button under an organisation's invite in chat: a lead link for that organisation.
LEAD_PRESS = re.compile(r"iv:lead:([0-9]{1,9})")
# A lead link makes one person the organisation's lead: it is for them alone, and not for long.
LEAD_INVITE_USES = 1
LEAD_INVITE_DAYS = 14


class InviteProblem(enum.StrEnum):
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    USED_UP = "used_up"
    REVOKED = "revoked"
    TOO_MANY = "too_many"  # too many wrong codes lately: this one was not even checked


@dataclass(frozen=True)
class InviteCheck:
    invite: Invite | None
    problem: InviteProblem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def deep_link(bot_username: str, code: str) -> str:
    return f"https://t.me/{bot_username.lstrip('@')}?start={code}"


def find_or_create_organisation(session: Session, name: str) -> Organisation:
    name = " ".join(name.split())
    org = session.scalar(select(Organisation).where(Organisation.name == name))
    if org is None:
        org = Organisation(name=name)
        session.add(org)
        session.flush()
    return org


def create_invite(
    session: Session,
    *,
    now: datetime,
    organisation: str | None = None,
    group: str | None = None,
    days: int | None = None,
    max_uses: int | None = None,
    role: Role = Role.MEMBER,
    created_by: int | None = None,
) -> Invite:
    """An invite for an organisation (created by name if new) or for a group of service users."""
    if bool(organisation) == bool(group):
        raise ValueError("an invite is for an organisation or for a group, not both or neither")
    if days is not None and days < 1:
        raise ValueError("expiry must be at least one day")
    if max_uses is not None and max_uses < 1:
        raise ValueError("max uses must be at least one")
    org = find_or_create_organisation(session, organisation) if organisation else None
    invite = Invite(
        code=secrets.token_urlsafe(CODE_BYTES),
        organisation=org,
        group_label=" ".join(group.split())[:120] if group else None,
        role=role,
        answers_as="organisation" if org else "service_user",
        max_uses=max_uses,
        expires_at=now + timedelta(days=days) if days else None,
        created_by=created_by,
        created_at=now,
    )
    session.add(invite)
    session.flush()
    record(
        session,
        "invite.create",
        actor=created_by,
        subject=("invite", invite.id),
        details={
            "organisation": organisation,
            "group": group,
            "days": days,
            "max_uses": max_uses,
            "role": role.value,
        },
    )
    return invite


def check_invite(session: Session, code: str | None, *, now: datetime) -> InviteCheck:
    """Is this code usable right now? Never raises on garbage: it is typed by strangers."""
    if not code or not CODE_PATTERN.match(code):
        return InviteCheck(None, InviteProblem.UNKNOWN)
    invite = session.scalar(select(Invite).where(Invite.code == code))
    if invite is None:
        return InviteCheck(None, InviteProblem.UNKNOWN)
    if invite.revoked_at is not None:
        return InviteCheck(invite, InviteProblem.REVOKED)
    if invite.expires_at is not None and invite.expires_at <= now:
        return InviteCheck(invite, InviteProblem.EXPIRED)
    if invite.max_uses is not None and invite.uses >= invite.max_uses:
        return InviteCheck(invite, InviteProblem.USED_UP)
    return InviteCheck(invite, None)


def claim_use(session: Session, invite: Invite, *, now: datetime) -> bool:
    """Count one use of `invite` if it still has one to give. The check and the increment are
    one statement: read-then-write let 6 of 8 people pressing Agree together through a
    single-use link on PostgreSQL, where each read uses = 0. Now a second UPDATE of the row
    waits for the first to commit and then checks its WHERE again against the new count."""
    claimed = session.execute(
        update(Invite)
        .where(
            Invite.id == invite.id,
            Invite.revoked_at.is_(None),
            or_(Invite.expires_at.is_(None), Invite.expires_at > now),
            or_(Invite.max_uses.is_(None), Invite.uses < Invite.max_uses),
        )
        .values(uses=Invite.uses + 1)
        .execution_options(synchronize_session=False)
    )
    session.expire(invite, ["uses"])
    return claimed.rowcount == 1  # type: ignore[attr-defined]


def check_code(session: Session, code: str | None, *, person: int, now: datetime) -> InviteCheck:
    """check_invite for a code someone typed or pressed, with the brake on guessing.

    The wrong codes are counted from the audit trail (an `invite.unknown` row per code that
    matched nothing, naming who sent it, never the code), so the count holds across processes
    and restarts. The rows are kept only as long as they count: each new one removes those
    older than the window, so a stranger's Telegram id does not stay for good."""
    since = now - WRONG_CODES_WINDOW
    wrong = session.scalar(
        select(func.count()).where(
            AuditEvent.action == WRONG_CODE,
            AuditEvent.actor_telegram_id == person,
            AuditEvent.at > since,
        )
    )
    if (wrong or 0) >= WRONG_CODES_ALLOWED:
        return InviteCheck(None, InviteProblem.TOO_MANY)
    check = check_invite(session, code, now=now)
    if check.problem == InviteProblem.UNKNOWN:
        session.execute(
            delete(AuditEvent)
            .where(AuditEvent.action == WRONG_CODE, AuditEvent.at <= since)
            .execution_options(synchronize_session=False)
        )
        record(session, WRONG_CODE, actor=person).at = now
    return check


def invite_label(invite: Invite) -> str:
    if invite.organisation is not None:
        return invite.organisation.name
    return invite.group_label or _("the partnership")


def list_invites(session: Session) -> list[Invite]:
    return list(session.scalars(select(Invite).order_by(Invite.created_at.desc(), Invite.id)))


def revoke_invite(session: Session, code: str, *, now: datetime, actor: int | None = None) -> bool:
    invite = session.scalar(select(Invite).where(Invite.code == code))
    if invite is None or invite.revoked_at is not None:
        return False
    invite.revoked_at = now
    record(session, "invite.revoke", actor=actor, subject=("invite", invite.id))
    return True


def invite_message(
    renderer: Renderer, invite: Invite, bot_username: str, *, already: bool = False
) -> OutgoingMessage:
    """The link as the coordinator gets it in chat; under an organisation's member link, the
    button that makes a link for its lead. `already`: a lead link made before, still unused."""
    text = renderer.render(
        "messages/invites/created.html",
        label=invite_label(invite),
        group=invite.organisation_id is None,
        lead=invite.role == Role.LEAD,
        already=already,
        link=deep_link(bot_username, invite.code),
        expires_at=invite.expires_at,
        max_uses=invite.max_uses,
    )
    if invite.organisation_id is None or invite.role != Role.MEMBER:
        return OutgoingMessage(text)
    lead = button(renderer, "lead_invite", f"iv:lead:{invite.organisation_id}")
    return OutgoingMessage(text, rows([lead]))


def lead_invite(
    session: Session, renderer: Renderer, data: str, *, now: datetime, bot_username: str, actor: int
) -> Reply:
    """A press on an invite's lead button (`iv:lead:<organisation>`): the organisation's lead
    link, made unless one is still unused (a second press, or one on an older invite's
    button, shows that one: one lead link at a time). DialogError for data no button has."""
    press = LEAD_PRESS.fullmatch(data)
    org = session.get(Organisation, int(press[1])) if press else None
    if org is None:
        unknown = renderer.render("messages/coordinator/toast.txt", outcome="unknown")
        raise DialogError(unknown)
    live = session.scalar(
        select(Invite)
        .where(
            Invite.organisation_id == org.id,
            Invite.role == Role.LEAD,
            Invite.revoked_at.is_(None),
            or_(Invite.expires_at.is_(None), Invite.expires_at > now),
            or_(Invite.max_uses.is_(None), Invite.uses < Invite.max_uses),
        )
        .order_by(Invite.id.desc())
        .limit(1)
    )
    invite = live or create_invite(
        session,
        now=now,
        organisation=org.name,
        days=LEAD_INVITE_DAYS,
        max_uses=LEAD_INVITE_USES,
        role=Role.LEAD,
        created_by=actor,
    )
    message = invite_message(renderer, invite, bot_username, already=live is not None)
    return Reply(toast="").say(message)


def parse_invite_args(args: list[str]) -> dict[str, object]:
    """`/invite Riverside Food Bank days=14 uses=20` or `/invite group Northside carers`.

    Raises ValueError with a message fit to show the coordinator, in their language.
    """
    words: list[str] = []
    days: int | None = None
    uses: int | None = None
    for word in args:
        key, sep, value = word.partition("=")
        if sep and key.lower() in {"days", "uses", "max_uses"}:
            if not value.isdigit():
                raise ValueError(_("{key} must be a whole number").format(key=key))
            if int(value) < 1:  # create_invite refuses these too, in words for the CLI
                raise ValueError(_("{key} must be at least 1").format(key=key))
            if key.lower() == "days":
                days = int(value)
            else:
                uses = int(value)
        else:
            words.append(word)
    group = bool(words) and words[0].lower() == "group"
    name = " ".join(words[1:] if group else words).strip()
    if not name:
        raise ValueError(_("say who the invite is for"))
    if len(name) > 120:
        raise ValueError(_("that name is too long"))
    return {
        "organisation": None if group else name,
        "group": name if group else None,
        "days": days,
        "max_uses": uses,
    }
