"""Signed, compact, URL-safe tokens for per-recipient links.

Every tracked link, unsubscribe link and open pixel in a message carries a token such as
`/l/{token}` or `/u/{token}`. A token holds a few non-negative integers (a message id, a
link index) and nothing else: where a click goes is looked up server-side from those
ids, never read from the request, so a token cannot be turned into an open redirect, and
a link's target can be fixed after sending without invalidating the tokens in inboxes.

Layout, before base64url without padding:

    payload = LEB128(value_1) … LEB128(value_n)       unsigned varints, 1–10 bytes each
    tag     = HMAC-SHA256(purpose_key, payload)[:16]
    token   = base64url(payload + tag)

`purpose_key = HMAC-SHA256(secret, b"tidings:" + purpose)`, so a token signed for one
purpose ("click") never verifies for another ("unsubscribe"). A message id below 10**9
and a link index below 128 make a token of at most 30 characters.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Final

MIN_SECRET_BYTES: Final = 32
MAX_TOKEN_LENGTH: Final = 200
MAX_VALUE: Final = 2**64 - 1
TAG_BYTES: Final = 16  # 128 bits: forging one still takes ~2**128 guesses
_MAX_VARINT_BYTES: Final = 10  # ceil(64 / 7)
_DOMAIN: Final = b"tidings:"


class TokenSigner:
    """Signs and verifies link tokens with one server secret.

    Purposes are constants of the code ("click", "unsubscribe", "open"), never input: the
    key of each is derived once and kept for the life of the signer, because signing runs
    once per link per message.
    """

    __slots__ = ("_purposes", "_root")

    def __init__(self, secret: bytes) -> None:
        """Raises ValueError when `secret` is shorter than 32 bytes."""
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the token secret must be at least {MIN_SECRET_BYTES} bytes")
        # Only keyed HMAC states are kept, not the secret itself; copying a state skips
        # rehashing the key's inner and outer pads on every token.
        self._root = hmac.new(secret, digestmod=hashlib.sha256)
        self._purposes: dict[str, hmac.HMAC] = {}

    def sign(self, purpose: str, *values: int) -> str:
        """The token carrying `values` for `purpose`.

        Raises ValueError when a value is negative or above 2**64 - 1, or when the token
        would exceed `MAX_TOKEN_LENGTH` (too many values), since `verify` would refuse it.
        """
        payload = b"".join(_varint(value) for value in values)
        token = _b64encode(payload + self._tag(purpose, payload))
        if len(token) > MAX_TOKEN_LENGTH:
            raise ValueError(f"{len(values)} values make a token over {MAX_TOKEN_LENGTH} chars")
        return token

    def verify(self, purpose: str, token: str, *, arity: int) -> tuple[int, ...] | None:
        """The `arity` values `token` carries, if this signer signed it for `purpose`.

        None for anything else: empty, over-long, not canonical base64url, a tag that does
        not match (tampered, another purpose, another secret), or a payload that is not
        exactly `arity` varints. Never raises, whatever the token.
        """
        if not 0 < len(token) <= MAX_TOKEN_LENGTH:
            return None
        raw = _b64decode(token)
        if raw is None or len(raw) < TAG_BYTES:
            return None
        payload, tag = raw[:-TAG_BYTES], raw[-TAG_BYTES:]
        if not hmac.compare_digest(tag, self._tag(purpose, payload)):
            return None
        return _read_varints(payload, arity)

    def _tag(self, purpose: str, payload: bytes) -> bytes:
        keyed = self._purposes.get(purpose)
        if keyed is None:
            derive = self._root.copy()
            derive.update(_DOMAIN + purpose.encode())
            keyed = hmac.new(derive.digest(), digestmod=hashlib.sha256)
            self._purposes[purpose] = keyed
        mac = keyed.copy()
        mac.update(payload)
        return mac.digest()[:TAG_BYTES]


def _varint(value: int) -> bytes:
    if not 0 <= value <= MAX_VALUE:
        raise ValueError(f"token values are integers from 0 to 2**64 - 1, not {value}")
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varints(payload: bytes, arity: int) -> tuple[int, ...] | None:
    """Exactly `arity` minimal varints filling `payload`, or None."""
    values: list[int] = []
    value = shift = 0
    for byte in payload:
        if shift == 7 * _MAX_VARINT_BYTES:
            return None
        value |= (byte & 0x7F) << shift
        if byte & 0x80:
            shift += 7
            continue
        # A zero last byte after others is a padded encoding, which sign never makes.
        if (byte == 0 and shift) or value > MAX_VALUE:
            return None
        values.append(value)
        value = shift = 0
    if shift or len(values) != arity:
        return None
    return tuple(values)


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(token: str) -> bytes | None:
    """The bytes `token` encodes, or None unless `token` is their one canonical encoding.

    The decoder skips characters outside its alphabet, takes "+" and "/" as well as "-"
    and "_", and ignores the spare low bits of a last character; without the round trip,
    several strings would carry the same bytes and a one-character change could verify.
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except ValueError:  # binascii.Error (bad length), or a character beyond ASCII
        return None
    return raw if _b64encode(raw) == token else None
