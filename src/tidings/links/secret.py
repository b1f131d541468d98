"""The key that signs links: the master secret (`vault/master.py`); and the key derived
from it that hashes erased people's suppressed addresses."""

from __future__ import annotations

import hashlib
import hmac

from tidings.settings import Settings
from tidings.vault.master import MIN_LENGTH, load_secret

__all__ = ["MIN_LENGTH", "erasure_key", "load_secret"]


def erasure_key(settings: Settings) -> bytes:
    """TIDINGS_ERASURE_KEY, else a key derived from the link secret (`suppressions.erased`
    hashes erased people's suppressed addresses under it)."""
    if settings.erasure_key is not None:
        return settings.erasure_key.get_secret_value().encode()
    return hmac.digest(load_secret(settings), b"tidings erased suppressions", hashlib.sha256)
