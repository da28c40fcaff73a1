"""Compiles a Digest (plain data) for a round, or for a period across rounds.

Everything is counted in SQL with GROUP BY, so a digest of 100,000 answers stays fast and small;
only free texts are read into Python, in id-ordered pages, to code them and to pick quotes.

Who counts as what:
- invited: an invitation row; responded: the person answered at least one question;
  completed: they finished the round.
- a barrier's respondents: people with at least one answer carrying the code. An answer's codes
  are its OPTION and AUTO codes, unless a human reviewed it: then only its HUMAN codes count.

Privacy: no cell and no quote is drawn from fewer than k respondents (bot.digests.privacy).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    JSON,
    ColumnElement,
    Text,
    and_,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    type_coerce,
)
from sqlalchemy.orm import Session

from bot.coding.coder import Codebook, Coding, code_texts, load_codebook
from bot.digests.privacy import MERGED_LABEL, Scrubber, merge_small, shown
from bot.kernel.config import Settings
from bot.kernel.context import Loaded
from storage.models import (
    Action,
    ActionStatus,
    Answer,
    AnswerChoice,
    AnswerCode,
    AnswerReview,
    CodeSource,
    Consultation,
    Invitation,
    InvitationStatus,
    Organisation,
    Participant,
    Question,
    Round,
    RoundStatus,
)

# An AUTO row with this code marks "the coder read this answer and found nothing", so a later
# digest does not code it again. It is never counted or shown.
NO_CODE = "-"
NOT_GIVEN = "Not given"
QUOTE_MAX = 220
CODING_PAGE = 2000

DIMENSIONS: tuple[tuple[str, str], ...] = (
    ("area", "Area"),
    ("size", "Organisation size"),
    ("sector", "Sector"),
    ("answers_as", "Answering as"),
    ("kind", "Organisation type"),
)
ANSWERS_AS_LABELS = {"organisation": "An organisation", "service_user": "A service user"}


# --------------------------------------------------------------------------- plain data


@dataclass
class SegmentRow:
    label: str
    invited: int
    responded: int | None  # None: fewer than k, not shown
    completed: int | None
    rate: float | None
    merged: bool = False


@dataclass
class Dimension:
    key: str
    label: str
    rows: list[SegmentRow]
    note: str | None = None


@dataclass
class Participation:
    invited: int
    responded: int
    completed: int
    rate: float | None
    completion_rate: float | None
    dimensions: list[Dimension]
    reach_gaps: list[str]  # segments with few or no responses, in words
    organisations_without: list[str]  # named only for coordinators
    organisations_few: int  # registered organisations under k responses (all audiences)


@dataclass
class ChoiceCount:
    key: str
    label: str
    count: int
    share: float


@dataclass
class ScaleStats:
    n: int
    mean: float
    sd: float
    min: float
    max: float
    min_label: str | None = None
    max_label: str | None = None


@dataclass
class QuestionSummary:
    key: str
    text: str
    type: str
    answered: int
    skipped: int
    suppressed: bool = False
    choices: list[ChoiceCount] = field(default_factory=list)
    merged: ChoiceCount | None = None  # the "Other (merged)" cell when shown
    merged_hidden: bool = False  # some choices under k could not be shown at all
    scale: ScaleStats | None = None
    consultation: str = ""

    @property
    def visible(self) -> list[ChoiceCount]:
        """Choices somebody picked, most picked first (zeros are left out of the prose)."""
        return [c for c in self.choices if c.count]


@dataclass
class BarrierRow:
    code: str
    label: str
    family: str  # external | internal | success
    respondents: int
    share: float
    previous_share: float | None = None  # same code in the comparison round/period

    @property
    def change(self) -> float | None:
        if self.previous_share is None:
            return None
        return self.share - self.previous_share


@dataclass
class FamilyTotal:
    family: str
    label: str
    respondents: int | None
    share: float | None


@dataclass
class Barriers:
    base: int  # respondents the shares are out of
    rows: list[BarrierRow]  # barriers at or above k, most frequent first
    successes: list[BarrierRow]
    families: list[FamilyTotal]
    merged: int | None  # respondents in "Other (merged)" barriers, when at or above k
    merged_codes: int  # how many codes were merged or suppressed
    compared_with: str | None  # "round 3" / "the previous quarter"


@dataclass
class Quote:
    code: str
    label: str
    family: str
    text: str


@dataclass
class ActionItem:
    id: int
    round_id: int
    barrier_code: str | None
    barrier_label: str | None
    finding: str
    action: str
    owner: str
    due_on: date | None
    status: str
    overdue: bool
    published: bool


@dataclass
class OrganisationDetail:
    name: str
    invited: int
    responded: int | None
    completed: int | None
    barriers: list[BarrierRow]
    suppressed: bool  # fewer than k of them responded: barriers are not shown


@dataclass
class Digest:
    title: str
    partnership: str
    scope: str  # "Round 4: How well are we working with you?" or "July to September 2026"
    round_ids: list[int]
    period_start: datetime | None
    period_end: datetime | None
    generated_at: datetime
    k: int
    audience: str  # coordinator | lead
    participation: Participation
    questions: list[QuestionSummary]
    barriers: Barriers
    quotes: list[Quote]
    actions: list[ActionItem]
    organisation: OrganisationDetail | None = None
    notes: list[str] = field(default_factory=list)  # what the privacy rules held back

    @property
    def open_actions(self) -> list[ActionItem]:
        return [a for a in self.actions if a.status == ActionStatus.OPEN.value]

    @property
    def overdue_actions(self) -> list[ActionItem]:
        return [a for a in self.actions if a.overdue]

    @property
    def top_barriers(self) -> list[BarrierRow]:
        return self.barriers.rows[:3]


@dataclass(frozen=True)
class Scope:
    """What a digest covers: explicit rounds, with a label and optional period bounds."""

    round_ids: tuple[int, ...]
    label: str
    start: datetime | None = None
    end: datetime | None = None
    previous: tuple[int, ...] = ()
    previous_label: str | None = None


class DigestError(Exception):
    """A digest that cannot be made (no such round, nothing closed yet); the text is for people."""


# --------------------------------------------------------------------------- scopes


def round_scope(session: Session, round_id: int) -> Scope:
    round_ = session.get(Round, round_id)
    if round_ is None:
        raise DigestError(f"There is no round {round_id}.")
    consultation = round_.consultation
    previous = previous_round(session, round_)
    return Scope(
        round_ids=(round_.id,),
        label=f"Round {round_.id}: {consultation.title}",
        start=round_.opened_at or round_.opens_at,
        end=round_.closed_at or round_.closes_at,
        previous=(previous.id,) if previous else (),
        previous_label=f"round {previous.id}" if previous else None,
    )


def previous_round(session: Session, round_: Round) -> Round | None:
    """The previous closed round of the same consultation set (any version of it)."""
    slug = round_.consultation.slug
    moment = round_.closed_at or round_.closes_at
    return session.scalar(
        select(Round)
        .join(Consultation, Consultation.id == Round.consultation_id)
        .where(
            Consultation.slug == slug,
            Round.status == RoundStatus.CLOSED,
            Round.id != round_.id,
            func.coalesce(Round.closed_at, Round.closes_at) < moment,
        )
        .order_by(func.coalesce(Round.closed_at, Round.closes_at).desc(), Round.id.desc())
        .limit(1)
    )


def quarter_bounds(moment: datetime, zone: ZoneInfo, offset: int = 0) -> tuple[datetime, datetime]:
    """The calendar quarter holding `moment` in the partnership's zone (offset -1: the one
    before), as UTC instants [start, end)."""
    local = moment.astimezone(zone)
    index = (local.year * 4 + (local.month - 1) // 3) + offset
    year, q = divmod(index, 4)
    start = datetime(year, q * 3 + 1, 1, tzinfo=zone)
    ny, nq = divmod(index + 1, 4)
    end = datetime(ny, nq * 3 + 1, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def _closed_rounds_between(session: Session, start: datetime, end: datetime) -> list[int]:
    closed = func.coalesce(Round.closed_at, Round.closes_at)
    return list(
        session.scalars(
            select(Round.id)
            .where(Round.status == RoundStatus.CLOSED, closed >= start, closed < end)
            .order_by(Round.id)
        )
    )


def quarter_scope(session: Session, settings: Settings, moment: datetime) -> Scope:
    """Rounds that closed in the quarter holding `moment` (partnership time zone); if none has
    closed yet this quarter, the quarter before."""
    zone = settings.zone
    for offset in (0, -1):
        start, end = quarter_bounds(moment, zone, offset)
        ids = _closed_rounds_between(session, start, end)
        if ids:
            p_start, p_end = quarter_bounds(moment, zone, offset - 1)
            return Scope(
                round_ids=tuple(ids),
                label=_quarter_label(start, end, zone),
                start=start,
                end=end,
                previous=tuple(_closed_rounds_between(session, p_start, p_end)),
                previous_label="the previous quarter",
            )
    raise DigestError("No round has closed this quarter or last quarter.")


def _quarter_label(start: datetime, end: datetime, zone: ZoneInfo) -> str:
    first = start.astimezone(zone)
    last = (end - timedelta(seconds=1)).astimezone(zone)
    return f"{first:%B} to {last:%B %Y}"


# --------------------------------------------------------------------------- coding


def codebook_for(settings: Settings, loaded: Loaded | None = None) -> Codebook:
    """The codebook from settings, loaded once per process when `loaded` (ctx.loaded) is given."""
    if loaded is None:
        return load_codebook(settings.paths.codebook)
    return loaded.get(load_codebook, settings.paths.codebook)


def auto_codes(coding: Coding) -> list[tuple[str, dict[str, Any]]]:
    """The AUTO rows for one coded answer, as (code, {evidence, doubtful}); a NO_CODE marker
    when the coder found nothing, so the answer is known to be coded."""
    evidence: dict[str, str] = {}
    for ev in coding.evidence:
        if not ev.negated and ev.code not in evidence:
            evidence[ev.code] = ev.words[:300]
    return [
        (code, {"evidence": evidence.get(code), "doubtful": coding.doubtful})
        for code in coding.codes or (NO_CODE,)
    ]


def code_uncoded_answers(session: Session, round_ids: Sequence[int], codebook: Codebook) -> int:
    """Run the coder over free-text answers that have no AUTO codes yet and no human review,
    storing AUTO rows (or a NO_CODE marker), a page at a time. Returns how many were coded."""
    coded = 0
    last = 0
    has_auto = exists().where(
        AnswerCode.answer_id == Answer.id, AnswerCode.source == CodeSource.AUTO
    )
    reviewed = exists().where(AnswerReview.answer_id == Answer.id)
    while True:
        page = session.execute(
            select(Answer.id, Answer.text)
            .join(Invitation, Invitation.id == Answer.invitation_id)
            .join(Question, Question.id == Answer.question_id)
            .where(
                Invitation.round_id.in_(round_ids),
                Question.type == "text",
                Answer.skipped.is_(False),
                Answer.text.is_not(None),
                Answer.id > last,
                ~has_auto,
                ~reviewed,
            )
            .order_by(Answer.id)
            .limit(CODING_PAGE)
        ).all()
        if not page:
            return coded
        rows: list[dict[str, Any]] = []
        codings = code_texts([text or "" for _, text in page], codebook)
        for (answer_id, _), coding in zip(page, codings, strict=True):
            rows.extend(
                {"answer_id": answer_id, "code": code, "source": CodeSource.AUTO, **fields}
                for code, fields in auto_codes(coding)
            )
        session.execute(insert(AnswerCode), rows)
        coded += len(page)
        last = page[-1][0]


def counts_for_answer(
    machine: Sequence[CodeSource] = (CodeSource.OPTION, CodeSource.AUTO),
) -> ColumnElement[bool]:
    """Whether an answer_codes row counts: one of the `machine` sources on an answer no human
    reviewed, or HUMAN on one they did.

    Written as IN / NOT IN the reviewed answers (answer_reviews.answer_id is a primary key,
    never NULL, so NOT IN means what NOT EXISTS does): PostgreSQL then hashes the reviews once
    and probes that per code row, where a correlated EXISTS either side of an OR ran a subplan
    for every one of a hundred thousand rows; SQLite looks each up by primary key either way."""
    reviewed = select(AnswerReview.answer_id)
    return or_(
        and_(AnswerCode.source.in_(list(machine)), AnswerCode.answer_id.not_in(reviewed)),
        and_(AnswerCode.source == CodeSource.HUMAN, AnswerCode.answer_id.in_(reviewed)),
    )


def effective_codes(round_ids: Sequence[int]) -> Any:
    """A subquery (answer_id, invitation_id, code) of the codes that count, per the rules above."""
    return (
        select(AnswerCode.answer_id, Answer.invitation_id, AnswerCode.code)
        .join(Answer, Answer.id == AnswerCode.answer_id)
        .join(Invitation, Invitation.id == Answer.invitation_id)
        .where(
            Invitation.round_id.in_(round_ids),
            AnswerCode.code != NO_CODE,
            counts_for_answer(),
        )
        .subquery("effective")
    )


# --------------------------------------------------------------------------- compile


def compile_digest(
    session: Session,
    settings: Settings,
    scope: Scope,
    *,
    organisation_id: int | None = None,
    audience: str = "coordinator",
    codebook: Codebook | None = None,
    now: datetime | None = None,
    code_answers: bool = True,
) -> Digest:
    """The digest of `scope`. `audience` "lead" hides other organisations' names; with
    `organisation_id` the digest adds that organisation's own detail. Free texts are coded when
    they are stored (bot.participation.journey); `code_answers` only catches up on any without AUTO rows
    (imported data, or after forget_auto_codes), so a normal digest codes nothing."""
    k = settings.privacy.k
    codebook = codebook or load_codebook(settings.paths.codebook)
    now = now or datetime.now(UTC)
    ids = list(scope.round_ids)
    if code_answers:
        code_uncoded_answers(session, ids, codebook)
        if scope.previous:
            code_uncoded_answers(session, list(scope.previous), codebook)
        session.flush()
    notes: list[str] = []
    participation = _participation(session, ids, k, audience, notes)
    questions = _questions(session, ids, k, notes)
    barriers = _barriers(session, ids, k, codebook, scope, notes)
    quotes = _quotes(session, ids, k, codebook, barriers)
    organisation = (
        _organisation_detail(session, ids, k, codebook, organisation_id)
        if organisation_id is not None
        else None
    )
    actions = list_actions(session, ids, codebook=codebook, today=now.date())
    return Digest(
        title=f"{settings.partnership.name}: what we heard",
        partnership=settings.partnership.name,
        scope=scope.label,
        round_ids=ids,
        period_start=scope.start,
        period_end=scope.end,
        generated_at=now,
        k=k,
        audience=audience,
        participation=participation,
        questions=questions,
        barriers=barriers,
        quotes=quotes,
        actions=actions,
        organisation=organisation,
        notes=notes,
    )


def _on_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _flag(condition: ColumnElement[bool]) -> Any:
    return func.sum(case((condition, 1), else_=0))


def _responded() -> ColumnElement[bool]:
    return or_(
        Invitation.started_at.is_not(None),
        Invitation.completed_at.is_not(None),
        Invitation.status.in_([InvitationStatus.STARTED, InvitationStatus.COMPLETED]),
    )


def _completed() -> ColumnElement[bool]:
    return or_(
        Invitation.completed_at.is_not(None), Invitation.status == InvitationStatus.COMPLETED
    )


def _dimension_column(key: str, segment: Any) -> Any:
    """`key` of an invitation's `segment` (a JSON expression)."""
    if key == "answers_as":
        return segment["answers_as"].as_string()
    # As copied into the invitation when it was made (bot.participation.profile.segment_of), so a digest
    # counts an organisation as it was when asked; the organisation's value today only for
    # invitations made before sector and kind were copied. "" (none at the time) is not given.
    copied = segment[key].as_string()
    return func.nullif(func.coalesce(copied, getattr(Organisation, key)), "")


