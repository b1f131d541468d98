from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from tidings.settings import DEFAULT_DATABASE_URL, Settings, sqlite_path


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees only the TIDINGS_* variables it sets itself."""
    for name in list(os.environ):
        if name.upper().startswith("TIDINGS_"):
            monkeypatch.delenv(name)


def test_defaults() -> None:
    settings = Settings()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.is_sqlite
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.auto_migrate is True


def test_reads_tidings_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDINGS_DATABASE_URL", "postgresql+asyncpg://u:p@db:5432/tidings")
    monkeypatch.setenv("TIDINGS_DATABASE_POOL_SIZE", "25")
    monkeypatch.setenv("TIDINGS_DATABASE_ECHO", "true")
    monkeypatch.setenv("TIDINGS_AUTO_MIGRATE", "0")
    monkeypatch.setenv("TIDINGS_HOST", "192.0.2.10")
    monkeypatch.setenv("TIDINGS_PORT", "9000")
    monkeypatch.setenv("TIDINGS_LOG_LEVEL", "debug")
    monkeypatch.setenv("TIDINGS_IMPORT_BATCH_SIZE", "250")
    settings = Settings()
    assert settings.database_url == "postgresql+asyncpg://u:p@db:5432/tidings"
    assert not settings.is_sqlite
    assert settings.database_pool_size == 25
    assert settings.database_echo is True
    assert settings.auto_migrate is False
    assert (settings.host, settings.port) == ("192.0.2.10", 9000)
    assert settings.log_level == "debug"
    assert settings.import_batch_size == 250


def test_variable_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("tidings_port", "8123")
    assert Settings().port == 8123


def test_ignores_variables_without_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9999")
    monkeypatch.setenv("DATABASE_URL", "postgresql://elsewhere/db")
    monkeypatch.setenv("TIDINGS_UNKNOWN_SETTING", "x")
    settings = Settings()
    assert settings.port == 8000
    assert settings.database_url == DEFAULT_DATABASE_URL


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TIDINGS_PORT", "0"),
        ("TIDINGS_PORT", "70000"),
        ("TIDINGS_PORT", "http"),
        ("TIDINGS_DATABASE_POOL_SIZE", "0"),
        ("TIDINGS_IMPORT_BATCH_SIZE", "10001"),
        ("TIDINGS_DATABASE_ECHO", "sometimes"),
    ],
    ids=[
        "port-zero",
        "port-too-high",
        "port-not-a-number",
        "no-pool",
        "batch-too-large",
        "echo-not-a-bool",
    ],
)
def test_rejects_invalid_values(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_arguments_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDINGS_PORT", "9000")
    assert Settings(port=9001).port == 9001


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite+aiosqlite:///var/tidings.db", Path("var/tidings.db")),
        ("sqlite+aiosqlite:///tidings.db", Path("tidings.db")),
        ("sqlite+aiosqlite:////srv/tidings/data.db", Path("/srv/tidings/data.db")),
        ("sqlite:///relative.db", Path("relative.db")),
        ("sqlite+aiosqlite:///data.db?timeout=5", Path("data.db")),
        ("sqlite+aiosqlite:///:memory:", None),
        ("sqlite+aiosqlite:///:memory:?cache=shared", None),
        ("sqlite+aiosqlite://", None),
        ("postgresql+asyncpg://user:pw@localhost:5432/tidings", None),
        ("postgresql+asyncpg:///tidings", None),
    ],
    ids=[
        "default",
        "relative",
        "absolute",
        "sync-driver",
        "query-string",
        "memory",
        "memory-with-query",
        "no-path",
        "postgres",
        "postgres-socket",
    ],
)
def test_sqlite_path(url: str, path: Path | None) -> None:
    assert sqlite_path(url) == path


def test_sqlite_path_keeps_relative_paths_relative() -> None:
    path = sqlite_path("sqlite+aiosqlite:///var/tidings.db")
    assert path is not None
    assert not path.is_absolute()
