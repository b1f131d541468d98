"""API key secrets: `tdg_<kind>_<43 base62 characters>` (256 bits), stored only as SHA-256."""

from __future__ import annotations

import hashlib
import secrets

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SECRET_LENGTH = 43  # 62**43 > 2**256
PREFIX = "tdg_"
DISPLAY_LENGTH = 12  # characters of the random part kept for display, e.g. `tdg_live_4fQ2…`


def generate(kind: str) -> str:
    body = "".join(secrets.choice(_ALPHABET) for _ in range(_SECRET_LENGTH))
    return f"{PREFIX}{kind}_{body}"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def display_prefix(secret: str) -> str:
    kind_part, _, body = secret[len(PREFIX) :].partition("_")
    return f"{PREFIX}{kind_part}_{body[:DISPLAY_LENGTH]}"


def looks_like_key(secret: str) -> bool:
    """A cheap shape check, so garbage never reaches the database."""
    if not secret.startswith(PREFIX) or len(secret) > 64:
        return False
    kind, sep, body = secret[len(PREFIX) :].partition("_")
    return bool(sep) and kind in ("live", "test") and len(body) == _SECRET_LENGTH
