"""The key that signs links: configured, or generated once beside an SQLite database; and
the key derived from it that hashes erased people's suppressed addresses."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from tidings.settings import Settings, sqlite_path

MIN_LENGTH = 32


def load_secret(settings: Settings) -> bytes:
    """TIDINGS_SECRET_KEY if set; on SQLite a key file made on first use (mode 0600)."""
    if settings.secret_key is not None:
        value = settings.secret_key.get_secret_value().encode()
        if len(value) < MIN_LENGTH:
            raise ValueError(f"TIDINGS_SECRET_KEY must be at least {MIN_LENGTH} characters")
        return value
    database = sqlite_path(settings.database_url)
    if database is None:
        raise ValueError(
            "set TIDINGS_SECRET_KEY: every process sending or serving links must share it"
        )
    path = database.parent / "secret.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_urlsafe(48))
    return path.read_bytes().strip()


def erasure_key(settings: Settings) -> bytes:
    """TIDINGS_ERASURE_KEY, else a key derived from the link secret (`suppressions.erased`
    hashes erased people's suppressed addresses under it)."""
    if settings.erasure_key is not None:
        return settings.erasure_key.get_secret_value().encode()
    return hmac.digest(load_secret(settings), b"tidings erased suppressions", hashlib.sha256)