def _rate(part: int | None, whole: int) -> float | None:
    if part is None or whole == 0:
        return None
    return part / whole


def _participation(
    session: Session, ids: list[int], k: int, audience: str, notes: list[str]
) -> Participation:
    # The invitations are counted by organisation and segment as stored (its JSON text), and
    # only those few hundred cells have their dimensions read out of the JSON and their
    # organisation joined: reading five JSON keys out of every invitation cost more than the
    # counting. The cells are folded into the totals, each dimension and each organisation in
    # Python, instead of a query for each.
    segment_text = cast(Invitation.segment, Text)
    counted = (
        select(
            Invitation.organisation_id,
            segment_text.label("segment"),
            func.count().label("invited"),
            _flag(_responded()).label("responded"),
            _flag(_completed()).label("completed"),
        )
        .where(Invitation.round_id.in_(ids))
        .group_by(Invitation.organisation_id, segment_text)
        .subquery("counted")
    )
    # PostgreSQL reads JSON out of a json value (the text is cast back); SQLite out of text.
    if _on_postgresql(session):
        segment: Any = cast(counted.c.segment, JSON)
    else:
        segment = type_coerce(counted.c.segment, JSON)
    cells = session.execute(
        select(
            counted.c.organisation_id,
            *[_dimension_column(key, segment) for key, _ in DIMENSIONS],
            counted.c.invited,
            counted.c.responded,
            counted.c.completed,
        ).outerjoin(Organisation, Organisation.id == counted.c.organisation_id)
    ).all()
    invited = responded = completed = 0
    per_org: dict[int, int] = defaultdict(int)
    per_value: list[dict[Any, list[int]]] = [{} for _ in DIMENSIONS]
    for org, *values, n, r, c in cells:
        n, r, c = int(n), int(r or 0), int(c or 0)
        invited, responded, completed = invited + n, responded + r, completed + c
        if org is not None:
            per_org[org] += r
        for acc, value in zip(per_value, values, strict=True):
            sums = acc.setdefault(value, [0, 0, 0])
            sums[0] += n
            sums[1] += r
            sums[2] += c

    dimensions: list[Dimension] = []
    gaps: list[str] = []
    for (key, label), acc in zip(DIMENSIONS, per_value, strict=True):
        # In value order, NULL first, as a GROUP BY on SQLite returns them (ties in merging
        # small segments are broken by this order).
        raw = [
            (_segment_label(key, value), n, r, c)
            for value, (n, r, c) in sorted(
                acc.items(), key=lambda kv: (kv[0] is not None, str(kv[0] or ""))
            )
        ]
        if all(value == NOT_GIVEN for value, *_ in raw):
            continue  # nobody has this segment: leave the dimension out
        dimensions.append(_dimension(key, label, raw, k, gaps))
    if any(d.note for d in dimensions):
        notes.append(
            f"Segments with fewer than {k} people invited are merged into "
            f'"{MERGED_LABEL}"; response counts under {k} are shown as "fewer than {k}".'
        )

    # Registered organisations with few or no responses in this scope.
    org_rows = session.execute(
        select(Organisation.id, Organisation.name).order_by(Organisation.name)
    ).all()
    few = [(name, per_org.get(org, 0)) for org, name in org_rows if per_org.get(org, 0) < k]
    without = [f"{name} ({'none' if r == 0 else f'fewer than {k}'})" for name, r in few]
    return Participation(
        invited=invited,
        responded=responded,
        completed=completed,
        rate=_rate(responded, invited),
        completion_rate=_rate(completed, invited),
        dimensions=dimensions,
        reach_gaps=gaps,
        organisations_without=without if audience == "coordinator" else [],
        organisations_few=len(few),
    )


