"""Joining, consent, profile and the participant's own controls (/pause, /stop...).

Until someone agrees to the privacy notice nothing about them is written: the invite code
travels in the Agree button's callback data (`c:ok:<code>`), not in a row.

Callback data:  c:ok:<code>  c:no      the privacy notice (empty code: joining as an individual)
                j:yes:<code> j:no      someone already joined opened another invite link
                pf:<q>:<o>   pf:<q>:<o>:j   a profile answer (":j" while joining)
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from bot.kernel.audit import record
from bot.kernel.people import find_participant, role_of
from bot.kernel.reply import Button, OutgoingMessage, Reply, rows
from bot.participation import journey
from bot.participation.invites import check_invite, invite_label
from bot.participation.profile import load_profile_questions, next_question, set_answer
from storage.models import Invite, Participant, ParticipantStatus, Role

if TYPE_CHECKING:
    from bot.kernel.context import AppContext

log = logging.getLogger(__name__)
T = "messages/participant/"
JOIN_PREFIXES = frozenset({"c", "j", "pf"})


def privacy_notice(ctx: AppContext, code: str, label: str | None) -> OutgoingMessage:
    text = ctx.renderer.render(
        T + "privacy_notice.html",
        partnership=ctx.settings.partnership.name,
        joining=label,
        version=ctx.settings.privacy.notice_version,
    )
    return OutgoingMessage(
        text=text,
        buttons=rows([Button("Agree", f"c:ok:{code}"), Button("No thanks", "c:no")]),
    )


def start(session: Session, ctx: AppContext, user_id: int, chat_id: int, code: str | None) -> Reply:
    """/start, with or without an invite code."""
    renderer = ctx.renderer
    partnership = ctx.settings.partnership.name
    participant = find_participant(session, user_id)
    now = ctx.clock.now()
    if participant is not None:
        participant.chat_id = chat_id
        if participant.status in (ParticipantStatus.STOPPED, ParticipantStatus.UNREACHABLE):
            # /start after /stop or after unblocking the bot: messages may flow again.
            participant.status = ParticipantStatus.ACTIVE
            record(session, "participant.reactivate", subject=("participant", participant.id))
    joined = participant is not None and participant.consent_at is not None
    if code:
        check = check_invite(session, code, now=now)
        if not check.ok:
            log.info("invite problem %s for user %s", check.problem, user_id)
            return Reply().say(
                renderer.render(
                    T + "invite_invalid.html", problem=str(check.problem), partnership=partnership
                )
            )
        assert check.invite is not None
        label = invite_label(check.invite)
        if joined:
            assert participant is not None
            if check.invite.id == participant.invite_id:
                return Reply(menu_role=participant.role.value).say(
                    renderer.render(T + "already_here.html", joining=label)
                )
            current = (
                participant.organisation.name
                if participant.organisation
                else participant.group_label
            )
            return Reply().say(
                OutgoingMessage(
                    renderer.render(T + "switch_question.html", current=current, joining=label),
                    buttons=rows(
                        [Button(f"Yes, join {label}"[:40], f"j:yes:{code}")],
                        [Button("No, keep things as they are", "j:no")],
                    ),
                )
            )
        return Reply().say(privacy_notice(ctx, code, label))
    role = role_of(session, ctx.settings, user_id)
    if not joined and role == Role.COORDINATOR:
        # Staff named by an admin (or in the config) run the partnership's side; they need no
        # invite, and are asked for consent only if they ever join as a participant. Their
        # chat is kept so digests and round progress can reach them.
        if participant is None:
            session.add(
                Participant(telegram_user_id=user_id, chat_id=chat_id, role=Role.COORDINATOR)
            )
        return Reply(menu_role=Role.COORDINATOR.value).say(
            renderer.render("messages/welcome_staff.html", partnership=partnership)
        )
    if not joined and participant is not None and participant.role == Role.LEAD:
        # An admin already made them a lead: the notice is all that stands between them and
        # taking part, no invite needed.
        return Reply().say(privacy_notice(ctx, "", None))
    if joined:
        assert participant is not None
        out = Reply(menu_role=participant.role.value).say(
            renderer.render("messages/welcome_back.html", name=participant.display_name)
        )
        waiting = journey.next_invitation_for(session, participant)
        if waiting is not None:
            out.messages.extend(journey.resume(session, ctx, participant).messages)
        return out
    if ctx.settings.partnership.allow_individuals:
        return Reply().say(privacy_notice(ctx, "", None))
    return Reply().say(
        renderer.render("messages/welcome.html", partnership=partnership, allow_individuals=False)
    )


def _attach(participant: Participant, invite: Invite | None) -> None:
    if invite is None:
        return
    participant.invite_id = invite.id
    participant.organisation_id = invite.organisation_id
    participant.group_label = invite.group_label
    participant.answers_as = invite.answers_as
    if invite.role is not None and participant.role.value == "member":
        participant.role = invite.role
    invite.uses += 1


def handle_press(
    session: Session, ctx: AppContext, user_id: int, chat_id: int, name: str | None, data: str
) -> Reply:
    renderer = ctx.renderer
    parts = data.split(":")
    now = ctx.clock.now()
    participant = find_participant(session, user_id)
    if data == "c:no":
        # Nothing was written before the notice, so there is nothing to delete.
        return Reply(toast="", edit=OutgoingMessage(renderer.render(T + "consent_declined.html")))
    if parts[0] == "c" and len(parts) == 3 and parts[1] == "ok":
        code = parts[2]
        invite = None
        if code:
            check = check_invite(session, code, now=now)
            if not check.ok:
                return Reply(toast="").say(
                    renderer.render(
                        T + "invite_invalid.html",
                        problem=str(check.problem),
                        partnership=ctx.settings.partnership.name,
                    )
                )
            invite = check.invite
        elif not ctx.settings.partnership.allow_individuals and not (
            participant is not None and participant.role != Role.MEMBER
        ):
            return _bad(renderer, data, user_id)
        if participant is not None and participant.consent_at is not None:
            return Reply(toast=renderer.render(T + "already_saved.html"))
        if participant is None:
            participant = Participant(telegram_user_id=user_id, role=Role.MEMBER, profile={})
            session.add(participant)
        participant.chat_id = chat_id
        participant.display_name = (name or "")[:128] or None
        participant.status = ParticipantStatus.ACTIVE
        participant.consent_at = now
        participant.consent_notice_version = ctx.settings.privacy.notice_version
        _attach(participant, invite)
        session.flush()
        record(
            session,
            "participant.consent",
            actor=user_id,
            subject=("participant", participant.id),
            details={
                "notice_version": ctx.settings.privacy.notice_version,
                "invite_id": invite.id if invite else None,
            },
        )
        label = invite_label(invite) if invite else None
        out = Reply(
            toast="",
            edit=OutgoingMessage(renderer.render(T + "consent_given.html", joining=label)),
            menu_role=participant.role.value,
        )
        return _ask_profile(ctx, participant, out, after=-1, joining=True)
    if data == "j:no":
        return Reply(toast="", edit=OutgoingMessage(renderer.render(T + "switch_kept.html")))
    if parts[0] == "j" and len(parts) == 3 and parts[1] == "yes":
        if participant is None or participant.consent_at is None:
            return _bad(renderer, data, user_id)
        check = check_invite(session, parts[2], now=now)
        if not check.ok or check.invite is None:
            return Reply(toast="").say(
                renderer.render(
                    T + "invite_invalid.html",
                    problem=str(check.problem),
                    partnership=ctx.settings.partnership.name,
                )
            )
        if participant.invite_id == check.invite.id:
            return Reply(toast=renderer.render(T + "already_saved.html"))
        _attach(participant, check.invite)
        record(
            session,
            "participant.switch",
            actor=user_id,
            subject=("participant", participant.id),
            details={"invite_id": check.invite.id},
        )
        return Reply(
            toast="",
            edit=OutgoingMessage(
                renderer.render(T + "switched.html", joining=invite_label(check.invite))
            ),
        )
    if parts[0] == "pf" and len(parts) in (3, 4):
        if participant is None or participant.consent_at is None:
            return _bad(renderer, data, user_id)
        questions = load_profile_questions(ctx.settings.paths.templates)
        try:
            q_index, o_index = int(parts[1]), int(parts[2])
            question = questions[q_index]
            option = question.options[o_index]
        except (ValueError, IndexError):
            return _bad(renderer, data, user_id)
        set_answer(participant, question, option)
        out = Reply(
            toast="",
            edit=OutgoingMessage(
                renderer.render(
                    T + "profile_answered.html", question=question.text, answer=option.label
                )
            ),
        )
        return _ask_profile(ctx, participant, out, after=q_index, joining=len(parts) == 4)
    return _bad(renderer, data, user_id)


def _bad(renderer: journey.Renderer, data: str, user_id: int) -> Reply:
    log.warning("refused press %r from %s", data[:64], user_id)
    return Reply(toast="").say(renderer.render(T + "bad_button.html"))


def _ask_profile(
    ctx: AppContext, participant: Participant, out: Reply, *, after: int, joining: bool
) -> Reply:
    questions = load_profile_questions(ctx.settings.paths.templates)
    index = next_question(questions, participant, after, joining=joining)
    if index is None:
        return out.say(
            ctx.renderer.render(
                T + "profile_done.html", joining=joining, profile=participant.profile
            )
        )
    question = questions[index]
    suffix = ":j" if joining else ""
    current = (participant.profile or {}).get(question.key)
    return out.say(
        OutgoingMessage(
            ctx.renderer.render(
                T + "profile_question.html",
                question=question,
                current=current,
                number=index + 1,
                total=len(questions),
            ),
            buttons=rows(
                *[
                    [Button(("✓ " if o.id == current else "") + o.label, f"pf:{index}:{i}{suffix}")]
                    for i, o in enumerate(question.options)
                ]
            ),
        )
    )


def profile_command(session: Session, ctx: AppContext, participant: Participant) -> Reply:
    return _ask_profile(ctx, participant, Reply(), after=-1, joining=False)


def set_status(
    session: Session, ctx: AppContext, participant: Participant, status: ParticipantStatus
) -> Reply:
    """/pause and /stop."""
    previous = participant.status
    participant.status = status
    record(
        session,
        f"participant.{status.value}",
        actor=participant.telegram_user_id,
        subject=("participant", participant.id),
        details={"previous": previous.value},
    )
    template = "paused.html" if status == ParticipantStatus.PAUSED else "stopped.html"
    return Reply().say(ctx.renderer.render(T + template))


def resume_command(session: Session, ctx: AppContext, participant: Participant) -> Reply:
    out = Reply()
    if participant.status == ParticipantStatus.PAUSED:
        participant.status = ParticipantStatus.ACTIVE
        record(
            session,
            "participant.resume",
            actor=participant.telegram_user_id,
            subject=("participant", participant.id),
        )
        out.say(ctx.renderer.render(T + "resumed.html"))
    more = journey.resume(session, ctx, participant)
    if out.messages and not journey.next_invitation_for(session, participant):
        return out
    out.messages.extend(more.messages)
    return out


def mark_unreachable(session: Session, telegram_user_id: int) -> bool:
    """Telegram said 403 (blocked) or the user left the chat: send nothing more until /start."""
    participant = find_participant(session, telegram_user_id)
    if participant is None or participant.status == ParticipantStatus.UNREACHABLE:
        return False
    participant.status = ParticipantStatus.UNREACHABLE
    record(session, "participant.unreachable", subject=("participant", participant.id))
    return True
