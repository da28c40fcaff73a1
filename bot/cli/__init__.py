"""The `consultbot` command: run the bot, migrate the database, manage roles, and more.

Exit codes: 0 success, 1 the work failed, 2 a usage or configuration problem, 3 the database
could not be reached. User errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from telegram.error import InvalidToken, TelegramError

from bot.app import build_application, run_worker, worker_main
from bot.cli.answers import answers_app
from bot.cli.code import code
from bot.cli.common import EXIT_FAILED, EXIT_USAGE, CliState, UserError, state
from bot.cli.consultations import consultations_app
from bot.cli.digest import digest
from bot.cli.invites import invites_app
from bot.cli.rounds import rounds_app
from bot.demo.run import DemoError
from bot.demo.run import main as run_demo
from bot.kernel.config import ConfigError, TelegramSettings
from bot.kernel.context import AppContext
from bot.kernel.people import grant_role, list_privileged, revoke_role
from bot.telegram.client import make_bot
from bot.telegram.sender import make_sender
from bot.telegram.webhook import ALLOWED_UPDATES, derived_secret, run_workers
from storage import migrate
from storage.db import safe_url, session_scope
from storage.models import Role

log = logging.getLogger("consultbot")


app = typer.Typer(
    help="consultbot: short chat consultations for a local partnership, and the digests "
    "that show who was heard and which barriers keep the voluntary sector out.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_app = typer.Typer(help="Database schema migrations.", no_args_is_help=True)
roles_app = typer.Typer(
    help="Who is a coordinator or a voluntary sector lead.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(roles_app, name="roles")
app.add_typer(invites_app, name="invites")
app.add_typer(consultations_app, name="consultations")
app.add_typer(rounds_app, name="rounds")
app.add_typer(answers_app, name="answers")
app.command("digest")(digest)
app.command("code")(code)


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="CONSULTBOT_CONFIG",
            help="TOML settings file (default: ./config.toml if present). See config.example.toml.",
        ),
    ] = None,
    log_level: Annotated[
        str | None, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")
    ] = None,
) -> None:
    ctx.obj = CliState(config, log_level)


def check_bot_api(token: str, telegram: TelegramSettings) -> None:
    """Ask the Bot API who the bot is, once, before starting: a wrong token or base_url is
    then one line and exit 2, not PTB's traceback (whose texts carry the token)."""

    async def get_me() -> None:
        async with make_bot(token, telegram):  # initialize() asks getMe
            pass

    logging.disable(logging.CRITICAL)  # PTB logs what it fails to parse; the line below says it
    try:
        asyncio.run(get_me())
    except InvalidToken:  # Telegram's 401 or 404: a wrong token or a wrong base_url path
        raise UserError(
            f"the Bot API at {telegram.base_url} refused the bot token: "
            "check CONSULTBOT_TOKEN and telegram.base_url"
        ) from None
    except TelegramError as exc:
        reason = str(exc).replace(token, "<token>")
        raise UserError(f"cannot reach the Bot API at {telegram.base_url}: {reason}") from None
    finally:
        logging.disable(logging.NOTSET)


@app.command()
def run(ctx: typer.Context) -> None:
    """Run the bot until stopped (Ctrl+C or SIGTERM): long polling, or a webhook (with one or
    more worker processes) when telegram.webhook_url is set."""
    settings = state(ctx).settings
    token = settings.require_token()
    state(ctx).setup_logging(token)
    check_bot_api(token, settings.telegram)
    sessions = state(ctx).ready_sessions()
    log.info(
        "database %s at revision %s",
        safe_url(settings.database_url),
        migrate.current_revision(state(ctx).engine),
    )
    telegram = settings.telegram
    if telegram.webhook_url:
        # Only Telegram, told the secret by setWebhook, can post updates to us. Unless one is
        # given, it comes from the token, so every host behind the URL agrees on it.
        secret = (
            settings.webhook_secret.get_secret_value()
            if settings.webhook_secret
            else derived_secret(token)
        )
        log.info(
            "receiving updates by webhook at %s with %d worker(s)",
            telegram.webhook_url,
            telegram.workers,
        )
        if telegram.workers == 1:
            app_ctx = AppContext(settings=settings, sessions=sessions)
            asyncio.run(run_worker(app_ctx, token, secret=secret))
            return
        state(ctx).engine.dispose()  # each worker opens its own
        code = run_workers(settings, token, secret, worker_main)
        if code:
            raise typer.Exit(code)
        return
    application = build_application(AppContext(settings=settings, sessions=sessions), token)
    log.info("starting long polling against %s", telegram.base_url)
    application.run_polling(
        timeout=telegram.poll_timeout,
        allowed_updates=ALLOWED_UPDATES,
    )


