"""The `consultbot` command: run the bot, migrate the database, manage roles, and more.

Exit codes: 0 success, 1 the work failed, 2 a usage or configuration problem, 3 the database
could not be reached. User errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from bot.cli import rounds as cli_rounds
from bot.cli.invites import invites_app
from bot.kernel.config import ConfigError, Settings, load_settings
from bot.kernel.logs import setup_logging
from storage import migrate
from storage.db import SessionFactory, make_engine, make_session_factory, safe_url, session_scope
from storage.models import Role

log = logging.getLogger("consultbot")

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_DATABASE = 3


class UserError(Exception):
    """Something the person at the keyboard can fix; printed as one line."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class CliState:
    config_path: Path | None
    _settings: Settings | None = None
    _engine: Engine | None = None
    _sessions: SessionFactory | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = connect(self.settings.database_url)
        return self._engine

    @property
    def sessions(self) -> SessionFactory:
        if self._sessions is None:
            self._sessions = make_session_factory(self.engine)
        return self._sessions

    def ready_sessions(self) -> SessionFactory:
        """Sessions on a database that is migrated to the newest schema."""
        migrate.upgrade(self.engine)
        return self.sessions


def connect(url: str) -> Engine:
    """An engine whose database answered, or one clear line that says which one did not."""
    try:
        engine = make_engine(url)
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except (OperationalError, DBAPIError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise UserError(
            f"cannot reach the database {safe_url(url)}: {reason}", EXIT_DATABASE
        ) from None
    except Exception as exc:  # e.g. an unknown driver name in the URL
        raise UserError(f"bad database URL {safe_url(url)}: {exc}", EXIT_USAGE) from None
    return engine


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
app.add_typer(cli_rounds.consultations_app, name="consultations")
app.add_typer(cli_rounds.rounds_app, name="rounds")


def state(ctx: typer.Context) -> CliState:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliState)
    return obj


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
    ctx.obj = CliState(config)
    if log_level:
        ctx.obj._log_level = log_level  # type: ignore[attr-defined]


def _setup_logging(ctx: typer.Context, token: str | None = None) -> None:
    level = getattr(state(ctx), "_log_level", None) or state(ctx).settings.log_level
    setup_logging(level, token)


@app.command()
def run(ctx: typer.Context) -> None:
    """Run the bot until stopped (Ctrl+C or SIGTERM): long polling, or a webhook (with one or
    more worker processes) when telegram.webhook_url is set."""
    from bot.app import build_application
    from bot.kernel.context import AppContext
    from bot.telegram.jobs import use_fast_event_loop
    from bot.telegram.webhook import (
        ALLOWED_UPDATES,
        new_secret,
        run_worker,
        run_workers,
        worker_main,
    )

    settings = state(ctx).settings
    token = settings.require_token()
    _setup_logging(ctx, token)
    sessions = state(ctx).ready_sessions()
    log.info(
        "database %s at revision %s",
        safe_url(settings.database_url),
        migrate.current_revision(state(ctx).engine),
    )
    fast = use_fast_event_loop()
    telegram = settings.telegram
    if telegram.webhook_url:
        # A fresh secret per start unless one is given: only Telegram, told it by setWebhook,
        # can then post updates to us.
        secret = (
            settings.webhook_secret.get_secret_value() if settings.webhook_secret else new_secret()
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
    log.info(
        "starting long polling against %s (%s event loop)",
        telegram.base_url,
        "uvloop" if fast else "asyncio",
    )
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
    from bot.demo.run import DemoError
    from bot.demo.run import main as run

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # The demo ticks fast on a fake clock; a skipped overlapping tick is expected there.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    try:
        raise typer.Exit(run(out, seed))
    except DemoError as exc:
        raise UserError(f"demo failed: {exc}", EXIT_FAILED) from None


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
    from bot.kernel.people import grant_role

    with session_scope(state(ctx).ready_sessions()) as session:
        grant_role(session, telegram_user_id, role)
    typer.echo(f"{telegram_user_id} is now a {role.value}")


@roles_app.command("revoke")
def roles_revoke(
    ctx: typer.Context,
    telegram_user_id: Annotated[int, typer.Argument(help="The person's numeric Telegram id.")],
) -> None:
    """Take a role away (the person stays a member)."""
    from bot.kernel.people import revoke_role

    with session_scope(state(ctx).ready_sessions()) as session:
        changed = revoke_role(session, telegram_user_id)
    if not changed:
        raise UserError(f"{telegram_user_id} has no role to revoke", EXIT_FAILED)
    typer.echo(f"{telegram_user_id} is now a member")


@roles_app.command("list")
def roles_list(ctx: typer.Context) -> None:
    """List coordinators and leads (admins from the config count as coordinators)."""
    from bot.kernel.people import list_privileged

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


from bot.cli.digest import register as _register_digest  # noqa: E402

_register_digest(app, state, UserError)


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
