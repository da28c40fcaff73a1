"""Settings: file plus environment, environment wins, errors are one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.kernel.config import ConfigError, load_settings
from bot.kernel.logs import RedactToken

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(body)
    return path


def test_example_config_is_valid_and_documents_every_section() -> None:
    settings = load_settings(EXAMPLE)
    text = EXAMPLE.read_text()
    for section in ("telegram", "database", "partnership", "sending", "privacy", "rounds"):
        assert f"[{section}]" in text
    assert settings.privacy.k == 5
    assert settings.partnership.timezone == "Europe/London"


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(None)
    assert settings.database_url == f"sqlite:///{tmp_path.resolve() / 'consultbot.sqlite3'}"
    assert settings.sending.rate_per_second == 25
    assert settings.token is None


def test_sqlite_default_sits_next_to_the_config_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[partnership]\nname = "Northshire"\n')
    settings = load_settings(path)
    assert settings.database_url.endswith(str(tmp_path.resolve() / "consultbot.sqlite3"))
    assert settings.partnership.name == "Northshire"


def test_environment_beats_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[privacy]\nk = 7\n[partnership]\ntimezone = "Europe/Paris"\n')
    monkeypatch.setenv("CONSULTBOT_PRIVACY__K", "9")
    monkeypatch.setenv("CONSULTBOT_TOKEN", "123:abc")
    settings = load_settings(path)
    assert settings.privacy.k == 9
    assert settings.partnership.timezone == "Europe/Paris"
    assert settings.require_token() == "123:abc"
    assert "123:abc" not in repr(settings)


def test_token_in_the_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, 'token = "123:abc"\n')
    with pytest.raises(ConfigError, match="CONSULTBOT_TOKEN"):
        load_settings(path)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("colour = 'blue'\n", "unknown setting 'colour'"),
        ("[privacy]\nkay = 3\n", "unknown setting 'privacy.kay'"),
        ("[privacy]\nk = 0\n", "setting 'privacy.k'"),
        ("[partnership]\ntimezone = 'Mars/Olympus'\n", "unknown time zone"),
        ("[privacy\nk = 3\n", "not valid TOML"),
    ],
)
def test_bad_files_give_one_clear_line(tmp_path: Path, body: str, message: str) -> None:
    path = write(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        load_settings(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_missing_token_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONSULTBOT_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="set CONSULTBOT_TOKEN"):
        load_settings(write(tmp_path, "")).require_token()


def test_token_never_reaches_the_log(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    logger = logging.getLogger("redact-test")
    logger.addFilter(RedactToken("123:SECRET"))
    with caplog.at_level(logging.INFO, logger="redact-test"):
        logger.info("POST %s", "https://api.telegram.org/bot123:SECRET/getUpdates")
    assert "SECRET" not in caplog.text
    assert "<token>" in caplog.text
