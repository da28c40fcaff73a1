"""The commands each role sees: one list, so /help, Telegram's command menus and the role
checks agree."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from telegram import BotCommand, BotCommandScopeAllPrivateChats, BotCommandScopeChat
from telegram.error import TelegramError

from bot.kernel import i18n
from bot.kernel.render import Renderer
from storage.models import Role

log = logging.getLogger(__name__)


ROLE_RANK = {Role.MEMBER: 0, Role.LEAD: 1, Role.COORDINATOR: 2}


@dataclass(frozen=True)
class MenuCommand:
    command: str
    role: Role = Role.MEMBER  # the least role that sees it


# One place lists every command, so /help, the Telegram command menu and the role checks agree.
COMMANDS: list[MenuCommand] = [
    MenuCommand("start"),
    MenuCommand("help"),
]


def register_command(command: str, role: Role = Role.MEMBER) -> None:
    if any(entry.command == command for entry in COMMANDS):
        return
    COMMANDS.append(MenuCommand(command, role))


def commands_for(renderer: Renderer, role: Role | None) -> list[tuple[str, str]]:
    """(command, what it does) for each command `role` can use; the words from
    templates/messages/commands.txt."""
    rank = ROLE_RANK[role or Role.MEMBER]
    return [
        (entry.command, renderer.render("messages/commands.txt", command=entry.command).strip())
        for entry in COMMANDS
        if ROLE_RANK[entry.role] <= rank
    ]


async def set_command_menu(
    bot: Any, renderer: Renderer, chat_id: int | None, role: Role | None
) -> None:
    """Show each person the commands their role can use (Telegram scopes menus per chat).

    A chat's menu is in the language being spoken (the person's); the menu for everyone else
    is set once per deployment language, by Telegram's language_code (the default language's
    without one, for every other client language)."""
    if chat_id is not None:
        await _set(bot, commands_for(renderer, role), BotCommandScopeChat(chat_id), None)
        return
    for language in renderer.languages:
        with i18n.speaking(language):
            commands = commands_for(renderer, role)
        code = None if language == renderer.languages[0] else language
        await _set(bot, commands, BotCommandScopeAllPrivateChats(), code)


async def _set(bot: Any, commands: list[tuple[str, str]], scope: Any, code: str | None) -> None:
    menu = [BotCommand(name, words) for name, words in commands]
    try:
        await bot.set_my_commands(menu, scope=scope, language_code=code)
    except TelegramError as exc:  # a menu is a nicety; never fail an update over it
        log.warning("could not set the command menu (%s, %s): %s", scope.type, code, exc)
