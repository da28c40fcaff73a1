"""Coordinators write consultations as spreadsheets: a sent .xlsx becomes a draft, which they
preview, publish or discard. Thin adapters over bot.authoring; every press is coordinator-only.

A document from anyone else goes on to the participant's handlers (which say files are not
read), so nothing here answers a member who sends a spreadsheet by mistake.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.authoring import drafts, preview
from bot.coding.stored import codebook_for
from bot.telegram.context import app_context
from bot.telegram.menus import ROLE_RANK
from bot.telegram.replies import deliver
from bot.telegram.transactions import in_session
from handlers.common import (
    acting_dialog,
    answer,
    current_role,
    dialog_text,
    require_role,
    say,
    typed,
)
from storage.models import Role

DIALOG_GROUP = -2  # after the other dialogs (-4, -3): one handler per group takes a line


def _dialog(update: Update, context: ContextTypes.DEFAULT_TYPE) -> drafts.Dialog:
    return acting_dialog(drafts.Dialog, update, context)


async def on_document(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    ctx = app_context(context)
    user, message = update.effective_user, update.effective_message
    if user is None or message is None or message.document is None:
        return
    role = await current_role(ctx, user.id)
    if role is None or ROLE_RANK[role] < ROLE_RANK[Role.COORDINATOR]:
        return  # a participant's file: the journey answers it
    document = message.document
    refused = drafts.upload_refused(document.file_name, document.file_size)
    if refused is not None:
        await deliver(update, context, say(ctx, "authoring/refused.html", reason=refused))
        raise ApplicationHandlerStop
    # Fetched before the transaction: a download holds no database connection.
    content = bytes(await (await document.get_file()).download_as_bytearray())
    name = document.file_name or "form.xlsx"
    known = {code.code for code in codebook_for(ctx.settings, ctx.loaded)}
    d = _dialog(update, context)
    await answer(
        update, context, in_session(ctx, lambda s: drafts.received(s, d, name, content, known))
    )
    raise ApplicationHandlerStop


@require_role(Role.COORDINATOR)
async def draft_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """``au:pv`` plays the draft; ``au:pub`` publishes it; ``au:x`` discards it."""
    d, data = _dialog(update, context), update.callback_query.data or ""  # type: ignore[union-attr]
    if data == drafts.PREVIEW:
        run = in_session(app_context(context), lambda s: preview.start(s, d))
    else:
        run = in_session(app_context(context), lambda s: drafts.press(s, d, data))
    await answer(update, context, run)


@require_role(Role.COORDINATOR)
async def preview_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    d, data = _dialog(update, context), update.callback_query.data or ""  # type: ignore[union-attr]
    await answer(
        update, context, in_session(app_context(context), lambda s: preview.press(s, d, data))
    )


@require_role(Role.COORDINATOR)
async def _preview_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    d, text = _dialog(update, context), typed(update.effective_message.text or "")  # type: ignore[union-attr]
    await answer(
        update, context, in_session(app_context(context), lambda s: preview.typed(s, d, text))
    )


def register(application: Application) -> None:  # type: ignore[type-arg]
    private = filters.ChatType.PRIVATE
    application.add_handler(
        MessageHandler(private & filters.Document.ALL, on_document), group=DIALOG_GROUP
    )
    application.add_handler(
        MessageHandler(
            private & filters.TEXT & ~filters.COMMAND,
            dialog_text(preview.waiting_for_text, _preview_text),
        ),
        group=DIALOG_GROUP,
    )
    application.add_handler(CallbackQueryHandler(draft_button, pattern=rf"^{drafts.PREFIX}:"))
    application.add_handler(CallbackQueryHandler(preview_button, pattern=rf"^{preview.PREFIX}:"))
