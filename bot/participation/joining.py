"""Joining, consent, profile and the participant's own controls (/pause, /stop...).

Until someone agrees to the privacy notice nothing about them is written: the invite code
travels in the Agree button's callback data (`c:ok:<code>`), not in a row.

Presses come parsed (bot.participation.presses: ConsentPress, SwitchPress, ProfilePress).
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from bot.consultations.profile import load_profile_questions
from bot.kernel import i18n
from bot.kernel.audit import record
from bot.kernel.context import AppContext
from bot.kernel.dialogs import button
from bot.kernel.people import find_participant, role_of
from bot.kernel.render import Renderer
from bot.kernel.reply import Button, OutgoingMessage, Reply, rows
from bot.outbox.queue import withdraw_pending
from bot.participation import journey
from bot.participation.invites import (
    InviteProblem,
    check_code,
    check_invite,
    claim_use,
    invite_label,
)
from bot.participation.presses import ConsentPress, LanguagePress, ProfilePress, SwitchPress
from bot.participation.profile import counted, next_question, set_answer
from storage.models import Invite, Participant, ParticipantStatus, Role

log = logging.getLogger(__name__)
T = "messages/participant/"


def privacy_notice(
    ctx: AppContext, code: str, label: str | None, language: str | None = None
) -> OutgoingMessage:
    """The notice, with Agree / No thanks; `language`: chosen just before it, carried in the
    Agree button (nothing is stored before consent)."""
    agree = f"c:ok:{code}:{language}" if language else f"c:ok:{code}"
    text = ctx.renderer.render(
        T + "privacy_notice.html",
        partnership=ctx.settings.partnership.name,
        joining=label,
        version=ctx.settings.privacy.notice_version,
    )
    return OutgoingMessage(
        text=text,
        buttons=rows(
            [
                button(ctx.renderer, "agree", agree),
                button(ctx.renderer, "no_thanks", "c:no"),
            ]
        ),
    )


def choose_language(ctx: AppContext, *, joining: str | None = None) -> OutgoingMessage:
    """A button per deployment language, the one being spoken (Telegram's language_code's,
    if the deployment has it) first; `joining`: the invite code, before the notice."""
    languages = i18n.offered(i18n.current(), ctx.settings.partnership.languages)
    after = "" if joining is None else f":j:{joining}"
    buttons = [Button(i18n.name_of(x), f"l:{x}{after}") for x in languages]
    said = []
    for language in languages:  # whoever reads it may not read the first
        with i18n.speaking(language):
            said.append(ctx.renderer.render(T + "choose_language.html"))
    text = "\n".join(dict.fromkeys(said))
    return OutgoingMessage(text=text, buttons=rows(buttons))


def _before_notice(ctx: AppContext, code: str, label: str | None) -> OutgoingMessage:
    """Where joining starts: the choice of language when there is one, else the notice."""
    if len(ctx.settings.partnership.languages) > 1:
        return choose_language(ctx, joining=code)
    return privacy_notice(ctx, code, label)


def language_press(session: Session, ctx: AppContext, user_id: int, press: LanguagePress) -> Reply:
    """A language chosen: before the notice (shown next, in it) or by /language (stored)."""
    if press.language not in ctx.settings.partnership.languages:
        return _bad(ctx.renderer, press, user_id)
    participant = find_participant(session, user_id)
    if press.joining:
        if participant is not None and participant.consent_at is not None:
            return Reply(toast=ctx.renderer.render(T + "already_saved.html"))
        i18n.use(press.language)
        label = None
        if press.code:
            # With the brake on guessing, as at /start: the notice names the invite's owner.
            check = check_code(session, press.code, person=user_id, now=ctx.clock.now())
            if not check.ok or check.invite is None:
                return _invalid(ctx, check.problem)
            label = invite_label(check.invite)
        return Reply(toast="", edit=privacy_notice(ctx, press.code, label, press.language))
    if participant is None:
        return Reply(toast="", edit=OutgoingMessage(ctx.renderer.render(T + "not_joined.html")))
    participant.language = press.language
    i18n.use(press.language)
    text = ctx.renderer.render(T + "language_set.html", name=i18n.name_of(press.language))
    # The command menu follows: it is set again, in their language, after this.
    return Reply(toast="", edit=OutgoingMessage(text), menu_role=participant.role.value)


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
        check = check_code(session, code, person=user_id, now=now)
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
            current = _current(participant)
            if _stays_put(session, ctx, participant, check.invite):
                return Reply(menu_role=participant.role.value).say(
                    _not_for_staff(session, ctx, participant, check.invite)
                )
            return Reply().say(
                OutgoingMessage(
                    renderer.render(T + "switch_question.html", current=current, joining=label),
                    buttons=rows(
                        [button(renderer, "switch", f"j:yes:{code}", joining=label)],
                        [button(renderer, "stay", "j:no")],
                    ),
                )
            )
        return Reply().say(_before_notice(ctx, code, label))
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
        return Reply().say(_before_notice(ctx, "", None))
    if joined:
        assert participant is not None
        out = Reply(menu_role=participant.role.value).say(
            renderer.render("messages/welcome_back.html", name=participant.display_name)
        )
        return _then_resume(session, ctx, participant, out)
    if ctx.settings.partnership.allow_individuals:
        return Reply().say(_before_notice(ctx, "", None))
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


def handle_press(
    session: Session,
    ctx: AppContext,
    user_id: int,
    chat_id: int,
    name: str | None,
    press: ConsentPress | SwitchPress | ProfilePress | LanguagePress,
) -> Reply:
    if isinstance(press, LanguagePress):
        return language_press(session, ctx, user_id, press)
    if isinstance(press, ConsentPress | SwitchPress) and not press.yes:
        # Nothing was written before the notice, so there is nothing to delete.
        kept = "consent_declined.html" if isinstance(press, ConsentPress) else "switch_kept.html"
        return Reply(toast="", edit=OutgoingMessage(ctx.renderer.render(T + kept)))
    participant = find_participant(session, user_id)
    if isinstance(press, ConsentPress):
        language = press.language
        if language is not None and language not in ctx.settings.partnership.languages:
            return _bad(ctx.renderer, press, user_id)
        if language is not None:
            i18n.use(language)
        return _consent(session, ctx, participant, user_id, chat_id, name, press.code, language)
    if participant is None or participant.consent_at is None:
        return _bad(ctx.renderer, press, user_id)
    if isinstance(press, SwitchPress):
        return _switch(session, ctx, participant, press.code)
    questions = load_profile_questions(ctx.settings.paths.templates)
    question = questions[press.question_index] if press.question_index < len(questions) else None
    if question is None or press.option_index >= len(question.options):
        return _bad(ctx.renderer, press, user_id)
    option = question.options[press.option_index]
    set_answer(participant, question, option)
    text = ctx.renderer.render(
        T + "profile_answered.html", question=question.local_text, answer=option.local_label
    )
    out = Reply(toast="", edit=OutgoingMessage(text))
    return _ask_profile(ctx, participant, out, after=press.question_index, joining=press.joining)


def _invalid(ctx: AppContext, problem: object) -> Reply:
    text = ctx.renderer.render(
        T + "invite_invalid.html", problem=str(problem), partnership=ctx.settings.partnership.name
    )
    return Reply(toast="").say(text)


def _used_up(session: Session, ctx: AppContext, code: str) -> Reply:
    """The link's last use went to someone else a moment ago (or it lapsed meanwhile)."""
    problem = check_invite(session, code, now=ctx.clock.now()).problem
    return _invalid(ctx, problem or InviteProblem.USED_UP)


