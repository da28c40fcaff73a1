"""The whole consultbot domain as typed SQLAlchemy 2 models.

Storage knows nothing of Telegram objects or templates: ids from Telegram are plain integers,
and what a message says is decided above this layer.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.types import UTCDateTime

# Named constraints make Alembic migrations reproducible and let SQLite batch mode find them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


def _enum(cls: type[enum.Enum]) -> Enum:
    # Store the readable value, not the Python name, and avoid native PG enum types so adding a
    # member never needs an ALTER TYPE migration.
    return Enum(
        cls,
        values_callable=lambda e: [m.value for m in e],
        native_enum=False,
        length=24,
        validate_strings=True,
    )


class Role(enum.StrEnum):
    MEMBER = "member"
    LEAD = "lead"
    COORDINATOR = "coordinator"


class ParticipantStatus(enum.StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"  # no new rounds until /resume
    STOPPED = "stopped"  # no messages at all until /start
    UNREACHABLE = "unreachable"  # Telegram said 403: blocked or deactivated


class RoundStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    OPEN = "open"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class InvitationStatus(enum.StrEnum):
    PENDING = "pending"  # written, not yet delivered
    QUEUED = "queued"  # waiting while another round is in progress for this person
    DELIVERED = "delivered"
    STARTED = "started"
    COMPLETED = "completed"
    DECLINED = "declined"
    UNREACHABLE = "unreachable"


class EventKind(enum.StrEnum):
    OPEN_ROUND = "open_round"
    REMIND = "remind"
    CLOSE_ROUND = "close_round"
    PLAN_NEXT = "plan_next"  # a recurring schedule creates its next round


class EventStatus(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # the request may have left: see the README for the policy
    SENT = "sent"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    CANCELLED = "cancelled"


class CodeSource(enum.StrEnum):
    OPTION = "option"  # carried by a choice option in the consultation set
    AUTO = "auto"  # the automatic coder
    HUMAN = "human"  # a coordinator's review; overrides the machine


class ActionStatus(enum.StrEnum):
    OPEN = "open"
    DONE = "done"
    DROPPED = "dropped"


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str | None] = mapped_column(String(60))  # charity, community group, faith group...
    area: Mapped[str | None] = mapped_column(String(60))
    size: Mapped[str | None] = mapped_column(String(30))
    sector: Mapped[str | None] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    participants: Mapped[list[Participant]] = relationship(back_populates="organisation")


class Participant(Base):
    """Someone who talks to the bot. Created when they agree to the privacy notice, or when an
    admin grants a role; nothing is kept for people who decline."""

    __tablename__ = "participants"

    id: Mapped[int] = mapped_column(primary_key=True)
    telegram_user_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    display_name: Mapped[str | None] = mapped_column(String(128))
    role: Mapped[Role] = mapped_column(_enum(Role), default=Role.MEMBER)
    status: Mapped[ParticipantStatus] = mapped_column(
        _enum(ParticipantStatus), default=ParticipantStatus.ACTIVE
    )
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="SET NULL"), index=True
    )
    group_label: Mapped[str | None] = mapped_column(String(120))  # e.g. a service-user group
    answers_as: Mapped[str | None] = mapped_column(String(30))  # organisation | service_user
    profile: Mapped[dict[str, Any]] = mapped_column(default=dict)  # segment answers
    invite_id: Mapped[int | None] = mapped_column(ForeignKey("invites.id", ondelete="SET NULL"))
    consent_at: Mapped[datetime | None]
    consent_notice_version: Mapped[str | None] = mapped_column(String(30))
    language: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    organisation: Mapped[Organisation | None] = relationship(back_populates="participants")
    invitations: Mapped[list[Invitation]] = relationship(
        back_populates="participant", cascade="all, delete-orphan", passive_deletes=True
    )


class Invite(Base):
    """A joining link: `https://t.me/<bot>?start=<code>`."""

    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="CASCADE")
    )
    group_label: Mapped[str | None] = mapped_column(String(120))
    role: Mapped[Role] = mapped_column(_enum(Role), default=Role.MEMBER)
    answers_as: Mapped[str | None] = mapped_column(String(30))
    max_uses: Mapped[int | None]
    uses: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    created_by: Mapped[int | None] = mapped_column(BigInteger)  # Telegram id or None for the CLI
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    organisation: Mapped[Organisation | None] = relationship()


class Consultation(Base):
    """One version of a consultation set. A changed file becomes a new row, so rounds that
    already ran keep the questions their answers refer to."""

    __tablename__ = "consultations"
    __table_args__ = (UniqueConstraint("slug", "content_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), index=True)
    version: Mapped[int] = mapped_column(default=1)
    title: Mapped[str] = mapped_column(String(200))
    intro: Mapped[str] = mapped_column(Text, default="")
    estimated_minutes: Mapped[int] = mapped_column(default=3)
    content_hash: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)  # the validated file, as data
    source_path: Mapped[str | None] = mapped_column(String(500))
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    retired: Mapped[bool] = mapped_column(Boolean, default=False)

    questions: Mapped[list[Question]] = relationship(
        back_populates="consultation", order_by="Question.position", cascade="all, delete-orphan"
    )


class Question(Base):
    __tablename__ = "questions"
    __table_args__ = (UniqueConstraint("consultation_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(
        ForeignKey("consultations.id", ondelete="CASCADE"), index=True
    )
    key: Mapped[str] = mapped_column(String(60))  # the stable id from the file
    position: Mapped[int]
    type: Mapped[str] = mapped_column(String(10))  # single | multi | scale | yesno | text
    text: Mapped[str] = mapped_column(Text)
    help: Mapped[str | None] = mapped_column(Text)
    required: Mapped[bool] = mapped_column(Boolean, default=True)
    options: Mapped[list[Any]] = mapped_column(default=list)  # [{id, label, codes}]
    scale: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    max_length: Mapped[int | None]
    # Question-level coding rules from the file: {"codes": [...], "codes_when": "no", ...}.
    coding: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Asked only when this condition on earlier answers holds (bot.consultations.conditions).
    relevant: Mapped[str | None] = mapped_column(Text)
    constraint_message: Mapped[str | None] = mapped_column(Text)  # said when text is too long

    consultation: Mapped[Consultation] = relationship(back_populates="questions")


class Schedule(Base):
    """A recurring consultation: each occurrence becomes a Round."""

    __tablename__ = "schedules"

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id"))
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)
    cron: Mapped[str] = mapped_column(String(120))  # crontab, read in the partnership time zone
    timezone: Mapped[str] = mapped_column(String(60))
    open_for_seconds: Mapped[int]
    remind_before_seconds: Mapped[list[Any]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    consultation: Mapped[Consultation] = relationship()


class Round(Base):
    __tablename__ = "rounds"
    __table_args__ = (UniqueConstraint("schedule_id", "opens_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultations.id"), index=True)
    schedule_id: Mapped[int | None] = mapped_column(ForeignKey("schedules.id"))
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[RoundStatus] = mapped_column(
        _enum(RoundStatus), default=RoundStatus.SCHEDULED, index=True
    )
    opens_at: Mapped[datetime]
    closes_at: Mapped[datetime]
    remind_before_seconds: Mapped[list[Any]] = mapped_column(default=list)
    opened_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The coordinator's chat message that is edited with sending progress.
    progress_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    progress_message_id: Mapped[int | None] = mapped_column(BigInteger)

    consultation: Mapped[Consultation] = relationship()
    invitations: Mapped[list[Invitation]] = relationship(back_populates="round")


CHAT = "chat"  # Invitation.channel of everyone asked by the bot


class Invitation(Base):
    """One participant's place in one round; their progress is derived from its answers.

    A submission gathered elsewhere (on paper, at an event, in KoboToolbox or ODK) and
    imported (bot.participation.imported) is an invitation with no participant: anonymous,
    completed, its `channel` saying where it came from and its `submission_key` making a
    second import of it add nothing. Nothing is ever sent for it."""

    __tablename__ = "invitations"
    __table_args__ = (
        UniqueConstraint("round_id", "participant_id"),
        UniqueConstraint("round_id", "submission_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), index=True)
    participant_id: Mapped[int | None] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    channel: Mapped[str] = mapped_column(String(20), default=CHAT, server_default=CHAT)
    # An imported submission's id: the form tool's instance id, or a hash of the file and row.
    submission_key: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[InvitationStatus] = mapped_column(
        _enum(InvitationStatus), default=InvitationStatus.PENDING, index=True
    )
    # Segment copied at invitation time so a digest counts people as they were when asked.
    segment: Mapped[dict[str, Any]] = mapped_column(default=dict)
    organisation_id: Mapped[int | None] = mapped_column(
        ForeignKey("organisations.id", ondelete="SET NULL")
    )
    invited_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    declined_at: Mapped[datetime | None]
    reminded_at: Mapped[datetime | None]
    editing_question_id: Mapped[int | None] = mapped_column(
        ForeignKey("questions.id", ondelete="SET NULL")
    )
    # The chat message that shows this person's current question (the prompt card, edited in
    # place as they answer), so a typed answer can take the buttons off it.
    prompt_message_id: Mapped[int | None] = mapped_column(BigInteger)

    round: Mapped[Round] = relationship(back_populates="invitations")
    participant: Mapped[Participant | None] = relationship(back_populates="invitations")
    answers: Mapped[list[Answer]] = relationship(
        back_populates="invitation", cascade="all, delete-orphan", passive_deletes=True
    )


class Answer(Base):
    __tablename__ = "answers"
    __table_args__ = (UniqueConstraint("invitation_id", "question_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # No index of its own: the unique constraint's index starts with it (migration 0003).
    invitation_id: Mapped[int] = mapped_column(ForeignKey("invitations.id", ondelete="CASCADE"))
    question_id: Mapped[int] = mapped_column(ForeignKey("questions.id"), index=True)
    number: Mapped[float | None] = mapped_column(Float)  # scale answers
    text: Mapped[str | None] = mapped_column(Text)  # free text, stored as given
    skipped: Mapped[bool] = mapped_column(Boolean, default=False)
    answered_at: Mapped[datetime] = mapped_column(default=utcnow)
    changed_at: Mapped[datetime | None]

    invitation: Mapped[Invitation] = relationship(back_populates="answers")
    question: Mapped[Question] = relationship()
    choices: Mapped[list[AnswerChoice]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )
    codes: Mapped[list[AnswerCode]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True
    )


class AnswerChoice(Base):
    """One chosen option (single, multi and yes/no alike), so counts are a plain GROUP BY."""

    __tablename__ = "answer_choices"

    answer_id: Mapped[int] = mapped_column(
        ForeignKey("answers.id", ondelete="CASCADE"), primary_key=True
    )
    option_key: Mapped[str] = mapped_column(String(60), primary_key=True)


class AnswerCode(Base):
    """A barrier or success code on an answer, with where it came from."""

    __tablename__ = "answer_codes"

    answer_id: Mapped[int] = mapped_column(
        ForeignKey("answers.id", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    source: Mapped[CodeSource] = mapped_column(_enum(CodeSource), primary_key=True)
    evidence: Mapped[str | None] = mapped_column(String(300))
    doubtful: Mapped[bool] = mapped_column(Boolean, default=False)
    coded_by: Mapped[int | None] = mapped_column(BigInteger)
    coded_at: Mapped[datetime] = mapped_column(default=utcnow)


class AnswerReview(Base):
    """Marks an answer whose codes a human has settled, even to 'no code'."""

    __tablename__ = "answer_reviews"

    answer_id: Mapped[int] = mapped_column(
        ForeignKey("answers.id", ondelete="CASCADE"), primary_key=True
    )
    reviewed_by: Mapped[int | None] = mapped_column(BigInteger)
    reviewed_at: Mapped[datetime] = mapped_column(default=utcnow)


class Release(Base):
    """A round's figures as published when it closed (bot.digests.published): every digest of
    the round, and every period digest that includes it, is made from these, never recounted,
    so nothing can be worked out by comparing releases made before and after an erasure."""

    __tablename__ = "releases"

    round_id: Mapped[int] = mapped_column(
        ForeignKey("rounds.id", ondelete="CASCADE"), primary_key=True
    )
    figures: Mapped[dict[str, Any]] = mapped_column(default=dict)
    published_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScheduledEvent(Base):
    """A moment in a round's life ("fires"): claimed and run by one repeating job."""

    __tablename__ = "scheduled_events"
    __table_args__ = (
        UniqueConstraint("kind", "round_id", "schedule_id", "due_at"),
        Index("ix_scheduled_events_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[EventKind] = mapped_column(_enum(EventKind))
    round_id: Mapped[int | None] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"))
    schedule_id: Mapped[int | None] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    due_at: Mapped[datetime]
    status: Mapped[EventStatus] = mapped_column(_enum(EventStatus), default=EventStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    done_at: Mapped[datetime | None]
    note: Mapped[str | None] = mapped_column(String(300))


class Delivery(Base):
    """The outbox: one message to one chat, drained by a single paced sender."""

    __tablename__ = "deliveries"
    __table_args__ = (Index("ix_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, index=True)
    participant_id: Mapped[int | None] = mapped_column(
        ForeignKey("participants.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))  # invitation, reminder, digest, feedback...
    round_id: Mapped[int | None] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"))
    invitation_id: Mapped[int | None] = mapped_column(
        ForeignKey("invitations.id", ondelete="CASCADE")
    )
    # A key that makes writing the same delivery twice impossible (e.g. "invite:12:345").
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[DeliveryStatus] = mapped_column(
        _enum(DeliveryStatus), default=DeliveryStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProcessedUpdate(Base):
    """Update ids already handled, so a duplicated update changes nothing twice."""

    __tablename__ = "processed_updates"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    processed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class InboxUpdate(Base):
    """An update the webhook acknowledged and that is not processed yet: written before
    Telegram hears 200, deleted once processed, so a process that dies holding updates loses
    none (bot.telegram.inbox)."""

    __tablename__ = "update_inbox"

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    body: Mapped[str] = mapped_column(Text)  # the update's JSON, as Telegram posted it
    owner: Mapped[int] = mapped_column(BigInteger)  # the process holding it (Inbox.owner)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)


class DialogState(Base):
    """A multi-step chat dialog (e.g. /schedule), kept in the database so any process and
    any restart can carry it on."""

    __tablename__ = "dialog_states"
    __table_args__ = (UniqueConstraint("chat_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(30))
    step: Mapped[str] = mapped_column(String(30))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Action(Base):
    """'You said, we did': what the partnership committed to after a round."""

    __tablename__ = "actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("rounds.id", ondelete="CASCADE"), index=True)
    barrier_code: Mapped[str | None] = mapped_column(String(40))
    finding: Mapped[str] = mapped_column(Text)  # "you said"
    action: Mapped[str] = mapped_column(Text)  # "we did" / "we will"
    owner: Mapped[str] = mapped_column(String(120))
    due_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[ActionStatus] = mapped_column(_enum(ActionStatus), default=ActionStatus.OPEN)
    created_by: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None]


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_telegram_id: Mapped[int | None] = mapped_column(BigInteger)  # None: CLI or scheduler
    action: Mapped[str] = mapped_column(String(60))
    subject_type: Mapped[str | None] = mapped_column(String(30))
    subject_id: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
