"""The Bot API stand-in, driven through python-telegram-bot over real HTTP.

Assertions are on what PTB sees (objects and exceptions), because the point of the
stand-in is that the bot cannot tell it from Telegram.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import aiohttp
import aiohttp.web
import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)
from telegram.ext import Application, CallbackQueryHandler, CommandHandler, ContextTypes

from standin import BotApiStandIn, FloodLimits
from standin.html import parse_html

# PTB itself warns when constructing RetryAfter with an int; that is not ours to fix here.
pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

USER = 424242
OTHER = 515151


@pytest.fixture
async def standin() -> AsyncIterator[BotApiStandIn]:
    async with BotApiStandIn() as stand_in:
        yield stand_in


@pytest.fixture
async def bot(standin: BotApiStandIn) -> AsyncIterator[Bot]:
    async with Bot(
        standin.token, base_url=standin.bot_base_url, base_file_url=standin.file_base_url
    ) as ptb_bot:
        yield ptb_bot


def _seconds(value: int | float | dt.timedelta) -> float:
    # PTB 22 gives ints (with a deprecation warning) unless PTB_TIMEDELTA is set.
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def _retry_after(exc: RetryAfter) -> float:
    return _seconds(exc.retry_after)


def keyboard(*pairs: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(t, callback_data=d)] for t, d in pairs])


# --------------------------------------------------------------------------- basics


async def test_get_me_reports_configured_identity(bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == 7000000001
    assert me.username == "consultbot_test_bot"
    assert me.first_name == "Consultbot"
    assert me.is_bot


async def test_wrong_token_and_unknown_method(standin: BotApiStandIn, bot: Bot) -> None:
    stranger = Bot("123:not-the-token", base_url=standin.bot_base_url)
    with pytest.raises(InvalidToken):
        await stranger.initialize()
    await stranger.shutdown()
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("noSuchMethod")


async def test_send_message_html_and_keyboard_read_back(standin: BotApiStandIn, bot: Bot) -> None:
    standin.send_text(USER, "hello", first_name="Ann")
    sent = await bot.send_message(
        USER,
        "<b>Welcome</b>, Ann &amp; co. <a href='https://example.org'>About</a>",
        parse_mode="HTML",
        reply_markup=keyboard(("Yes", "consent:yes"), ("No", "consent:no")),
        disable_notification=True,
    )
    # PTB sees parsed text and entities, so text_html reproduces the markup.
    assert sent.text == "Welcome, Ann & co. About"
    assert sent.text_html == (
        '<b>Welcome</b>, Ann &amp; co. <a href="https://example.org">About</a>'
    )
    assert sent.chat.id == USER
    assert sent.from_user is not None and sent.from_user.id == standin.bot_id
    assert sent.reply_markup is not None
    assert sent.reply_markup.inline_keyboard[0][0].callback_data == "consent:yes"

    stored = standin.last_message(USER)
    assert stored is not None
    assert stored.message_id == sent.message_id
    assert stored.text == "Welcome, Ann & co. About"
    assert stored.html.startswith("<b>Welcome</b>, Ann &amp; co.")
    assert [b["text"] for b in stored.buttons] == ["Yes", "No"]
    assert stored.disable_notification
    assert standin.messages(USER) == [stored]
    assert standin.stats.messages_sent == 1
    assert standin.stats.requests["sendMessage"] == 1


async def test_unknown_chat_and_reply_keyboard(standin: BotApiStandIn, bot: Bot) -> None:
    with pytest.raises(BadRequest, match="Chat not found"):
        await bot.send_message(999, "hi")
    standin.register_chat(999)
    markup = ReplyKeyboardMarkup([["Agree", "Disagree"]], one_time_keyboard=True)
    sent = await bot.send_message(999, "Choose", reply_markup=markup)
    assert sent.reply_markup is None  # reply keyboards are not part of the message
    assert standin.reply_keyboard(999) == markup.to_dict()
    standin.send_text(999, "Agree")
    assert standin.reply_keyboard(999) is None  # one-time keyboard hides after use
    await bot.send_message(999, "Again", reply_markup=ReplyKeyboardMarkup([["A"]]))
    await bot.send_message(999, "Gone", reply_markup=ReplyKeyboardRemove())
    assert standin.reply_keyboard(999) is None


async def test_validation_matches_telegram(standin: BotApiStandIn, bot: Bot) -> None:
    standin.register_chat(USER)
    await bot.send_message(USER, "x" * 4096)
    with pytest.raises(BadRequest, match="Message is too long"):
        await bot.send_message(USER, "x" * 4097)
    # The limit applies to the text after HTML parsing, not to the markup.
    await bot.send_message(USER, "<b>" + "y" * 4096 + "</b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="Message text is empty"):
        await bot.send_message(USER, "  <b> </b> ", parse_mode="HTML")
    with pytest.raises(BadRequest, match='Can\'t parse entities: unsupported start tag "div"'):
        await bot.send_message(USER, "<div>x</div>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="Can't parse entities: can't find end tag"):
        await bot.send_message(USER, "<b>open", parse_mode="HTML")
    with pytest.raises(BadRequest, match="Can't parse entities"):
        await bot.send_message(USER, "1 < 2", parse_mode="HTML")
    with pytest.raises(BadRequest, match="Button_data_invalid"):
        await bot.send_message(USER, "x", reply_markup=keyboard(("B", "d" * 65)))
    await bot.send_message(USER, "x", reply_markup=keyboard(("B", "d" * 64)))
    with pytest.raises(BadRequest, match="Message caption is too long"):
        await bot.send_document(USER, b"1", filename="a.txt", caption="c" * 1025)
    assert len(standin.messages(USER)) == 3


def test_html_parser_entities_and_offsets() -> None:
    text, entities = parse_html(
        '😀 <i>é</i> <tg-spoiler>s</tg-spoiler> <pre><code class="language-py">x</code></pre>'
        " &lt;&gt;&quot;&#65;&unknown;"
    )
    assert text == '😀 é s x <>"A&unknown;'
    # UTF-16 offsets: the emoji counts as two code units.
    assert entities == [
        {"type": "italic", "offset": 3, "length": 1},
        {"type": "spoiler", "offset": 5, "length": 1},
        {"type": "pre", "offset": 7, "length": 1, "language": "py"},
    ]


# --------------------------------------------------------------------------- edits


async def test_edit_message_text_history_and_not_modified(standin: BotApiStandIn, bot: Bot) -> None:
    standin.register_chat(USER)
    sent = await bot.send_message(USER, "Question?", reply_markup=keyboard(("A", "a")))
    with pytest.raises(BadRequest, match="Message is not modified"):
        await bot.edit_message_text(
            "Question?", USER, sent.message_id, reply_markup=keyboard(("A", "a"))
        )
    edited = await bot.edit_message_text(
        "<i>Answered</i>", USER, sent.message_id, parse_mode="HTML"
    )
    assert isinstance(edited, type(sent))
    assert edited.text == "Answered"
    assert edited.edit_date is not None
    assert edited.reply_markup is None  # omitting reply_markup drops the keyboard

    stored = standin.messages(USER)[0]
    assert stored.edited
    assert [v.text for v in stored.versions] == ["Question?", "Answered"]
    assert stored.versions[0].reply_markup is not None
    assert stored.html == "<i>Answered</i>"

    await bot.edit_message_reply_markup(USER, sent.message_id, reply_markup=keyboard(("B", "b")))
    assert standin.messages(USER)[0].buttons[0]["text"] == "B"
    with pytest.raises(BadRequest, match="Message to edit not found"):
        await bot.edit_message_text("x", USER, 9999)

    assert await bot.delete_message(USER, sent.message_id)
    assert standin.messages(USER) == []
    with pytest.raises(BadRequest, match="Message to delete not found"):
        await bot.delete_message(USER, sent.message_id)
    assert standin.stats.edits == 2


# --------------------------------------------------------------------------- updates


async def test_text_and_callback_updates_with_offsets(standin: BotApiStandIn, bot: Bot) -> None:
    standin.send_command(USER, "start", "campaign42", first_name="Ann", username="ann")
    updates = await bot.get_updates(timeout=0)
    assert len(updates) == 1
    message = updates[0].message
    assert message is not None and message.text == "/start campaign42"
    assert message.from_user is not None and message.from_user.username == "ann"
    assert message.chat.type == "private"
    assert message.entities[0].type == "bot_command" and message.entities[0].length == 6

    prompt = await bot.send_message(USER, "Consent?", reply_markup=keyboard(("Yes", "c:yes")))
    standin.press(USER, standin.last_message(USER), "Yes")  # type: ignore[arg-type]
    standin.press_button(USER, prompt.message_id, "forged:data")

    # Without an offset nothing is confirmed, so the first update comes again.
    again = await bot.get_updates()
    assert again[0].update_id == updates[0].update_id
    fresh = await bot.get_updates(offset=updates[0].update_id + 1)
    assert len(fresh) == 2
    query = fresh[0].callback_query
    assert query is not None and query.data == "c:yes"
    assert query.message is not None and query.message.message_id == prompt.message_id
    assert query.message.text == "Consent?"  # type: ignore[union-attr]
    assert fresh[1].callback_query is not None
    assert fresh[1].callback_query.data == "forged:data"

    assert await bot.answer_callback_query(query.id, text="Thanks", show_alert=True)
    with pytest.raises(BadRequest, match="Query is too old"):
        await bot.answer_callback_query(query.id)
    answer = standin.callback_answers[0]
    assert (answer.text, answer.show_alert) == ("Thanks", True)
    assert answer.message_id == prompt.message_id

    assert await bot.get_updates(offset=fresh[-1].update_id + 1) == ()
    assert standin.pending_updates == 0


async def test_long_poll_returns_as_soon_as_update_arrives(
    standin: BotApiStandIn, bot: Bot
) -> None:
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.1)
    standin.send_text(USER, "ping")
    updates = await asyncio.wait_for(poll, 2)
    assert time.monotonic() - started < 1.0
    assert updates[0].message is not None and updates[0].message.text == "ping"

    # An idle poll waits for its timeout, then returns an empty list.
    started = time.monotonic()
    assert await bot.get_updates(offset=updates[0].update_id + 1, timeout=0.3) == ()
    assert 0.25 < time.monotonic() - started < 1.5

    # As on Telegram, a newer getUpdates call (here from a second instance) terminates one
    # still waiting.
    first = asyncio.create_task(bot.get_updates(timeout=5))
    await asyncio.sleep(0.05)
    async with Bot(standin.token, base_url=standin.bot_base_url) as second_instance:
        assert await second_instance.get_updates(timeout=0.1) == ()
    with pytest.raises(Conflict, match="terminated by other getUpdates request"):
        await asyncio.wait_for(first, 2)


async def test_allowed_updates_filters_new_updates(standin: BotApiStandIn, bot: Bot) -> None:
    await bot.get_updates(allowed_updates=["callback_query"])
    standin.send_text(USER, "ignored")
    assert await bot.get_updates() == ()
    assert standin.stats.updates_dropped == 1
    await bot.get_updates(allowed_updates=[])  # back to the default set
    standin.send_text(USER, "seen")
    [update] = await bot.get_updates()
    assert update.message is not None and update.message.text == "seen"


async def test_group_messages_and_other_update_kinds(standin: BotApiStandIn, bot: Bot) -> None:
    group = -1001234567890
    standin.send_command(USER, "status", chat_id=group, chat_type="supergroup", chat_title="Hub")
    standin.send_photo(USER, b"\x89PNG\r\n\x1a\n" + b"\x00" * 8 + (64).to_bytes(4, "big") * 2)
    standin.send_sticker(USER)
    standin.send_voice(USER, duration=7)
    standin.send_location(USER, 51.5, -0.12)
    standin.send_document(USER, b"a,b\n1,2\n", "data.csv", mime_type="text/csv", caption="mine")
    updates = await bot.get_updates()
    kinds = [u.effective_message for u in updates]
    assert all(m is not None for m in kinds)
    cmd = updates[0].message
    assert cmd is not None and cmd.chat.id == group and cmd.chat.type == "supergroup"
    assert cmd.text == "/status@consultbot_test_bot"
    assert cmd.entities[0].length == len("/status@consultbot_test_bot")
    photo = updates[1].message
    assert photo is not None and photo.photo[-1].width == 64
    assert updates[2].message is not None and updates[2].message.sticker is not None
    assert updates[3].message is not None and updates[3].message.voice is not None
    assert updates[3].message.voice.mime_type == "audio/ogg"
    assert updates[4].message is not None and updates[4].message.location is not None
    doc = updates[5].message
    assert doc is not None and doc.document is not None and doc.caption == "mine"
    received = await (await doc.document.get_file()).download_as_bytearray()
    assert bytes(received) == b"a,b\n1,2\n"

    await bot.send_message(group, "Group reply")
    assert standin.last_message(group) is not None
    # Seen in a group but never opened a private chat with the bot:
    standin.send_text(OTHER, "hi all", chat_id=group, chat_type="supergroup")
    with pytest.raises(Forbidden, match="can't initiate conversation"):
        await bot.send_message(OTHER, "private hello")


async def test_webhook_blocks_get_updates(bot: Bot) -> None:
    await bot.set_webhook("https://127.0.0.1:1/hook")
    with pytest.raises(Conflict, match="webhook is active"):
        await bot.get_updates()
    info = await bot.get_webhook_info()
    assert info.url == "https://127.0.0.1:1/hook"
    await bot.delete_webhook()
    assert await bot.get_updates() == ()


async def test_webhook_delivery(standin: BotApiStandIn, bot: Bot) -> None:
    received: asyncio.Queue[tuple[str | None, dict[str, object]]] = asyncio.Queue()

    async def hook(request: aiohttp.web.Request) -> aiohttp.web.Response:
        secret = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
        await received.put((secret, await request.json()))
        return aiohttp.web.Response()

    app = aiohttp.web.Application()
    app.router.add_post("/hook", hook)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
        standin.send_text(USER, "via webhook")
        secret, update = await asyncio.wait_for(received.get(), 3)
        assert secret == "s3cret"
        assert Update.de_json(update, bot).message.text == "via webhook"  # type: ignore[union-attr]
        await bot.delete_webhook()
    finally:
        await runner.cleanup()


class _Receiver:
    """A webhook endpoint on 127.0.0.1 that records every attempt and how many overlapped."""

    def __init__(self, delay: float = 0.05, fail_first: frozenset[int] = frozenset()) -> None:
        self.delay = delay
        self.fail_first = fail_first
        """Update ids whose first attempt is answered 500."""
        self.attempts: list[tuple[int, int, int]] = []
        """(update_id, chat id, status answered), in order of arrival."""
        self.accepted: list[tuple[int, int]] = []
        """(update_id, chat id) answered 200, in order of arrival."""
        self.in_flight = 0
        self.max_in_flight = 0
        self.chat_in_flight: dict[int, int] = {}
        self.max_chat_in_flight = 0
        self.url = ""
        self._runner: aiohttp.web.AppRunner | None = None

    async def _hook(self, request: aiohttp.web.Request) -> aiohttp.web.Response:
        update = await request.json()
        update_id, chat_id = update["update_id"], update["message"]["chat"]["id"]
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.chat_in_flight[chat_id] = self.chat_in_flight.get(chat_id, 0) + 1
        self.max_chat_in_flight = max(self.max_chat_in_flight, self.chat_in_flight[chat_id])
        try:
            await asyncio.sleep(self.delay)
            seen = any(a[0] == update_id for a in self.attempts)
            status = 500 if update_id in self.fail_first and not seen else 200
            self.attempts.append((update_id, chat_id, status))
            if status == 200:
                self.accepted.append((update_id, chat_id))
            return aiohttp.web.Response(status=status)
        finally:
            self.in_flight -= 1
            self.chat_in_flight[chat_id] -= 1

    async def __aenter__(self) -> _Receiver:
        app = aiohttp.web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = aiohttp.web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await aiohttp.web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def wait_accepted(self, n: int, standin: BotApiStandIn, timeout: float = 10) -> None:
        """Until ``n`` updates were accepted and the stand-in has dequeued them all."""
        deadline = time.monotonic() + timeout
        while len(self.accepted) < n or standin.pending_updates:
            assert time.monotonic() < deadline, (
                f"{len(self.accepted)}/{n} accepted, {standin.pending_updates} pending"
            )
            await asyncio.sleep(0.01)


async def test_webhook_delivers_in_parallel_up_to_max_connections(
    standin: BotApiStandIn, bot: Bot
) -> None:
    chats = [USER + i for i in range(40)]
    sent = [standin.send_text(chat, f"hello {i}")["update_id"] for i, chat in enumerate(chats)]
    async with _Receiver(delay=0.05) as receiver:
        await bot.set_webhook(receiver.url, max_connections=8)
        info = await bot.get_webhook_info()
        assert info.max_connections == 8
        await receiver.wait_accepted(40, standin)
        assert sorted(u for u, _ in receiver.accepted) == sent
        assert 1 < receiver.max_in_flight <= 8
        assert standin.stats.updates_delivered == 40
        assert standin.stats.webhook_failures == 0

        # deleteWebhook stops delivery: a new update stays queued for getUpdates.
        await bot.delete_webhook()
        late = standin.send_text(USER, "after delete")["update_id"]
        await asyncio.sleep(0.3)
        assert len(receiver.attempts) == 40
        assert [u.update_id for u in await bot.get_updates()] == [late]


async def test_webhook_keeps_one_chat_in_order(standin: BotApiStandIn, bot: Bot) -> None:
    sent = [standin.send_text(USER, f"message {i}")["update_id"] for i in range(10)]
    async with _Receiver(delay=0.02) as receiver:
        await bot.set_webhook(receiver.url, max_connections=8)
        await receiver.wait_accepted(10, standin)
        assert [u for u, _ in receiver.accepted] == sent
        assert receiver.max_in_flight == 1 and receiver.max_chat_in_flight == 1
        await bot.delete_webhook()


async def test_webhook_retries_failures_in_chat_order(standin: BotApiStandIn, bot: Bot) -> None:
    chats = [USER, OTHER, USER + 1]
    sent: dict[int, list[int]] = {chat: [] for chat in chats}
    for i in range(5):
        for chat in chats:
            sent[chat].append(standin.send_text(chat, f"{chat} {i}")["update_id"])
    # The first update of USER, a middle one of OTHER, the last of USER + 1.
    failing = frozenset({sent[USER][0], sent[OTHER][2], sent[USER + 1][4]})
    async with _Receiver(delay=0.02, fail_first=failing) as receiver:
        await bot.set_webhook(receiver.url, max_connections=4)
        await receiver.wait_accepted(15, standin)
        for chat in chats:
            accepted = [u for u, c in receiver.accepted if c == chat]
            assert accepted == sent[chat]  # nothing lost, duplicated or reordered
            # A failed update blocks its chat: no later one of it was even attempted before.
            attempted = [u for u, c, _ in receiver.attempts if c == chat]
            assert attempted == sorted(attempted)
        assert sorted(u for u, _, status in receiver.attempts if status == 500) == sorted(failing)
        assert receiver.max_chat_in_flight == 1
        assert standin.stats.webhook_failures == 3
        info = await bot.get_webhook_info()
        assert info.last_error_message is not None and "500" in info.last_error_message
        await bot.delete_webhook()


async def test_webhook_duplicates_and_allowed_updates(standin: BotApiStandIn, bot: Bot) -> None:
    standin.duplicate_updates = True
    first = standin.send_text(USER, "twice")["update_id"]
    async with _Receiver(delay=0.01) as receiver:
        await bot.set_webhook(receiver.url, allowed_updates=["callback_query"])
        standin.send_text(OTHER, "filtered out")
        await receiver.wait_accepted(2, standin)
        assert receiver.accepted == [(first, USER), (first, USER)]
        assert standin.stats.updates_dropped == 1
        await bot.delete_webhook()


async def test_webhook_max_connections_is_validated(standin: BotApiStandIn, bot: Bot) -> None:
    for bad in (0, 101):
        with pytest.raises(BadRequest, match="max_connections must be between 1 and 100"):
            await bot.set_webhook("https://127.0.0.1:1/hook", max_connections=bad)
    assert (await bot.get_webhook_info()).url == ""
    await bot.set_webhook("https://127.0.0.1:1/hook", max_connections=100)
    assert (await bot.get_webhook_info()).max_connections == 100
    await bot.set_webhook("https://127.0.0.1:1/hook")
    assert (await bot.get_webhook_info()).max_connections == 40


async def test_stop_cancels_webhook_deliveries_in_flight() -> None:
    async with _Receiver(delay=10) as receiver, BotApiStandIn() as standin:
        for i in range(3):
            standin.send_text(USER + i, "stuck")
        async with Bot(standin.token, base_url=standin.bot_base_url) as ptb_bot:
            await ptb_bot.set_webhook(receiver.url, max_connections=2)
        deadline = time.monotonic() + 5
        while receiver.in_flight < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        started = time.monotonic()
        await standin.stop()
        assert time.monotonic() - started < 5
        assert standin.pending_updates == 3  # abandoned deliveries stay queued
        leftovers = [
            t
            for t in asyncio.all_tasks()
            if t is not asyncio.current_task()
            and any(name in repr(t.get_coro()) for name in ("_deliver", "_post_update"))
        ]
        assert leftovers == []


# --------------------------------------------------------------------------- files, commands


async def test_send_document_and_photo_bytes_round_trip(standin: BotApiStandIn, bot: Bot) -> None:
    standin.register_chat(USER)
    payload = bytes(range(256)) * 40
    sent = await bot.send_document(
        USER, payload, filename="digest.pdf", caption="<b>Digest</b>", parse_mode="HTML"
    )
    assert sent.document is not None and sent.document.file_name == "digest.pdf"
    assert sent.caption == "Digest"
    [doc] = standin.documents(USER)
    assert doc.content == payload and doc.file_name == "digest.pdf"
    assert doc.message_id == sent.message_id

    downloaded = await (await bot.get_file(sent.document.file_id)).download_as_bytearray()
    assert bytes(downloaded) == payload
    # Re-sending by file_id reuses the stored file.
    resent = await bot.send_document(USER, sent.document.file_id)
    assert resent.document is not None and resent.document.file_id == sent.document.file_id

    await bot.send_photo(USER, b"\xff\xd8\xff\xe0chart\xff\xd9", caption="chart")
    [photo] = standin.photos(USER)
    assert photo.content == b"\xff\xd8\xff\xe0chart\xff\xd9"
    assert standin.last_message(USER).caption == "chart"  # type: ignore[union-attr]


async def test_commands_are_kept_per_scope(standin: BotApiStandIn, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand("start", "Begin"), BotCommand("help", "Help")])
    await bot.set_my_commands(
        [BotCommand("digest", "Compile a digest")], scope=BotCommandScopeChat(USER)
    )
    await bot.set_my_commands([BotCommand("stop", "Leave")], scope=BotCommandScopeAllPrivateChats())
    assert [c.command for c in await bot.get_my_commands()] == ["start", "help"]
    scoped = await bot.get_my_commands(scope=BotCommandScopeChat(USER))
    assert [c.command for c in scoped] == ["digest"]
    assert standin.commands({"type": "chat", "chat_id": USER})[0]["command"] == "digest"
    assert standin.commands("all_private_chats") == [{"command": "stop", "description": "Leave"}]
    await bot.delete_my_commands(scope=BotCommandScopeChat(USER))
    assert standin.commands({"type": "chat", "chat_id": USER}) == []
    with pytest.raises(BadRequest, match="Bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Bad Command", "x")])


# --------------------------------------------------------------------------- faults


async def test_blocked_chat_is_forbidden(standin: BotApiStandIn, bot: Bot) -> None:
    standin.register_chat(USER)
    sent = await bot.send_message(USER, "first")
    standin.block_chat(USER)
    with pytest.raises(Forbidden, match="bot was blocked by the user"):
        await bot.send_message(USER, "second")
    with pytest.raises(Forbidden):
        await bot.edit_message_text("edited", USER, sent.message_id)
    standin.unblock_chat(USER)
    await bot.send_message(USER, "third")
    assert [m.text for m in standin.messages(USER)] == ["first", "third"]
    assert standin.stats.errors[403] == 2


async def test_flood_limits_per_chat_burst_and_global(standin: BotApiStandIn, bot: Bot) -> None:
    for chat in (USER, OTHER):
        standin.register_chat(chat)
    standin.flood_limits = True
    for i in range(3):  # the per-chat burst
        await bot.send_message(USER, f"burst {i}")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(USER, "one too many")
    assert _retry_after(caught.value) >= 1
    await bot.send_message(OTHER, "another chat is unaffected")
    assert standin.stats.responses_429 == 1

    # Global limit: a burst of 4 across chats, then 429 regardless of chat.
    standin.flood_limits = FloodLimits(global_rate=1, global_burst=4, chat_burst=10)
    for i in range(4):
        await bot.send_message(USER if i % 2 else OTHER, f"global {i}")
    with pytest.raises(RetryAfter):
        await bot.send_message(OTHER, "over the global limit")
    assert standin.stats.responses_429 == 2

    standin.flood_limits = FloodLimits(chat_rate=20, chat_burst=1)
    await bot.send_message(USER, "a")
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(USER, "b")
    assert _retry_after(caught.value) == 1
    await asyncio.sleep(0.06)  # the bucket refills at 20/s
    await bot.send_message(USER, "c")
    standin.flood_limits = False


async def test_duplicate_updates_are_delivered_twice(standin: BotApiStandIn, bot: Bot) -> None:
    standin.duplicate_updates = True
    standin.send_text(USER, "once")
    updates = await bot.get_updates()
    assert [u.update_id for u in updates] == [updates[0].update_id] * 2
    assert await bot.get_updates(offset=updates[0].update_id + 1) == ()


async def test_fail_next_and_slow(standin: BotApiStandIn, bot: Bot) -> None:
    standin.register_chat(USER)
    standin.fail_next(2, status=502, method="sendMessage")
    for _ in range(2):
        with pytest.raises(NetworkError, match="Bad Gateway"):
            await bot.send_message(USER, "lost")
    standin.fail_next(1)
    with pytest.raises(NetworkError, match="Internal Server Error"):
        await bot.get_me()
    await bot.send_message(USER, "delivered")
    assert standin.stats.injected_failures == 3

    standin.slow(0.5, method="sendMessage")
    with pytest.raises(TimedOut):
        await bot.send_message(USER, "slow", read_timeout=0.1)
    standin.slow(0)
    # Like a slow Telegram, the request still went through although the bot gave up.
    msg = await standin.wait_for_message(USER, predicate=lambda m: m.text == "slow", timeout=2)
    assert msg.text == "slow"


async def test_wait_for_message_timeout_lists_what_arrived(
    standin: BotApiStandIn, bot: Bot
) -> None:
    standin.send_text(USER, "hi")
    await bot.send_message(USER, "Hello there", reply_markup=keyboard(("Go", "go")))
    found = await standin.wait_for_message(USER)
    assert found.text == "Hello there"
    with pytest.raises(TimeoutError) as caught:
        await standin.wait_for_message(USER, predicate=lambda m: "bye" in m.text, timeout=0.1)
    assert "Hello there" in str(caught.value) and "Go" in str(caught.value)


# --------------------------------------------------------------------------- HTTP side door


async def test_http_side_door(standin: BotApiStandIn, bot: Bot) -> None:
    base = f"{standin.url}/_standin"
    async with aiohttp.ClientSession() as http:

        async def call(action: str, **body: object) -> object:
            async with http.post(f"{base}/{action}", json=body) as resp:
                data = await resp.json()
                assert data["ok"], data
                return data["result"]

        update = await call("send_text", user_id=USER, text="/start", first_name="Bo")
        assert isinstance(update, dict)
        assert update["message"]["entities"][0]["type"] == "bot_command"
        [received] = await bot.get_updates()
        assert received.message is not None and received.message.text == "/start"

        waiter = asyncio.create_task(
            call("wait_for_message", chat_id=USER, text_contains="Welcome", timeout=2)
        )
        await asyncio.sleep(0.05)
        sent = await bot.send_message(
            USER, "<b>Welcome</b>", parse_mode="HTML", reply_markup=keyboard(("OK", "ok"))
        )
        message = await waiter
        assert isinstance(message, dict)
        assert message["text"] == "Welcome" and message["html"] == "<b>Welcome</b>"

        await call("press", user_id=USER, message_id=sent.message_id, button_text="OK")
        [press] = await bot.get_updates(offset=received.update_id + 1)
        assert press.callback_query is not None and press.callback_query.data == "ok"

        await call(
            "send_document",
            user_id=USER,
            file_name="x.bin",
            content_b64=base64.b64encode(b"\x00\x01").decode(),
        )
        await bot.send_document(USER, b"report", filename="r.txt")
        docs = await call("documents", chat_id=USER)
        assert isinstance(docs, list) and base64.b64decode(docs[0]["content_b64"]) == b"report"

        await call("block_chat", chat_id=USER)
        with pytest.raises(Forbidden):
            await bot.send_message(USER, "blocked")
        await call("unblock_chat", chat_id=USER)
        await call("flood_limits", enabled=True, chat_burst=1)
        await bot.send_message(USER, "one")
        with pytest.raises(RetryAfter):
            await bot.send_message(USER, "two")
        await call("flood_limits", enabled=False)
        await call("fail_next", n=1, status=500)
        with pytest.raises(NetworkError):
            await bot.send_message(USER, "x")

        stats = await call("stats")
        assert isinstance(stats, dict)
        assert stats["responses_429"] == 1 and stats["requests"]["sendMessage"] >= 4
        messages = await call("messages", chat_id=USER)
        assert isinstance(messages, list) and [m["text"] for m in messages][-1] == "one"

        async with http.post(
            f"{base}/wait_for_message",
            json={"chat_id": USER, "text_contains": "never", "timeout": 0.05},
        ) as resp:
            assert resp.status == 408
            assert "Welcome" in (await resp.json())["error"]


# --------------------------------------------------------------------------- whole PTB stack


async def test_application_polling_against_standin(standin: BotApiStandIn) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        args = " ".join(context.args or [])
        await update.effective_message.reply_html(
            f"<b>Hello</b> {args}", reply_markup=keyboard(("Yes", "yes"))
        )

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("Noted")
        await query.edit_message_text(f"You chose {query.data}")

    app = (
        Application.builder()
        .token(standin.token)
        .base_url(standin.bot_base_url)
        .base_file_url(standin.file_base_url)
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(pressed))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=1)
        try:
            standin.send_command(USER, "start", "abc", first_name="Cy")
            reply = await standin.wait_for_message(USER, timeout=3)
            assert reply.text == "Hello abc"
            standin.press(USER, reply, "Yes")
            edited = await standin.wait_for_message(USER, predicate=lambda m: m.edited, timeout=3)
            assert edited.text == "You chose yes"
            assert standin.callback_answers[-1].text == "Noted"
        finally:
            await app.updater.stop()
            await app.stop()
    assert not app.running
    assert standin.pending_updates == 0  # PTB confirmed everything on the way out


@pytest.mark.slow
async def test_standalone_server_runs_and_stops_by_itself() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "standin",
        "--port",
        "0",
        "--token",
        "1:T",
        "--lifetime",
        "5",
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        first = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        url = first.rsplit(" ", 1)[-1].strip()
        assert url.startswith("http://127.0.0.1:")
        async with Bot("1:T", base_url=f"{url}/bot") as standalone:
            assert standalone.id == 1
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 5) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