def _consent(
    session: Session,
    ctx: AppContext,
    participant: Participant | None,
    user_id: int,
    chat_id: int,
    name: str | None,
    code: str,
    language: str | None = None,
) -> Reply:
    now = ctx.clock.now()
    invite = None
    if code:
        check = check_code(session, code, person=user_id, now=now)
        if not check.ok:
            return _invalid(ctx, check.problem)
        invite = check.invite
    elif not ctx.settings.partnership.allow_individuals and not (
        participant is not None and participant.role != Role.MEMBER
    ):
        return _bad(ctx.renderer, ConsentPress(True, code, language), user_id)
    if participant is not None and participant.consent_at is not None:
        return Reply(toast=ctx.renderer.render(T + "already_saved.html"))
    if invite is not None and not claim_use(session, invite, now=now):
        return _used_up(session, ctx, code)
    if participant is None:
        participant = Participant(telegram_user_id=user_id, role=Role.MEMBER, profile={})
        session.add(participant)
    participant.chat_id = chat_id
    participant.display_name = (name or "")[:128] or None
    participant.status = ParticipantStatus.ACTIVE
    participant.consent_at = now
    participant.consent_notice_version = ctx.settings.privacy.notice_version
    if language is not None:
        participant.language = language
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
        edit=OutgoingMessage(ctx.renderer.render(T + "consent_given.html", joining=label)),
        menu_role=participant.role.value,
    )
    return _ask_profile(ctx, participant, out, after=-1, joining=True)


