"""The key that signs links: the master secret (`vault/master.py`)."""

from __future__ import annotations

from tidings.vault.master import MIN_LENGTH, load_secret

__all__ = ["MIN_LENGTH", "load_secret"]
