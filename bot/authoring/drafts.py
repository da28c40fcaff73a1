"""A consultation written as a spreadsheet and sent in chat: checked whole, kept as a draft,
played (bot.authoring.preview), then published or discarded by the coordinator who sent it.

The draft is the chat's one DialogState row of kind ``draft`` (kept in the database, so a
restart loses nothing): step ``ready`` while it waits, ``preview`` while it is being played.
Nothing reaches the consultations table until Publish. Callback data is ``au:<what>``; a press
is checked against the stored draft, so a stale or repeated press changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.consultations.catalogue import import_consultation
from bot.consultations.problems import ConsultationError
from bot.consultations.sets import ConsultationSet, consultation_digest_hash
from bot.consultations.xlsform import read_xlsform
from bot.kernel import audit, dialogs
from bot.kernel.reply import Button, OutgoingMessage, Reply, rows
from storage.models import Consultation, DialogState

KIND = "draft"
PREFIX = "au"
PREVIEW, PUBLISH, DISCARD = f"{PREFIX}:pv", f"{PREFIX}:pub", f"{PREFIX}:x"
# An XLSForm of twelve questions is a few tens of kilobytes; a bigger file is not one.
MAX_BYTES = 1024 * 1024
SUFFIXES = (".xlsx",)
SHOWN_PROBLEMS = 30  # a chat message holds about this many; the rest are counted


@dataclass
class Dialog(dialogs.Dialog):
    folder = "authoring"
    actor: int  # the coordinator


def upload_refused(file_name: str | None, size: int | None) -> str | None:
    """Why a sent file is not read at all (the reason's key for refused.html), or None."""
    if not (file_name or "").lower().endswith(SUFFIXES):
        return "not_xlsx"
    if size is None or size > MAX_BYTES:
        return "too_big"
    return None


def received(
    session: Session, d: Dialog, file_name: str, content: bytes, known_codes: set[str]
) -> Reply:
    """A spreadsheet sent in chat: every problem at once, or a draft waiting for a decision."""
    try:
        spec = read_xlsform(content, file_name, known_codes)
    except ConsultationError as exc:
        problems = [str(p) for p in exc.problems]
        return Reply().say(
            d.say(
                "problems",
                file=file_name,
                problems=problems[:SHOWN_PROBLEMS],
                more=len(problems) - SHOWN_PROBLEMS,
            )
        )
    dialogs.begin(session, d.chat_id, KIND, "ready", d.now, spec=spec.to_dict(), file=file_name)
    return Reply().say(draft_message(session, d, spec))


def draft_message(session: Session, d: Dialog, spec: ConsultationSet) -> OutgoingMessage:
    published = _published(session, spec)
    return OutgoingMessage(
        d.say("draft", spec=spec, published=published, clash=_clash(session, spec)),
        rows(
            [dialogs.button(d.renderer, "preview", PREVIEW)],
            [
                dialogs.button(d.renderer, "publish", PUBLISH),
                dialogs.button(d.renderer, "discard", DISCARD),
            ],
        ),
    )


def draft_of(session: Session, chat_id: int) -> tuple[DialogState, ConsultationSet] | None:
    state = dialogs.dialog_state(session, chat_id, KIND)
    if state is None:
        return None
    return state, ConsultationSet.model_validate(state.data["spec"])


def press(session: Session, d: Dialog, data: str) -> Reply:
    """Publish or Discard (Preview is bot.authoring.preview's)."""
    if data not in (PUBLISH, DISCARD):
        raise d.refuse("forged")
    draft = draft_of(session, d.chat_id)
    if draft is None:
        raise d.refuse("no_draft")
    state, spec = draft
    if data == DISCARD:
        session.delete(state)
        return Reply(edit=OutgoingMessage(d.say("discarded", spec=spec)))
    clash = _clash(session, spec)
    if clash is not None:
        raise d.refuse("same_version", spec=spec)
    row, created = import_consultation(session, spec, source=None)
    session.delete(state)
    audit.record(
        session,
        "consultation_published",
        actor=d.actor,
        subject=("consultation", row.id),
        details={"slug": spec.id, "version": spec.version, "file": state.data.get("file")},
    )
    return Reply(edit=OutgoingMessage(d.say("published", spec=spec, created=created)))


def _published(session: Session, spec: ConsultationSet) -> Consultation | None:
    """The version of this form now in use, if any."""
    return session.scalar(
        select(Consultation).where(Consultation.slug == spec.id, Consultation.retired.is_(False))
    )


def _clash(session: Session, spec: ConsultationSet) -> Consultation | None:
    """A published form with this id and version number but other content: the digest names
    the version each round asked, so two different forms may not share one."""
    digest_hash = consultation_digest_hash(spec)
    return session.scalar(
        select(Consultation).where(
            Consultation.slug == spec.id,
            Consultation.version == spec.version,
            Consultation.content_hash != digest_hash,
        )
    )


def preview_buttons(d: Dialog) -> tuple[tuple[Button, ...], ...]:
    """After a preview: play it again, publish or discard."""
    return rows(
        [dialogs.button(d.renderer, "preview_again", PREVIEW)],
        [
            dialogs.button(d.renderer, "publish", PUBLISH),
            dialogs.button(d.renderer, "discard", DISCARD),
        ],
    )
