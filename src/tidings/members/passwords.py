"""Passwords: Argon2id (argon2-cffi's defaults, RFC 9106's second recommended profile),
hashed and checked in a thread so a sign-in does not stall the event loop (~50 ms of CPU).

Only the encoded hash is stored; it carries its own salt and parameters, so hashes made
under older parameters still verify after the defaults change.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from tidings.errors import InvalidInput

MIN_LENGTH = 10
MAX_LENGTH = 200  # past this, hashing is a way to spend our CPU, not a better password

_hasher = PasswordHasher()
_DUMMY = _hasher.hash("a password nobody has")
"""Checked against when the email names nobody, so that a wrong email takes as long as a
wrong password and the answer's timing tells no one which emails are members."""


def check_strength(password: str, *, field: str = "password") -> None:
    if len(password) < MIN_LENGTH:
        raise InvalidInput.field(field, f"at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise InvalidInput.field(field, f"at most {MAX_LENGTH} characters")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


def _verify(encoded: str, password: str) -> bool:
    try:
        return _hasher.verify(encoded, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify(encoded: str | None, password: str) -> bool:
    """Whether `password` matches `encoded`; None (no such member) costs the same and fails."""
    if len(password) > MAX_LENGTH:
        return False
    matches = await asyncio.to_thread(_verify, encoded or _DUMMY, password)
    return matches and encoded is not None