def _segment_label(key: str, value: Any) -> str:
    if value is None or str(value).strip() == "":
        return NOT_GIVEN
    text = str(value)
    if key == "answers_as":
        return ANSWERS_AS_LABELS.get(text, text.replace("_", " ").capitalize())
    return text.replace("_", " ")  # stored keys such as volunteers_only read as words


def _dimension(
    key: str, label: str, raw: list[tuple[str, int, int, int]], k: int, gaps: list[str]
) -> Dimension:
    # Fold segments with fewer than k *invited* into one cell, so a tiny group is never a row.
    merged = merge_small(raw, lambda r: r[1], k)
    rows: list[SegmentRow] = []
    cells = [(v, n, r, c, False) for v, n, r, c in merged.kept]
    if merged.merged:
        cells.append(
            (
                MERGED_LABEL,
                sum(x[1] for x in merged.merged),
                sum(x[2] for x in merged.merged),
                sum(x[3] for x in merged.merged),
                True,
            )
        )
    for value, n, r, c, is_merged in cells:
        if merged.suppressed and is_merged:
            continue
        resp = r if shown(r, k) else None
        comp = c if shown(c, k) else None
        rows.append(SegmentRow(value, n, resp, comp, _rate(resp, n), is_merged))
        if r < k and value != NOT_GIVEN:
            words = "no responses" if r == 0 else f"fewer than {k} responses"
            gaps.append(f"{label}: {value} ({words} from {n} invited)")
    rows.sort(key=lambda s: (s.merged, s.label == NOT_GIVEN, -(s.rate or 0), s.label))
    note = "Some small segments were merged." if merged.merged else None
    return Dimension(key, label, rows, note)


