"""The database line every command prints (no database opened)."""

from __future__ import annotations

from tidings.cli_support import database_label


def test_the_database_is_named_as_written_and_without_its_password() -> None:
    assert database_label("sqlite+aiosqlite:///./var/tidings.db") == "sqlite ./var/tidings.db"
    assert database_label("sqlite+aiosqlite:////srv/t.db?mode=rw") == "sqlite /srv/t.db"
    assert database_label("sqlite+aiosqlite:///:memory:") == "sqlite in memory"
    label = database_label("postgresql+asyncpg://tidings:s3cret@db.example:5432/tidings")
    assert label == "postgresql://tidings:***@db.example:5432/tidings"
    assert "s3cret" not in label
