"""Imported submissions (bot.participation.imported) beside everything that assumes an invitation
has a person: /mydata and /forget leave them alone, the chat's state of a person never sees
them, and digests read releases published before channels existed as all chat."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.coding.stored import codebook_for
from bot.digests.compile import compile_digest, prepare
from bot.digests.digest import Digest, Scope
from bot.digests.scopes import round_scope
from bot.kernel.config import Settings, load_settings
from bot.kernel.context import AppContext
from bot.participation.imported import Imported, SheetProblems, import_answers
from bot.participation.mydata import export, forget
from bot.rounds.audiences import busy_people, invitees
from storage.db import session_scope
from storage.models import Answer, Invitation, Participant, Release, Round, utcnow
from tests.conftest import Database
from tests.support import factories, kobo
from tests.support.digest_fixtures import close, respondent

K = 5


@pytest.fixture
def k5(db: Database) -> Settings:
    return load_settings(None, database={"url": db.url}, privacy={"k": K})


def chat_answers(i: int) -> dict[str, object]:
    values = kobo.answers(1, seed=i)[0]
    return {
        "asked_when": values["asked_when"],
        "equal_partner": values["equal_partner"],
        "barriers": values["barriers"].split(),
        "told_back": values["told_back"],
        **({"what_stopped": values["what_stopped"]} if values["what_stopped"] else {}),
    }


def a_round(session: Session, tmp: Path, people: int, *, first_user: int = 100) -> Round:
    round_ = factories.open_round(session, kobo.form(session, tmp))
    for i in range(people):
        respondent(session, round_, first_user + i, chat_answers(i))
    return round_


def import_kobo(session: Session, round_: Round, n: int, seed: int = 0) -> Imported:
    rows = kobo.kobo_rows(kobo.answers(n, seed), seed)
    return import_answers(
        session,
        round_.id,
        kobo.sheet(kobo.KOBO_HEADER, rows),
        channel=None,
        now=utcnow(),
        text_limit=800,
    )


def digest(session: Session, settings: Settings, scope: Scope) -> Digest:
    codebook = codebook_for(settings)
    prepare(session, scope, codebook)
    return compile_digest(session, settings, scope, now=utcnow(), codebook=codebook)


def test_mydata_and_forget_leave_imported_submissions_alone(
    db: Database, ctx: AppContext, tmp_path: Path
) -> None:
    with session_scope(db.sessions) as session:
        round_ = a_round(session, tmp_path, 2)
        assert import_kobo(session, round_, 6) == Imported(round_.id, "kobo", 6, 0)
    with session_scope(db.sessions) as session:
        person = session.scalar(select(Participant).where(Participant.telegram_user_id == 100))
        assert person is not None
        mine = export(session, person)["consultations"]
        assert [(c["round_id"], c["channel"]) for c in mine] == [(round_.id, "chat")]
        # Nobody is busy in the round, or over the fatigue cap, because of an import.
        assert busy_people(session, [person.id]) == set()
        people, capped = invitees(session, {"who": "everyone"}, now=utcnow(), cap=1, period_days=30)
        assert capped == [] and len(people) == 2
    with session_scope(db.sessions) as session:
        assert forget(session, ctx, 100)
    with session_scope(db.sessions) as session:
        anonymous = select(Invitation.id).where(Invitation.participant_id.is_(None))
        assert len(session.scalars(anonymous).all()) == 6
        answers = select(func.count()).where(Answer.invitation_id.in_(anonymous))
        assert session.scalar(answers) == 6 * 5 + 4  # five questions each, the branch four times
        assert session.scalar(select(func.count()).select_from(Participant)) == 1


def test_a_sheet_with_a_problem_stores_nothing(db: Database, tmp_path: Path) -> None:
    with session_scope(db.sessions) as session:
        round_ = a_round(session, tmp_path, 1)
        rows = kobo.kobo_rows(kobo.answers(3))
        rows[2][3] = "eleven"
        with pytest.raises(SheetProblems) as caught:
            import_answers(
                session,
                round_.id,
                kobo.sheet(kobo.KOBO_HEADER, rows),
                channel="kobo",
                now=utcnow(),
                text_limit=800,
            )
        assert caught.value.problems == [
            "row 4, column D (group_intro/equal_partner): 'eleven' is not a whole number "
            "from 1 to 5"
        ]
        assert session.scalar(select(func.count()).select_from(Invitation)) == 1


def test_a_release_published_before_channels_reads_as_all_chat(
    db: Database, k5: Settings, tmp_path: Path
) -> None:
    """Releases stored before the channel dimension have five labels per atom and no channel
    segment: their digest is the same, and a quarter with a round that imported answers
    counts the older round's people under Chat."""
    with session_scope(db.sessions) as session:
        old = a_round(session, tmp_path, 7)
        close(old, utcnow() - timedelta(days=3))
        new = a_round(session, tmp_path, 6, first_user=200)
        import_kobo(session, new, 6)
        close(new, utcnow() - timedelta(days=1))
        before = digest(session, k5, round_scope(session, old.id))
        release = session.get(Release, old.id)
        assert release is not None
        figures = dict(release.figures)
        assert "channel" not in figures["segments"]  # all chat: no breakdown
        figures["atoms"] = [[org, labels[:5], *cells] for org, labels, *cells in figures["atoms"]]
        release.figures = figures
    with session_scope(db.sessions) as session:
        again = digest(session, k5, round_scope(session, old.id))
        assert again.participation == before.participation
        quarter = digest(session, k5, Scope((old.id, new.id), "the quarter", period=True))
    channel = {d.key: d for d in quarter.participation.dimensions}["channel"]
    assert {(r.label, r.invited, r.responded) for r in channel.rows} == {
        ("KoboToolbox", 6, 6),
        ("Chat", 13, 13),
    }
    assert quarter.participation.responded == 19