def _questions(session: Session, ids: list[int], k: int, notes: list[str]) -> list[QuestionSummary]:
    # Counts and scale statistics in one GROUP BY over the answers (a number counts when the
    # answer is not skipped); the questions themselves, a handful, are loaded after.
    number = case((Answer.skipped.is_(False), Answer.number))
    stats = {
        qid: row
        for qid, *row in session.execute(
            select(
                Answer.question_id,
                func.count(),
                _flag(Answer.skipped.is_(False)),
                func.count(number),
                func.avg(number),
                func.avg(number * number),
                func.min(number),
                func.max(number),
            )
            .join(Invitation, Invitation.id == Answer.invitation_id)
            .where(Invitation.round_id.in_(ids))
            .group_by(Answer.question_id)
        )
    }
    base = [
        (question, title, *stats[question.id][:2])
        for question, title in session.execute(
            select(Question, Consultation.title)
            .join(Consultation, Consultation.id == Question.consultation_id)
            .where(Question.id.in_(list(stats)))
            .order_by(Question.consultation_id, Question.position)
        )
    ]
    choice_counts: dict[int, dict[str, int]] = defaultdict(dict)
    for qid, key, n in session.execute(
        select(Answer.question_id, AnswerChoice.option_key, func.count())
        .join(Answer, Answer.id == AnswerChoice.answer_id)
        .join(Invitation, Invitation.id == Answer.invitation_id)
        .where(Invitation.round_id.in_(ids), Answer.skipped.is_(False))
        .group_by(Answer.question_id, AnswerChoice.option_key)
    ):
        choice_counts[qid][key] = int(n)
    scales: dict[int, tuple[int, float, float, float, float]] = {
        qid: (int(n), float(mean), float(mean_sq), float(lo), float(hi))
        for qid, (_, _, n, mean, mean_sq, lo, hi) in stats.items()
        if n
    }

    summaries: list[QuestionSummary] = []
    hidden_any = False
    for question, title, total, n_answered in base:
        n_answered = int(n_answered or 0)
        summary = QuestionSummary(
            key=question.key,
            text=question.text,
            type=question.type,
            answered=n_answered,
            skipped=int(total) - n_answered,
            consultation=title,
        )
        summaries.append(summary)
        if n_answered < k:
            summary.suppressed = True
            hidden_any = True
            continue
        if question.type in ("single", "multi", "yesno"):
            counts = choice_counts.get(question.id, {})
            labels = _option_labels(question)
            cells = [
                ChoiceCount(key, label, counts.get(key, 0), counts.get(key, 0) / n_answered)
                for key, label in labels.items()
            ]
            merged = merge_small(
                cells, lambda c: c.count, k, complementary=question.type != "multi"
            )
            summary.choices = sorted(merged.kept, key=lambda c: -c.count)
            if merged.merged and question.type == "multi":
                merged.merged_count = _distinct_choosers(
                    session, ids, question.id, [c.key for c in merged.merged]
                )
                merged.suppressed = merged.merged_count < k
            if merged.merged:
                if merged.suppressed:
                    summary.merged_hidden = True
                    hidden_any = True
                else:
                    summary.merged = ChoiceCount(
                        "other", MERGED_LABEL, merged.merged_count, merged.merged_count / n_answered
                    )
        elif question.type == "scale" and question.id in scales:
            n, mean, mean_sq, lo, hi = scales[question.id]
            variance = max(mean_sq - mean * mean, 0.0) * (n / (n - 1) if n > 1 else 0.0)
            spec = question.scale or {}
            summary.scale = ScaleStats(
                n=n,
                mean=mean,
                sd=math.sqrt(variance),
                min=lo,
                max=hi,
                min_label=spec.get("min_label"),
                max_label=spec.get("max_label"),
            )
    if hidden_any:
        notes.append(
            f"Questions answered by fewer than {k} people, and answer options chosen by fewer "
            f'than {k}, are merged into "{MERGED_LABEL}" or not shown.'
        )
    return summaries


