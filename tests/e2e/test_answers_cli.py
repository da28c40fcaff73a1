"""`consultbot answers import` from a shell: a Kobo export and typed-up paper forms go into an
open round beside the chat's answers, the digest counts them all and by channel, a file with
mistakes is refused whole with every mistake's row and column, and nothing is ever sent for
an imported submission."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from storage.db import session_scope
from storage.models import (
    CHAT,
    Answer,
    AnswerChoice,
    AnswerCode,
    AuditEvent,
    CodeSource,
    Delivery,
    Invitation,
    InvitationStatus,
    Round,
    RoundStatus,
)
from tests.conftest import Database
from tests.support import factories, kobo
from tests.support.cli_run import consultbot
from tests.support.digest_fixtures import close, respondent


def chat_round(db: Database, tmp: Path, *, answered: int, waiting: int = 0) -> int:
    """An open round of the street survey: `answered` people answered in the chat, `waiting`
    more have the invitation and have not answered."""
    with session_scope(db.sessions) as session:
        round_ = factories.open_round(session, kobo.form(session, tmp))
        for i, values in enumerate(kobo.answers(answered, seed=50)):
            chat = {k: v for k, v in values.items() if v != "" or k == "anything_else"}
            chat["barriers"] = values["barriers"].split()
            chat["anything_else"] = values["anything_else"] or None
            respondent(session, round_, 7000 + i, chat)
        for i in range(waiting):
            person = factories.participant(
                session, 8000 + i, profile={"answers_as": "organisation"}
            )
            factories.invitation(session, round_, person, status=InvitationStatus.DELIVERED)
        return round_.id


def imported(db: Database, round_id: int) -> dict[str, int]:
    with session_scope(db.sessions) as session:
        return dict(
            session.execute(
                select(Invitation.channel, func.count())
                .where(Invitation.round_id == round_id, Invitation.participant_id.is_(None))
                .group_by(Invitation.channel)
            ).all()
        )


def run(db: Database, tmp: Path, *args: str) -> Any:
    return consultbot(*args, cwd=tmp, env={"CONSULTBOT_DATABASE__URL": db.url})


def test_a_kobo_export_and_paper_forms_are_counted_with_the_chat_and_by_channel(
    db: Database, tmp_path: Path
) -> None:
    round_id = chat_round(db, tmp_path, answered=8, waiting=2)
    export = kobo.xlsx(
        tmp_path / "street-survey.xlsx", kobo.KOBO_HEADER, kobo.kobo_rows(kobo.answers(12))
    )
    first = run(db, tmp_path, "answers", "import", "--round", str(round_id), str(export))
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith(f"12 submissions stored for round {round_id} (channel: kobo)")
    assert "free-text answers coded" in first.stdout
    again = run(db, tmp_path, "answers", "import", "--round", str(round_id), str(export))
    assert again.returncode == 0, again.stderr
    assert "0 submissions stored" in again.stdout
    assert "12 already imported were skipped" in again.stdout

    paper = kobo.csv_file(
        tmp_path / "paper.csv", kobo.PLAIN_HEADER, kobo.plain_rows(kobo.answers(6, seed=20))
    )
    typed = run(db, tmp_path, "answers", "import", "--round", str(round_id), str(paper))
    assert typed.returncode == 0, typed.stderr
    assert "6 submissions stored" in typed.stdout and "(channel: paper)" in typed.stdout
    twice = run(db, tmp_path, "answers", "import", "--round", str(round_id), str(paper))
    assert "0 submissions stored" in twice.stdout and "6 already imported" in twice.stdout
    assert imported(db, round_id) == {"kobo": 12, "paper": 6}

    with session_scope(db.sessions) as session:
        ids = select(Invitation.id).where(Invitation.participant_id.is_(None))
        answers = select(Answer.id).where(Answer.invitation_id.in_(ids))
        # As the chat writes them: a choice row per option, the options' codes, and the
        # coder's codes (with its evidence) on the free texts.
        assert session.scalar(
            select(func.count()).where(AnswerChoice.answer_id.in_(answers))
        ) == sum(1 + len(a["barriers"].split()) + 1 for a in kobo.answers(12)) + sum(
            1 + len(a["barriers"].split()) + 1 for a in kobo.answers(6, seed=20)
        )
        auto = session.scalars(
            select(AnswerCode.code).where(
                AnswerCode.answer_id.in_(answers), AnswerCode.source == CodeSource.AUTO
            )
        ).all()
        assert {"ext.engagement", "ext.red_tape"} <= set(auto)
        assert session.scalar(
            select(func.count()).where(
                AnswerCode.answer_id.in_(answers), AnswerCode.source == CodeSource.OPTION
            )
        )
        events = session.scalars(
            select(AuditEvent.details).where(AuditEvent.action == "answers.import")
        ).all()
        assert [(e["stored"], e["already"], e["channel"]) for e in events] == [
            (12, 0, "kobo"),
            (0, 12, "kobo"),
            (6, 0, "paper"),
            (0, 6, "paper"),
        ]

    shown = run(db, tmp_path, "rounds", "show", str(round_id))
    assert shown.returncode == 0, shown.stderr
    assert "invited 28 (18 imported), delivered 10" in shown.stdout
    assert "channel=KoboToolbox: 12 of 12 answered" in shown.stdout

    # Reminders and the close's digests go to people; an imported submission has nobody.
    reminded = run(db, tmp_path, "rounds", "remind", str(round_id))
    assert f"round {round_id}: 2 reminders queued" in reminded.stdout
    assert run(db, tmp_path, "rounds", "close", str(round_id)).returncode == 0
    with session_scope(db.sessions) as session:
        anonymous = select(Invitation.id).where(Invitation.participant_id.is_(None))
        assert not session.scalar(select(func.count()).where(Delivery.invitation_id.in_(anonymous)))
        assert session.scalar(select(func.count()).select_from(Delivery)) == 2

    out = tmp_path / "digest.md"
    digest = run(
        db, tmp_path, "digest", "--round", str(round_id), "--format", "md", "--out", str(out)
    )
    assert digest.returncode == 0, digest.stderr
    text = out.read_text()
    assert "**26** of 28 people invited answered" in text
    rows = dict(re.findall(r"^\| (Chat|KoboToolbox|Paper) \| (\d+ \| \d+)", text, re.M))
    assert rows == {"Chat": "10 | 8", "KoboToolbox": "12 | 12", "Paper": "6 | 6"}
    assert "| Channel |" in text
    assert "Channel: " not in text  # a channel is not a group left unheard (reach gaps)


def test_a_channel_too_small_to_show_is_merged(db: Database, tmp_path: Path) -> None:
    round_id = chat_round(db, tmp_path, answered=10)
    kobo_export = kobo.xlsx(
        tmp_path / "kobo.xlsx", kobo.KOBO_HEADER, kobo.kobo_rows(kobo.answers(7))
    )
    event = kobo.csv_file(
        tmp_path / "event.csv", kobo.PLAIN_HEADER, kobo.plain_rows(kobo.answers(3, seed=9))
    )
    for path, channel in ((kobo_export, "kobo"), (event, "event")):
        result = run(
            db,
            tmp_path,
            "answers",
            "import",
            "--round",
            str(round_id),
            "--channel",
            channel,
            str(path),
        )
        assert result.returncode == 0, result.stderr
    assert run(db, tmp_path, "rounds", "close", str(round_id)).returncode == 0
    out = tmp_path / "digest.md"
    assert run(
        db, tmp_path, "digest", "--round", str(round_id), "--format", "md", "--out", str(out)
    )
    text = out.read_text()
    assert "**20** of 20 people invited answered" in text
    # Event's 3 are under k = 5, and KoboToolbox's 7 are held back with them, so neither
    # can be had by subtraction from the total.
    assert "| Chat | 10 | 10 |" in text and r"| Other \(merged\) | 10 | 10 |" in text
    assert "| Event |" not in text and "| KoboToolbox |" not in text


def test_a_file_with_mistakes_is_refused_whole_with_every_row_and_column(
    db: Database, tmp_path: Path
) -> None:
    round_id = chat_round(db, tmp_path, answered=3)
    rows = kobo.kobo_rows(kobo.answers(9))
    rows[0][2] = "After decisions are made"  # a label where its name belongs
    rows[1][2] = "sometimes"  # no such option
    rows[2][3] = 7  # off the scale
    rows[3][11] = "x" * 301  # longer than the question allows
    rows[3][9] = "yes"
    rows[3][10] = "Nobody wrote back"  # a branch not taken (told_back is yes), filled in
    rows[4][10] = ""  # a branch taken (told_back is no), left empty
    rows[5][4] = "none funding"  # "None of these" with another
    rows[5][5], rows[5][8] = 1, 1
    header = (*kobo.KOBO_HEADER, "favourite_colour")
    path = kobo.xlsx(tmp_path / "bad.xlsx", header, [[*row, "blue"] for row in rows])
    result = run(db, tmp_path, "answers", "import", "--round", str(round_id), str(path))
    assert result.returncode == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == "consultbot: nothing stored: 8 problems in bad.xlsx"
    assert lines[:-1] == [
        "row 1, column X (favourite_colour): not a question of this round's form, nor "
        "Kobo's or ODK's",
        "row 2, column C (group_intro/asked_when): 'After decisions are made' looks like a "
        "label; export with XML values (here: late)",
        "row 3, column C (group_intro/asked_when): 'sometimes': not an option of asked_when "
        "(its options: early late not_asked)",
        "row 4, column D (group_intro/equal_partner): 7 is outside the scale, 1 to 5",
        "row 5, column K (what_stopped): should be empty: asked only when ${told_back} = 'no'",
        "row 5, column L (anything_else): too long: 301 characters, at most 300",
        "row 6, column K (what_stopped): empty, but the question is required (asked, as "
        "${told_back} = 'no')",
        "row 7, column E (barriers): none goes alone: it cannot be chosen with funding",
    ]
    assert "Traceback" not in result.stderr
    assert imported(db, round_id) == {}

    csv_rows = kobo.plain_rows(kobo.answers(2))
    csv_rows[0][5] = "A note\nover two lines"
    csv_rows[1][1] = "lots"
    bad_csv = kobo.csv_file(tmp_path / "bad.csv", kobo.PLAIN_HEADER, csv_rows)
    result = run(db, tmp_path, "answers", "import", "--round", str(round_id), str(bad_csv))
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        "line 4, column 2 (equal_partner): 'lots' is not a whole number from 1 to 5"
    )
    assert imported(db, round_id) == {}


def test_only_an_open_round_takes_answers(db: Database, tmp_path: Path) -> None:
    round_id = chat_round(db, tmp_path, answered=1)
    path = kobo.csv_file(
        tmp_path / "paper.csv", kobo.PLAIN_HEADER, kobo.plain_rows(kobo.answers(1))
    )
    with session_scope(db.sessions) as session:
        round_ = session.get(Round, round_id)
        assert round_ is not None
        close(round_)
    closed = run(db, tmp_path, "answers", "import", "--round", str(round_id), str(path))
    assert closed.returncode == 1
    assert closed.stderr.strip() == (
        f"consultbot: round {round_id} is closed: its figures were published when it closed "
        "and stay as they were: answers are imported into an open round"
    )
    with session_scope(db.sessions) as session:
        round_ = session.get(Round, round_id)
        assert round_ is not None
        round_.status = RoundStatus.SCHEDULED
    planned = run(db, tmp_path, "answers", "import", "--round", str(round_id), str(path))
    assert planned.returncode == 1 and "has not opened yet" in planned.stderr
    missing = run(db, tmp_path, "answers", "import", "--round", "99", str(path))
    assert missing.returncode == 1 and "no round 99" in missing.stderr
    chat = run(db, tmp_path, "answers", "import", "--round", "1", "--channel", CHAT, str(path))
    assert chat.returncode == 1 and "not chat, which is the bot's own" in chat.stderr
    nowhere = run(db, tmp_path, "answers", "import", "--round", "1", "nowhere.xlsx")
    assert nowhere.returncode == 2 and "cannot read nowhere.xlsx" in nowhere.stderr
    assert imported(db, round_id) == {}
