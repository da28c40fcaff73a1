"""Settings: a TOML file plus environment variables (the environment wins).

The bot token is a secret and only ever comes from the environment (CONSULTBOT_TOKEN), so a
config file can be shared or committed without leaking it.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEFAULT_CONFIG_NAME = "config.toml"
REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_ENV = "CONSULTBOT_CONFIG"
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")


class ConfigError(Exception):
    """A problem the person running the bot can fix; shown as one line, no traceback."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TelegramSettings(_Section):
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    poll_timeout: int = Field(default=30, ge=0, le=60)
    # How long one Bot API request may take before it counts as a timeout.
    request_timeout: float = Field(default=10.0, gt=0)
    # Set to receive updates by webhook instead of long polling (see bot/webhook.py).
    webhook_url: str | None = None
    webhook_listen: str = "127.0.0.1"
    webhook_port: int = Field(default=8443, ge=1, le=65535)
    webhook_max_connections: int = Field(default=40, ge=1, le=100)
    # Webhook worker processes sharing the port; more than one wants PostgreSQL.
    workers: int = Field(default=1, ge=1, le=32)

    @field_validator("base_url", "base_file_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        try:
            parts = urlsplit(value)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
            valid = valid and (parts.port or 0) >= 0  # .port raises for a port not a number
        except ValueError:  # e.g. an unclosed [IPv6 address
            valid = False
        if not valid:
            raise ValueError("must be an http(s):// URL, like https://api.telegram.org/bot")
        return value

    @field_validator("webhook_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must be the public https:// URL Telegram will call")
        return value or None


class DatabaseSettings(_Section):
    url: str | None = None  # None: a SQLite file next to the config file


class PartnershipSettings(_Section):
    name: str = "Our local partnership"
    timezone: str = "Europe/London"
    locale: str = "en_GB"
    # The languages people may choose (a catalog under translations/ each, but for English);
    # the first is the default, said to anyone who has not chosen.
    languages: list[str] = Field(default_factory=lambda: ["en"], min_length=1)
    admins: list[int] = Field(default_factory=list)
    allow_individuals: bool = False  # may people join without an invite code?

    @field_validator("languages")
    @classmethod
    def _known_languages(cls, value: list[str]) -> list[str]:
        from bot.kernel.i18n import catalogs

        known = {"en", *catalogs()}
        unknown = [x for x in value if x not in known]
        if unknown:
            raise ValueError(
                f"no catalog for {', '.join(unknown)} (known: {', '.join(sorted(known))})"
            )
        if len(set(value)) != len(value):
            raise ValueError("a language is listed twice")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {value!r} (use a name like Europe/London)"
            ) from exc
        return value


class SendingSettings(_Section):
    rate_per_second: float = Field(default=25.0, gt=0, le=30)
    per_chat_interval: float = Field(default=1.0, ge=0)
    batch_size: int = Field(default=50, ge=1, le=1000)
    max_attempts: int = Field(default=8, ge=1)


class PrivacySettings(_Section):
    k: int = Field(default=5, ge=1)
    notice_version: str = "2026-11"
    max_text_length: int = Field(default=800, ge=50, le=4000)


class RoundSettings(_Section):
    max_rounds_per_period: int = Field(default=2, ge=1)
    period_days: int = Field(default=30, ge=1)
    tick_seconds: float = Field(default=5.0, gt=0)


class PathSettings(_Section):
    templates: Path = REPO_ROOT / "templates"
    consultations: Path = REPO_ROOT / "templates" / "consultations"
    codebook: Path | None = None  # None: the shipped barrier taxonomy


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CONSULTBOT_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    token: SecretStr | None = None
    # Telegram sends it with every webhook call; from the environment only, like the token.
    # Unset: derived from the token (bot.telegram.webhook.derived_secret).
    webhook_secret: SecretStr | None = None
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    partnership: PartnershipSettings = Field(default_factory=PartnershipSettings)
    sending: SendingSettings = Field(default_factory=SendingSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    rounds: RoundSettings = Field(default_factory=RoundSettings)
    paths: PathSettings = Field(default_factory=PathSettings)
    log_level: str = "INFO"

    @field_validator("webhook_secret")
    @classmethod
    def _telegram_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # Telegram's rule for secret_token; setWebhook would refuse anything else at start.
        if value is not None and not _SECRET_TOKEN.fullmatch(value.get_secret_value()):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    # Where the settings came from, for relative paths and messages; not a setting itself.
    config_path: Path | None = Field(default=None, exclude=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init kwargs; the environment must beat them.
        return (env_settings, init_settings)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.partnership.timezone)

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        folder = self.config_path.parent if self.config_path else Path.cwd()
        return f"sqlite:///{(folder / 'consultbot.sqlite3').resolve()}"

    def require_token(self) -> str:
        if self.token is None or not self.token.get_secret_value().strip():
            raise ConfigError(
                "no bot token: set CONSULTBOT_TOKEN to the token BotFather gave you "
                "(export CONSULTBOT_TOKEN=123456:ABC...)"
            )
        return self.token.get_secret_value().strip()


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    secrets_in_file = {"token", "webhook_secret"} & (set(data) | set(data.get("telegram", {})))
    if secrets_in_file == {"webhook_secret"}:
        raise ConfigError(
            f"{path}: the webhook secret must not be in the config file; "
            "set the CONSULTBOT_WEBHOOK_SECRET environment variable instead"
        )
    if secrets_in_file:
        raise ConfigError(
            f"{path}: the bot token must not be in the config file; "
            "set the CONSULTBOT_TOKEN environment variable instead"
        )
    return data


def _describe(error: ValidationError, source: str) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "settings"
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown setting '{where}' (see config.example.toml for every setting)"
    # Never echo the offending input: it may be a password inside a URL.
    return f"{source}: setting '{where}': {first['msg']}"


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Load settings from `path` (or $CONSULTBOT_CONFIG, or ./config.toml if it exists)."""
    if path is None and os.environ.get(CONFIG_ENV):
        path = Path(os.environ[CONFIG_ENV])
    if path is None and Path(DEFAULT_CONFIG_NAME).exists():
        path = Path(DEFAULT_CONFIG_NAME)
    data: dict[str, Any] = _read_toml(path) if path is not None else {}
    for key, value in overrides.items():
        data[key] = value
    source = str(path) if path is not None else "settings"
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
    settings.config_path = path.resolve() if path is not None else None
    if settings.config_path is not None:
        # Relative paths in a config file mean "next to this file", not "wherever I was run".
        folder = settings.config_path.parent
        for name in ("templates", "consultations", "codebook"):
            value = getattr(settings.paths, name)
            if value is not None and not value.is_absolute():
                setattr(settings.paths, name, folder / value)
    return settings