def _distinct_choosers(session: Session, ids: list[int], question_id: int, keys: list[str]) -> int:
    return int(
        session.scalar(
            select(func.count(func.distinct(Answer.id)))
            .join(AnswerChoice, AnswerChoice.answer_id == Answer.id)
            .join(Invitation, Invitation.id == Answer.invitation_id)
            .where(
                Invitation.round_id.in_(ids),
                Answer.question_id == question_id,
                Answer.skipped.is_(False),
                AnswerChoice.option_key.in_(keys),
            )
        )
        or 0
    )


def _option_labels(question: Question) -> dict[str, str]:
    if question.type == "yesno":
        return {"yes": "Yes", "no": "No"}
    return {str(o["id"]): str(o.get("label", o["id"])) for o in question.options or []}


def _respondents(session: Session, ids: list[int]) -> int:
    return int(
        session.scalar(
            select(func.count(func.distinct(Answer.invitation_id)))
            .join(Invitation, Invitation.id == Answer.invitation_id)
            .where(Invitation.round_id.in_(ids), Answer.skipped.is_(False))
        )
        or 0
    )


def _code_counts(
    session: Session, ids: list[int], organisation_id: int | None = None
) -> dict[str, int]:
    eff = effective_codes(ids)
    query = select(eff.c.code, func.count(func.distinct(eff.c.invitation_id))).group_by(eff.c.code)
    if organisation_id is not None:
        query = query.join(Invitation, Invitation.id == eff.c.invitation_id).where(
            Invitation.organisation_id == organisation_id
        )
    return {code: int(n) for code, n in session.execute(query)}


