"""Sealing secrets at rest: AES-256-GCM under versioned keys.

A sealed value is one line of text:

    enc:<version>:<base64url(nonce ‖ ciphertext ‖ tag)>

The newest key of the keyring seals; every key of the keyring opens what it sealed. The
associated data is the version and the value's purpose (its `table.column`), so a value
tampered with, opened under another key, or copied into another column is refused
(`SecretError`), never read as something else.

Keys come from `TIDINGS_SECRET_KEYS`, newest first: `v2:<base64 of 32 bytes>,v1:<…>`.
A key written `derived` is derived (HKDF-SHA256) from the master secret
(`TIDINGS_SECRET_KEY`, or the `secret.key` file made beside an SQLite database): unset,
the keyring is `v0:derived`, so a fresh install seals with no configuration, and an
operator moves to keys of their own with `v1:<new>,v0:derived`, `tidings secrets rotate`,
then `v1:<new>` alone. See docs/security.md.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tidings.settings import Settings
from tidings.vault.master import load_secret

PREFIX: Final = "enc:"
KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
DERIVED: Final = "derived"
DEFAULT_KEYS: Final = f"v0:{DERIVED}"
_VERSION = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
_HKDF_INFO: Final = b"tidings secrets at rest v0"


class SecretError(ValueError):
    """A sealed value that none of the keys opens: a wrong or missing key, or a value
    tampered with. Never says more (no value, no key)."""


@dataclass(frozen=True, slots=True)
class Keyring:
    """Keys by version, newest (the one that seals) first."""

    keys: tuple[tuple[str, bytes], ...] = field(repr=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise ValueError("a keyring needs at least one key")
        versions = [version for version, _ in self.keys]
        if len(set(versions)) != len(versions):
            raise ValueError("each key version may appear once")

    @property
    def current(self) -> str:
        """The version that seals."""
        return self.keys[0][0]

    @property
    def versions(self) -> list[str]:
        return [version for version, _ in self.keys]

    def seal(self, plaintext: str, purpose: str) -> str:
        version, key = self.keys[0]
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), _aad(version, purpose))
        return f"{PREFIX}{version}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, value: str, purpose: str) -> str:
        """The plaintext of a sealed value (SecretError if no key opens it)."""
        if not is_sealed(value):
            raise SecretError(f"a {purpose} is not sealed")
        version, _, payload = value.removeprefix(PREFIX).partition(":")
        key = dict(self.keys).get(version)
        if key is None:
            raise SecretError(f"no key of version {version!r} in TIDINGS_SECRET_KEYS")
        try:
            raw = base64.b64decode(payload, altchars=b"-_", validate=True)
            nonce, sealed = raw[:NONCE_BYTES], raw[NONCE_BYTES:]
            opened = AESGCM(key).decrypt(nonce, sealed, _aad(version, purpose))
        except (InvalidTag, binascii.Error, ValueError):
            raise SecretError(
                f"a sealed {purpose} does not open: tampered with, or sealed under another key"
            ) from None
        return opened.decode()

    def is_current(self, value: str) -> bool:
        """Whether `value` is sealed under the newest key (nothing to rotate)."""
        return version_of(value) == self.current


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX)


def version_of(value: str) -> str | None:
    """The key version a value was sealed under; None for plaintext (written before
    secrets were sealed, until `seal_plaintext` or a rotation passes)."""
    if not is_sealed(value):
        return None
    return value.removeprefix(PREFIX).partition(":")[0]


def _aad(version: str, purpose: str) -> bytes:
    return f"{version}\x00{purpose}".encode()


def new_key() -> str:
    """A fresh key, as TIDINGS_SECRET_KEYS writes it (base64 of 32 random bytes)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def derive(master: bytes) -> bytes:
    """The `derived` key: HKDF-SHA256 of the master secret."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=_HKDF_INFO)
    return hkdf.derive(master)


def parse(text: str, master: Callable[[], bytes]) -> Keyring:
    """A keyring from `TIDINGS_SECRET_KEYS`' syntax; `master` is read only when a key is
    `derived`. ValueError naming the faulty entry (never its key)."""
    keys: list[tuple[str, bytes]] = []
    for at, entry in enumerate(part.strip() for part in text.split(",")):
        version, sep, encoded = entry.partition(":")
        if not sep or not _VERSION.match(version):
            raise ValueError(
                f"TIDINGS_SECRET_KEYS entry {at + 1}: write <version>:<base64 key>, the "
                "version 1-16 of A-Z a-z 0-9 _ -"
            )
        if encoded == DERIVED:
            keys.append((version, derive(master())))
            continue
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            key = b""
        if len(key) != KEY_BYTES:
            raise ValueError(
                f"TIDINGS_SECRET_KEYS key {version!r}: base64 of {KEY_BYTES} bytes "
                "(`tidings secrets new-key` makes one)"
            )
        keys.append((version, key))
    return Keyring(tuple(keys))


def keyring_for(settings: Settings) -> Keyring:
    """The keyring the settings name (`TIDINGS_SECRET_KEYS`, by default `v0:derived`)."""
    configured = settings.secret_keys
    text = DEFAULT_KEYS if configured is None else configured.get_secret_value()
    return parse(text, lambda: load_secret(settings))