def _switch(session: Session, ctx: AppContext, participant: Participant, code: str) -> Reply:
    check = check_code(session, code, person=participant.telegram_user_id, now=ctx.clock.now())
    if not check.ok or check.invite is None:
        return _invalid(ctx, check.problem)
    if participant.invite_id == check.invite.id:
        return Reply(toast=ctx.renderer.render(T + "already_saved.html"))
    if _stays_put(session, ctx, participant, check.invite):
        edit = OutgoingMessage(_not_for_staff(session, ctx, participant, check.invite))
        return Reply(toast="", edit=edit)
    if not claim_use(session, check.invite, now=ctx.clock.now()):
        return _used_up(session, ctx, code)
    _attach(participant, check.invite)
    record(
        session,
        "participant.switch",
        actor=participant.telegram_user_id,
        subject=("participant", participant.id),
        details={"invite_id": check.invite.id},
    )
    text = ctx.renderer.render(T + "switched.html", joining=invite_label(check.invite))
    return Reply(toast="", edit=OutgoingMessage(text))


def _current(participant: Participant) -> str | None:
    """The organisation or group someone joined with, by name."""
    if participant.organisation is not None:
        return participant.organisation.name
    return participant.group_label


def _stays_put(session: Session, ctx: AppContext, participant: Participant, invite: Invite) -> bool:
    """A lead or coordinator keeps their organisation: an ordinary member link, which anyone
    may pass on, never moves them. Moving one is a coordinator's act, with a lead link."""
    role = role_of(session, ctx.settings, participant.telegram_user_id)
    return (
        role in (Role.LEAD, Role.COORDINATOR)
        and invite.role == Role.MEMBER
        and (invite.organisation_id, invite.group_label)
        != (participant.organisation_id, participant.group_label)
    )


def _not_for_staff(
    session: Session, ctx: AppContext, participant: Participant, invite: Invite
) -> str:
    role = role_of(session, ctx.settings, participant.telegram_user_id)
    return ctx.renderer.render(
        T + "switch_not_for_staff.html",
        role=role.value if role else "",
        current=_current(participant),
        joining=invite_label(invite),
    )


def _bad(renderer: Renderer, press: object, user_id: int) -> Reply:
    log.warning("refused press %r from %s", press, user_id)
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
    asked = counted(questions, participant, joining=joining)
    return out.say(
        OutgoingMessage(
            ctx.renderer.render(
                T + "profile_question.html",
                question=question,
                current=current,
                number=asked.index(index) + 1,
                total=len(asked),
            ),
            buttons=rows(
                *[
                    [
                        Button(
                            ("✓ " if o.id == current else "") + o.local_label,
                            f"pf:{index}:{i}{suffix}",
                        )
                    ]
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
    if status == ParticipantStatus.STOPPED:
        withdraw_pending(session, participant_id=participant.id, chat_id=participant.chat_id)
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
        return _then_resume(session, ctx, participant, out)
    return journey.resume(session.connection(), ctx, participant.telegram_user_id)


def _then_resume(session: Session, ctx: AppContext, participant: Participant, out: Reply) -> Reply:
    """`out`, then the round in progress or waiting, if there is one."""
    session.flush()
    more = journey.resume(session.connection(), ctx, participant.telegram_user_id, quiet=True)
    out.messages.extend(more.messages)
    out.card_for = more.card_for
    return out


def mark_unreachable(session: Session, telegram_user_id: int) -> bool:
    """Telegram said 403 (blocked) or the user left the chat: send nothing more until /start."""
    participant = find_participant(session, telegram_user_id)
    if participant is None or participant.status == ParticipantStatus.UNREACHABLE:
        return False
    participant.status = ParticipantStatus.UNREACHABLE
    record(session, "participant.unreachable", subject=("participant", participant.id))
    return True