def _family_of(code: Any, codebook: Codebook) -> Any:
    """The codebook family of a code column, as SQL ("unknown" for a code not in the book)."""
    families: dict[str, list[str]] = defaultdict(list)
    for c in codebook.codes:
        families[c.family].append(c.code)
    return case(
        *[(code.in_(codes), literal(name)) for name, codes in families.items()],
        else_=literal("unknown"),
    )


def _code_and_family_counts(
    session: Session, ids: list[int], codebook: Codebook
) -> tuple[dict[str, int], dict[str, int]]:
    """Respondents per code and per family in one statement, each person counted once per code
    and once per family however many of their answers carry it.

    PostgreSQL groups the code rows by (person, code) and by (person, family) in one pass with
    GROUPING SETS, and counts the groups; a materialized set of pairs read twice cost it a
    spilled hash of the pairs, a second scan and a sort for COUNT(DISTINCT). SQLite has no
    GROUPING SETS: there the (person, code) pairs are worked out once (a MATERIALIZED CTE,
    SQLite 3.35+) and both GROUP BYs read them."""
    eff = effective_codes(ids)
    counts: dict[str, int] = {}
    fam: dict[str, int] = {}
    if _on_postgresql(session):
        family = _family_of(eff.c.code, codebook).label("family")
        groups = (
            select(
                func.grouping(eff.c.code).label("by_family"),  # 0: a (person, code) group
                eff.c.code,
                family,
            )
            .group_by(
                func.grouping_sets(
                    tuple_(eff.c.invitation_id, eff.c.code),
                    tuple_(eff.c.invitation_id, family),
                )
            )
            .subquery("groups")
        )
        for by_family, code, name, n in session.execute(
            select(groups.c.by_family, groups.c.code, groups.c.family, func.count()).group_by(
                groups.c.by_family, groups.c.code, groups.c.family
            )
        ):
            if by_family:
                fam[name] = int(n)
            else:
                counts[code] = int(n)
        return counts, fam
    pairs = (
        select(eff.c.invitation_id, eff.c.code).distinct().cte("pairs").prefix_with("MATERIALIZED")
    )
    family = _family_of(pairs.c.code, codebook)
    by_code = select(
        literal("code").label("kind"), pairs.c.code.label("key"), func.count()
    ).group_by(pairs.c.code)
    by_family = select(
        literal("family").label("kind"),
        family.label("key"),
        func.count(func.distinct(pairs.c.invitation_id)),
    ).group_by(family)
    for kind, key, n in session.execute(by_code.union_all(by_family)):
        (counts if kind == "code" else fam)[key] = int(n)
    return counts, fam