@app.command()
def demo(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the database, digest files and transcript.")
    ] = Path("demo-output"),
    seed: Annotated[int, typer.Option(help="Vary the scripted answers.")] = 7,
) -> None:
    """Play a whole round locally (SQLite, a Bot API stand-in, forty scripted people).

    No Telegram account or network needed; writes the digest to --out."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # The demo ticks fast on a fake clock; a skipped overlapping tick is expected there.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    try:
        raise typer.Exit(run_demo(out, seed))
    except DemoError as exc:
        raise UserError(f"demo failed: {exc}", EXIT_FAILED) from None


@app.command()
def send(
    ctx: typer.Context,
    rate: Annotated[
        float | None,
        typer.Option(
            help="Messages a second overall (default: sending.rate_per_second; over "
            "Telegram's 30 only against a stand-in, for benchmarks)."
        ),
    ] = None,
    per_chat: Annotated[
        float | None, typer.Option(help="Seconds between two messages to one chat.")
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="Deliveries claimed at a time.")] = None,
    until_idle: Annotated[bool, typer.Option(help="Stop when nothing is due.")] = False,
) -> None:
    """Run only the outbox sender, until stopped (a deployment that sends from a process of
    its own; benchmarks; the crash test). `consultbot run` runs one itself."""
    settings = state(ctx).settings
    token = settings.require_token()
    state(ctx).setup_logging(token)
    check_bot_api(token, settings.telegram)
    sessions = state(ctx).ready_sessions()
    bot = make_bot(token, settings.telegram)
    sender = make_sender(
        sessions,
        bot,
        settings,
        poll_interval=0.2,
        rate=rate,
        per_chat_interval=per_chat,
        batch_size=batch_size,
    )

    async def run_sender() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, sender.stop)
        async with bot:
            typer.echo("sender running")
            await sender.run(until_idle=until_idle)

    asyncio.run(run_sender())
    typer.echo(f"sender stopped: sent {sender.stats.sent}, 429s {sender.stats.rate_limited}")


@db_app.command("upgrade")
def db_upgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Bring the database schema up to date (safe to run every time)."""
    engine = state(ctx).engine
    before = migrate.current_revision(engine)
    migrate.upgrade(engine, revision)
    after = migrate.current_revision(engine)
    typer.echo(
        f"database {safe_url(state(ctx).settings.database_url)}: "
        + (f"at {after}, nothing to do" if before == after else f"upgraded {before} -> {after}")
    )


@db_app.command("downgrade")
def db_downgrade(
    ctx: typer.Context,
    revision: Annotated[str, typer.Argument(help="Target revision, e.g. -1 or base.")],
) -> None:
    """Step the schema back (for rolling back a release; data in dropped tables is lost)."""
    engine = state(ctx).engine
    migrate.downgrade(engine, revision)
    typer.echo(f"database now at {migrate.current_revision(engine)}")


@db_app.command("current")
def db_current(ctx: typer.Context) -> None:
    """Show the schema revision of the database and the newest one this version knows."""
    current = migrate.current_revision(state(ctx).engine)
    head = migrate.head_revision()
    typer.echo(f"current: {current or 'empty'}; newest: {head}")
    if current != head:
        raise typer.Exit(EXIT_FAILED)


@roles_app.command("grant")
def roles_grant(
    ctx: typer.Context,
    telegram_user_id: Annotated[int, typer.Argument(help="The person's numeric Telegram id.")],
    role: Annotated[Role, typer.Argument(help="coordinator or lead.")],
) -> None:
    """Make someone a coordinator or a voluntary sector lead."""
    with session_scope(state(ctx).ready_sessions()) as session:
        grant_role(session, telegram_user_id, role)
    typer.echo(f"{telegram_user_id} is now a {role.value}")


@roles_app.command("revoke")
def roles_revoke(
    ctx: typer.Context,
    telegram_user_id: Annotated[int, typer.Argument(help="The person's numeric Telegram id.")],
) -> None:
    """Take a role away (the person stays a member)."""
    with session_scope(state(ctx).ready_sessions()) as session:
        changed = revoke_role(session, telegram_user_id)
    if not changed:
        raise UserError(f"{telegram_user_id} has no role to revoke", EXIT_FAILED)
    typer.echo(f"{telegram_user_id} is now a member")


@roles_app.command("list")
def roles_list(ctx: typer.Context) -> None:
    """List coordinators and leads (admins from the config count as coordinators)."""
    settings = state(ctx).settings
    with session_scope(state(ctx).ready_sessions()) as session:
        rows = [
            (p.telegram_user_id, p.role.value, p.display_name or "")
            for p in list_privileged(session)
        ]
    for admin in settings.partnership.admins:
        if admin not in {row[0] for row in rows}:
            rows.append((admin, "coordinator", "(admin in config)"))
    if not rows:
        typer.echo("nobody has a role yet: consultbot roles grant <telegram id> coordinator")
        return
    for user_id, role, name in rows:
        typer.echo(f"{user_id:>14}  {role:<12} {name}")


def main() -> None:
    try:
        app()
    except (ConfigError, UserError) as exc:
        typer.echo(f"consultbot: {exc}", err=True)
        sys.exit(getattr(exc, "exit_code", EXIT_USAGE))
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
