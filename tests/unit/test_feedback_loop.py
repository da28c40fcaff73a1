"""Closing the loop: the next round's intro tells people what was done with what they said."""

from __future__ import annotations

from datetime import date, timedelta

from bot.kernel.context import AppContext
from bot.participation.cards import invitation_message
from storage.db import session_scope
from storage.models import Action, ActionStatus, InvitationStatus, RoundStatus
from tests.support import factories


def test_next_intro_says_what_happened_since(ctx: AppContext) -> None:
    now = ctx.clock.now()
    with session_scope(ctx.sessions) as s:
        person = factories.participant(s, 4100)
        bystander = factories.participant(s, 4101)
        consultation = factories.consultation(s, "pulse")
        first = factories.open_round(s, consultation, now=now - timedelta(days=40))
        first.status = RoundStatus.CLOSED
        took_part = factories.invitation(s, first, person, status=InvitationStatus.COMPLETED)
        took_part.started_at = took_part.invited_at = now - timedelta(days=40)
        skipped = factories.invitation(s, first, bystander, status=InvitationStatus.DECLINED)
        skipped.invited_at = now - timedelta(days=40)
        s.add(
            Action(
                round_id=first.id,
                finding="Meetings clash with volunteers' working hours & <shifts>",
                action="Move the forum to 6pm",
                owner="Council VCS team",
                due_on=date(2026, 3, 1),
                status=ActionStatus.DONE,
                published_at=now - timedelta(days=20),
            )
        )
        second = factories.open_round(s, consultation, now=now)
        mine = factories.invitation(s, second, person, status=InvitationStatus.PENDING)
        theirs = factories.invitation(s, second, bystander, status=InvitationStatus.PENDING)
        s.flush()
        text = invitation_message(s, ctx.renderer, mine, partnership="Riverside").text
        other = invitation_message(s, ctx.renderer, theirs, partnership="Riverside").text

    assert "Since we last asked you" in text
    assert "Move the forum to 6pm" in text and "Council VCS team" in text
    assert "&amp; &lt;shifts&gt;" in text, "what people said is escaped in Telegram HTML"
    assert "Since we last asked you" not in other, "only people who took part hear back"


def test_first_ever_intro_has_no_feedback_section(ctx: AppContext) -> None:
    with session_scope(ctx.sessions) as s:
        person = factories.participant(s, 4200)
        round_ = factories.open_round(s, factories.consultation(s, "pulse"), now=ctx.clock.now())
        invite = factories.invitation(s, round_, person, status=InvitationStatus.PENDING)
        text = invitation_message(s, ctx.renderer, invite, partnership="Riverside").text
    assert "Since we last asked you" not in text
    assert "Riverside would like to hear from you" in text