FAMILY_LABELS = {
    "external": "External: how public bodies work with the sector",
    "internal": "Internal: the organisation's own means",
    "success": "What helps (success factors)",
}


def _rows_for(
    counts: dict[str, int], base: int, codebook: Codebook
) -> tuple[list[BarrierRow], list[BarrierRow]]:
    barriers: list[BarrierRow] = []
    successes: list[BarrierRow] = []
    for code, n in counts.items():
        if code not in codebook:
            continue
        entry = codebook[code]
        row = BarrierRow(code, entry.label, entry.family, n, n / base if base else 0.0)
        (successes if entry.family == "success" else barriers).append(row)
    return barriers, successes


def _barriers(
    session: Session, ids: list[int], k: int, codebook: Codebook, scope: Scope, notes: list[str]
) -> Barriers:
    base = _respondents(session, ids)
    counts, fam = _code_and_family_counts(session, ids, codebook)
    barriers, successes = _rows_for(counts, base, codebook)
    p_base = _respondents(session, list(scope.previous)) if scope.previous else 0
    p_counts = _code_counts(session, list(scope.previous)) if p_base >= k else {}
    merged_b = merge_small(barriers, lambda r: r.respondents, k, complementary=False)
    merged_s = merge_small(successes, lambda r: r.respondents, k, complementary=False)
    if p_base >= k:
        for row in merged_b.kept + merged_s.kept:
            # Only compare with a previous cell that could itself be shown (zero or k and up).
            n = p_counts.get(row.code, 0)
            row.previous_share = n / p_base if shown(n, k) else None
    families = []
    for name in ("external", "internal", "success"):
        n = fam.get(name, 0)
        ok = shown(n, k)
        families.append(
            FamilyTotal(
                name, FAMILY_LABELS[name], n if ok else None, n / base if ok and base else None
            )
        )
    merged_count = None
    if merged_b.merged:
        # Count people, not mentions: one person naming three rare barriers is still one.
        eff = effective_codes(ids)
        distinct = int(
            session.scalar(
                select(func.count(func.distinct(eff.c.invitation_id))).where(
                    eff.c.code.in_([r.code for r in merged_b.merged])
                )
            )
            or 0
        )
        merged_count = distinct if distinct >= k else None
    merged_codes = len(merged_b.merged) + len(merged_s.merged)
    if merged_codes:
        notes.append(
            f"Barriers and success factors named by fewer than {k} people are merged into "
            f'"{MERGED_LABEL}" or not shown.'
        )
    return Barriers(
        base=base,
        rows=sorted(merged_b.kept, key=lambda r: (-r.respondents, r.code)),
        successes=sorted(merged_s.kept, key=lambda r: (-r.respondents, r.code)),
        families=families,
        merged=merged_count,
        merged_codes=merged_codes,
        compared_with=scope.previous_label if p_base >= k else None,
    )


def known_names(session: Session) -> list[str]:
    names = list(
        session.scalars(
            select(Participant.display_name).where(Participant.display_name.is_not(None))
        )
    )
    names += list(session.scalars(select(Organisation.name)))
    return [n for n in names if n]


def _quotes(
    session: Session, ids: list[int], k: int, codebook: Codebook, barriers: Barriers
) -> list[Quote]:
    """Up to two short quotes per code shown (a code under k has no row, so no quote)."""
    rows = barriers.rows + barriers.successes
    if not rows:
        return []
    scrubber = Scrubber(known_names(session))
    chosen = _quote_candidates(session, ids, sorted({row.code for row in rows}))
    quotes: list[Quote] = []
    used: set[str] = set()  # a quote already shown under another code is a last resort
    for row in rows:
        candidates = chosen.get(row.code, [])
        fresh: list[str] = []
        reused: list[str] = []
        for text in candidates:
            clean = scrubber(text or "")
            if len(clean) > QUOTE_MAX:
                clean = clean[: QUOTE_MAX - 1].rsplit(" ", 1)[0] + "…"
            if len(clean) < 20 or clean in fresh or clean in reused:
                continue
            (reused if clean in used else fresh).append(clean)
        picked = (fresh + reused)[:2]
        used.update(picked)
        quotes.extend(Quote(row.code, row.label, row.family, q) for q in picked)
    return quotes


QUOTES_PER_CODE = 12  # candidates read per code; two are shown


