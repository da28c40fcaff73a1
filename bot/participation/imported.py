"""Answers gathered elsewhere, on the same form: on paper, at an event, or in KoboToolbox or ODK
with the round's XLSForm. A sheet of them (bot.participation.sheets), checked whole against
the form (bot.participation.submissions), is stored in an open round as anonymous respondents:
an invitation with no participant, completed, marked with its channel, its answers written as
the chat writes them (bot.participation.store). Nothing is stored unless every row is right,
and a submission already imported is not stored again.

Nobody is behind such an invitation, so nothing is ever sent for it: reminders, digests and
feedback go to participants, and /mydata and /forget read a person's own invitations only.
Its free texts are coded by the catch-up coder (bot.coding.stored.code_uncoded_answers),
which `consultbot answers import` runs once the rows are committed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.coding.codebook import Codebook
from bot.kernel.audit import record
from bot.participation.decide import SaveAnswer, option_codes
from bot.participation.sheets import Sheet
from bot.participation.store import write
from bot.participation.submissions import Submission, check
from storage.models import CHAT, Invitation, InvitationStatus, Round, RoundStatus

CHANNEL = re.compile(r"[a-z][a-z0-9_]{0,19}")


class ImportRefused(Exception):
    """The round or the channel cannot take the import; the text says why, for people."""


class SheetProblems(Exception):
    """The sheet does not fit the form: every problem, each with its row and column."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(f"{len(problems)} problems")
        self.problems = problems


@dataclass(frozen=True)
class Imported:
    round_id: int
    channel: str
    stored: int  # submissions stored now
    already: int  # submissions of the sheet stored by an earlier import, left alone


_NOT_OPEN = {
    RoundStatus.SCHEDULED: "has not opened yet",
    RoundStatus.CLOSED: "is closed: its figures were published when it closed and stay as "
    "they were",
    RoundStatus.CANCELLED: "was cancelled",
}


def import_answers(
    session: Session,
    round_id: int,
    sheet: Sheet,
    *,
    channel: str | None,
    now: datetime,
    text_limit: int,
) -> Imported:
    """Check `sheet` against round `round_id`'s form and store its submissions not stored
    before, in the caller's transaction. `channel`: where the answers were gathered (paper,
    event, kobo, odk...); None: kobo or odk when the file carries their instance ids, else
    paper. Raises ImportRefused or SheetProblems, having stored nothing."""
    if channel is not None and (not CHANNEL.fullmatch(channel) or channel == CHAT):
        raise ImportRefused(
            f"--channel {channel!r}: a word of lowercase letters, digits and '_' (at most 20), "
            f"such as paper, event, kobo or odk; not {CHAT}, which is the bot's own"
        )
    round_ = session.get(Round, round_id)
    if round_ is None:
        raise ImportRefused(f"no round {round_id}: see consultbot rounds list")
    if round_.status != RoundStatus.OPEN:
        raise ImportRefused(
            f"round {round_id} {_NOT_OPEN[round_.status]}: answers are imported into an open round"
        )
    checked = check(sheet, round_.consultation.questions, text_limit=text_limit)
    if checked.problems:
        raise SheetProblems(checked.problems)
    channel = channel or checked.channel
    stored_before = _stored(session, round_id, [s.key for s in checked.submissions])
    new = [s for s in checked.submissions if s.key not in stored_before]
    _store(session, round_id, new, channel, now)
    result = Imported(round_id, channel, len(new), len(checked.submissions) - len(new))
    record(
        session,
        "answers.import",
        subject=("round", round_id),
        details={
            "channel": channel,
            "stored": result.stored,
            "already": result.already,
            "file_sha256": sheet.content_hash,
        },
    )
    return result


def _stored(session: Session, round_id: int, keys: list[str]) -> set[str]:
    """Which of `keys` the round already holds."""
    found: set[str] = set()
    for start in range(0, len(keys), 500):
        found.update(
            session.scalars(
                select(Invitation.submission_key).where(
                    Invitation.round_id == round_id,
                    Invitation.submission_key.in_(keys[start : start + 500]),
                )
            )
        )
    return found


def _store(
    session: Session, round_id: int, submissions: list[Submission], channel: str, now: datetime
) -> None:
    """One anonymous, completed invitation per submission, counted as the chat's are (invited,
    answered, finished; its segment not given), and its answers written as the chat's."""
    invitations = [
        Invitation(
            round_id=round_id,
            participant_id=None,
            status=InvitationStatus.COMPLETED,
            segment={},
            organisation_id=None,
            channel=channel,
            submission_key=submission.key,
            invited_at=now,
            delivered_at=now,
            started_at=now,
            completed_at=now,
        )
        for submission in submissions
    ]
    session.add_all(invitations)
    session.flush()
    effects = list(_saves(zip(invitations, submissions, strict=True), now))
    write(session.connection(), effects, _no_codebook, language=None)


def _saves(pairs: Iterable[tuple[Invitation, Submission]], now: datetime) -> Iterable[SaveAnswer]:
    for invitation, submission in pairs:
        for question, given in submission.answers:
            keys = frozenset(given.keys)
            yield SaveAnswer(
                invitation_id=invitation.id,
                question_id=question.id,
                answer_id=None,
                at=now,
                keys=given.keys,
                number=given.number,
                text=given.text,
                skipped=given.skipped,
                codes=tuple(sorted(option_codes(question, keys, given.number))),
                # Free texts are coded after the commit, a page at a time, by the catch-up
                # coder: coding thousands here would hold SQLite's one write lock meanwhile.
                recode=False,
            )


def _no_codebook() -> Codebook:  # nothing is coded as it is stored (see _saves)
    raise AssertionError("imported answers are coded after they are stored")