def _quote_candidates(
    session: Session, ids: list[int], wanted: list[str]
) -> dict[str, list[str | None]]:
    """Per wanted code, up to QUOTES_PER_CODE coded free texts of 25 to 400
    characters: focused answers first (fewest codes that count), then those nearest a readable
    length. Chosen in SQL with window functions, so no text and no per-answer row is read into
    Python but the dozen per code. The codes that count: AUTO ones, or HUMAN once reviewed."""
    length = func.length(Answer.text)
    coded = (
        select(
            AnswerCode.answer_id,
            AnswerCode.code,
            length.label("length"),
            func.count().over(partition_by=AnswerCode.answer_id).label("codes"),
        )
        .join(Answer, Answer.id == AnswerCode.answer_id)
        .join(Invitation, Invitation.id == Answer.invitation_id)
        .join(Question, Question.id == Answer.question_id)
        .where(
            Invitation.round_id.in_(ids),
            Question.type == "text",
            Answer.text.is_not(None),
            AnswerCode.code != NO_CODE,
            counts_for_answer([CodeSource.AUTO]),
        )
        .subquery("coded")
    )
    ranked = (
        select(
            coded.c.answer_id,
            coded.c.code,
            func.row_number()
            .over(
                partition_by=coded.c.code,
                order_by=(
                    coded.c.codes,
                    func.abs(coded.c.length - 110),
                    coded.c.answer_id,
                ),
            )
            .label("rank"),
        )
        .where(coded.c.code.in_(wanted), coded.c.length.between(25, 400))
        .subquery("ranked")
    )
    chosen: dict[str, list[str | None]] = defaultdict(list)
    for code, text in session.execute(
        select(ranked.c.code, Answer.text)
        .join(Answer, Answer.id == ranked.c.answer_id)
        .where(ranked.c.rank <= QUOTES_PER_CODE)
        .order_by(ranked.c.code, ranked.c.rank)
    ):
        chosen[code].append(text)
    return chosen


def _organisation_detail(
    session: Session, ids: list[int], k: int, codebook: Codebook, organisation_id: int
) -> OrganisationDetail | None:
    organisation = session.get(Organisation, organisation_id)
    if organisation is None:
        return None
    invited, responded, completed = session.execute(
        select(func.count(), _flag(_responded()), _flag(_completed())).where(
            Invitation.round_id.in_(ids), Invitation.organisation_id == organisation_id
        )
    ).one()
    invited, responded, completed = int(invited), int(responded or 0), int(completed or 0)
    base = int(
        session.scalar(
            select(func.count(func.distinct(Answer.invitation_id)))
            .join(Invitation, Invitation.id == Answer.invitation_id)
            .where(
                Invitation.round_id.in_(ids),
                Invitation.organisation_id == organisation_id,
                Answer.skipped.is_(False),
            )
        )
        or 0
    )
    suppressed = base < k
    rows: list[BarrierRow] = []
    if not suppressed:
        counts = _code_counts(session, ids, organisation_id)
        barriers, _ = _rows_for(counts, base, codebook)
        rows = sorted(
            merge_small(barriers, lambda r: r.respondents, k, complementary=False).kept,
            key=lambda r: (-r.respondents, r.code),
        )
    return OrganisationDetail(
        name=organisation.name,
        invited=invited,
        responded=responded if shown(responded, k) else None,
        completed=completed if shown(completed, k) else None,
        barriers=rows,
        suppressed=suppressed,
    )


# --------------------------------------------------------------------------- actions


def list_actions(
    session: Session,
    round_ids: Iterable[int],
    *,
    codebook: Codebook | None = None,
    today: date | None = None,
) -> list[ActionItem]:
    today = today or datetime.now(UTC).date()
    items = []
    for a in session.scalars(
        select(Action).where(Action.round_id.in_(list(round_ids))).order_by(Action.id)
    ):
        label = None
        if a.barrier_code and codebook is not None and a.barrier_code in codebook:
            label = codebook[a.barrier_code].label
        items.append(
            ActionItem(
                id=a.id,
                round_id=a.round_id,
                barrier_code=a.barrier_code,
                barrier_label=label,
                finding=a.finding,
                action=a.action,
                owner=a.owner,
                due_on=a.due_on,
                status=a.status.value,
                overdue=a.status == ActionStatus.OPEN and a.due_on is not None and a.due_on < today,
                published=a.published_at is not None,
            )
        )
    return items


def forget_auto_codes(session: Session, round_ids: Sequence[int]) -> None:
    """Drop the coder's rows on unreviewed answers of these rounds (`digest --recode`, after the
    codebook changed), so the digest's catch-up pass codes them again with the codebook now."""
    reviewed = exists().where(AnswerReview.answer_id == AnswerCode.answer_id)
    answers = (
        select(Answer.id)
        .join(Invitation, Invitation.id == Answer.invitation_id)
        .where(Invitation.round_id.in_(list(round_ids)))
    )
    session.execute(
        delete(AnswerCode).where(
            AnswerCode.source == CodeSource.AUTO, AnswerCode.answer_id.in_(answers), ~reviewed
        )
    )


def clear_auto_codes(session: Session, answer_ids: Sequence[int]) -> None:
    """Forget machine codes (e.g. after the codebook changed) so the next digest codes again."""
    session.execute(
        delete(AnswerCode).where(
            AnswerCode.answer_id.in_(answer_ids), AnswerCode.source == CodeSource.AUTO
        )
    )
