"""DKIM (RFC 6376) signatures over the bytes `content/mime.py` built, with RSA-SHA256 and
Ed25519-SHA256 (RFC 8463) keys, and the key pairs and DNS records behind them.

    sign(message, keys, now) ──▶ split head / body at the first empty line
                             ──▶ body: relaxed canonicalisation, SHA-256 once (`bh=`),
                                 whatever the number of keys
                             ──▶ per key: the signed headers (`SIGNED`, those present),
                                 relaxed, + the DKIM-Signature header with an empty b=,
                                 signed (RSA PKCS#1 v1.5 over the data; Ed25519 over its
                                 SHA-256, RFC 8463 §3)
                             ──▶ the DKIM-Signature headers prepended to the message

Only I/O-free work lives here. A `SigningKey` holds a loaded key object: loading one (PEM
parsing, and for RSA its consistency check) costs far more than a signature, so the
dispatcher keeps them by key id between batches (`KeyCache`), unsealing and loading each
once per worker.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache
from typing import Final

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

RSA_BITS: Final = 2048

SIGNED: Final = (
    "from", "to", "subject", "date", "message-id", "mime-version", "content-type",
    "list-unsubscribe", "list-unsubscribe-post", "list-id",
)  # fmt: skip
"""The headers a signature covers, those present only, in this order: what a reader sees
and what a receiver acts on (one-click unsubscribe, list identity)."""


class Algorithm(StrEnum):
    """A key's kind, as the API names it; `tag` is its DKIM `a=`, `k` its record's `k=`."""

    RSA = "rsa"
    ED25519 = "ed25519"

    @property
    def tag(self) -> str:
        return "rsa-sha256" if self is Algorithm.RSA else "ed25519-sha256"


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A new key: the private key as PKCS#8 PEM (to seal), the public key as the record's
    `p=` value (base64: DER SubjectPublicKeyInfo for RSA, the raw 32 bytes for Ed25519)."""

    algorithm: Algorithm
    private_pem: str = field(repr=False)
    public: str


def generate(algorithm: Algorithm) -> KeyPair:
    """A fresh key pair (RSA: 2048 bits, tens to hundreds of ms: not on the event loop)."""
    private: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    if algorithm is Algorithm.RSA:
        private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        public = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    else:
        private = ed25519.Ed25519PrivateKey.generate()
        public = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return KeyPair(algorithm, pem.decode("ascii"), base64.b64encode(public).decode("ascii"))


def dkim_record(algorithm: Algorithm, public: str) -> str:
    """The TXT value to publish at `<selector>._domainkey.<domain>`."""
    return f"v=DKIM1; k={algorithm.value}; p={public}"


def txt_strings(value: str) -> list[str]:
    """`value` cut into the ≤255-octet character-strings a TXT record is made of (an RSA
    2048 record is longer than one); a resolver joins them back without separator."""
    return [value[at : at + 255] for at in range(0, len(value), 255)] or [""]


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A loaded key that signs for `domain` (its `d=`) under `selector` (its `s=`)."""

    domain: str
    selector: str
    algorithm: Algorithm
    private: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey = field(repr=False)

    @classmethod
    def load(
        cls, *, domain: str, selector: str, algorithm: Algorithm, private_pem: str
    ) -> SigningKey:
        """ValueError if the PEM is not a key of `algorithm`."""
        key = serialization.load_pem_private_key(private_pem.encode("ascii"), password=None)
        wanted = rsa.RSAPrivateKey if algorithm is Algorithm.RSA else ed25519.Ed25519PrivateKey
        if not isinstance(key, wanted):
            raise ValueError(f"the stored key is not an {algorithm.value} key")
        return cls(domain, selector, algorithm, key)

    def sign_data(self, data: bytes) -> bytes:
        if isinstance(self.private, rsa.RSAPrivateKey):
            return self.private.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return self.private.sign(hashlib.sha256(data).digest())  # RFC 8463 §3


# --- canonicalisation (RFC 6376 §3.4) ------------------------------------------------------

# Only what changes: a single space is left alone.
_WSP_RUN = re.compile(rb"[ \t]{2,}|\t")
_WSP_BEFORE_CRLF = re.compile(rb"[ \t]+\r\n")
_UNFOLD = re.compile(rb"\r\n(?=[ \t])")


def relaxed_body(body: bytes) -> bytes:
    """§3.4.4: whitespace runs become one space, whitespace at line ends goes, empty lines
    at the end go, and a non-empty body ends with exactly one CRLF."""
    if body and not body.endswith(b"\r\n"):
        body += b"\r\n"
    # The regular expressions run only where they have work: quoted-printable bodies
    # (all of Tidings') have no tab and no space before a line break, and few double
    # spaces, and a byte search costs a hundredth of a regex scan.
    if b"\t" in body or b"  " in body:
        body = _WSP_RUN.sub(b" ", body)
    if b" \r\n" in body:
        body = _WSP_BEFORE_CRLF.sub(b"\r\n", body)
    while body.endswith(b"\r\n\r\n"):
        body = body[:-2]
    return b"" if body == b"\r\n" else body


def relaxed_header(name: bytes, value: bytes) -> bytes:
    """§3.4.2: the name in lower case, the value unfolded, its whitespace runs one space,
    none around it; as `name:value` with no line break."""
    if b"\r\n" in value:
        value = _UNFOLD.sub(b"", value)
    if b"\t" in value or b"  " in value:
        value = _WSP_RUN.sub(b" ", value)
    value = value.strip(b" ")
    return name.strip(b" \t").lower() + b":" + value


def split(message: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The message's header fields as (name, raw value with its folding, without the final
    CRLF), in order, and its body (after the empty line)."""
    head, sep, body = message.partition(b"\r\n\r\n")
    if not sep:  # no body: the head is everything
        head, body = message.removesuffix(b"\r\n"), b""
    fields: list[tuple[bytes, bytes]] = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t") and fields:
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
            continue
        name, _, value = line.partition(b":")
        fields.append((name, value))
    return fields, body


def selected(fields: Sequence[tuple[bytes, bytes]]) -> list[tuple[str, bytes]]:
    """The fields a signature covers (`SIGNED` present in the message), in `SIGNED`'s
    order; a name found more than once is taken from the bottom up (§5.4.2). Each as
    (its lower-case name, its relaxed form)."""
    by_name: dict[bytes, list[bytes]] = {}
    for name, value in fields:
        lower = name.lower()
        if lower in _SIGNED:
            by_name.setdefault(lower, []).append(relaxed_header(lower, value))
        elif lower.strip(b" \t") in _SIGNED:  # "Name :" (not written by mime.build)
            lower = lower.strip(b" \t")
            by_name.setdefault(lower, []).append(relaxed_header(lower, value))
    return [
        (name, canonical)
        for name in SIGNED
        for canonical in reversed(by_name.get(name.encode("ascii"), ()))
    ]


_SIGNED = frozenset(name.encode("ascii") for name in SIGNED)


# --- signing -----------------------------------------------------------------------------

_FOLD = 78


def _folded(tags: Iterable[str]) -> str:
    """The header's tags joined by "; ", folded (CRLF + space) where a line would pass
    78 columns: before a tag, or inside the h= list after a colon (RFC 6376 §3.5 allows
    folding whitespace there); b= comes last and is folded by the caller."""
    lines: list[str] = []
    line = "DKIM-Signature:"
    for tag in tags:
        words = tag.split(":") if tag.startswith("h=") else [tag]
        for at, word in enumerate(words):
            last = at == len(words) - 1
            piece = (" " if at == 0 else "") + word + (";" if last else ":")
            if len(line) + len(piece) > _FOLD and line.strip():
                lines.append(line)
                line = "" if piece.startswith(" ") else " "
            line += piece
    lines.append(line)
    return "\r\n".join(lines)


def _b64_folded(value: str) -> str:
    return "\r\n ".join(value[at : at + 72] for at in range(0, len(value), 72))


@lru_cache(maxsize=256)
def _head(tag: str, domain: str, selector: str, timestamp: int, names: str) -> tuple[str, bytes]:
    """The header's text up to its h= tag, and that text in relaxed form (lower-case
    name, unfolded): the same for every message of a batch signed with one key."""
    tags = ["v=1", f"a={tag}", "c=relaxed/relaxed", f"d={domain}", f"s={selector}",
            f"t={timestamp}", f"h={names}"]  # fmt: skip
    text = _folded(tags)
    name, _, value = text.encode("ascii").partition(b":")
    return text, relaxed_header(name, value)


def signature_header(
    key: SigningKey,
    signed: Sequence[tuple[str, bytes]],
    body_hash: str,
    timestamp: int,
) -> bytes:
    """One DKIM-Signature header field (with its CRLF) over the `selected` fields and the
    body hash `bh`. The header's text is folded so that its relaxed form is the cached
    head's plus " bh=…; b=" (each fold a CRLF and one space, which relaxing makes one
    space)."""
    names = ":".join(name for name, _ in signed)
    head, canonical = _head(key.algorithm.tag, key.domain, key.selector, timestamp, names)
    tail = f" bh={body_hash}; b="
    data = b"".join([*(c + b"\r\n" for _, c in signed), canonical, tail.encode("ascii")])
    signature = base64.b64encode(key.sign_data(data)).decode("ascii")
    return f"{head}\r\n bh={body_hash};\r\n b={_b64_folded(signature)}\r\n".encode("ascii")


def sign(message: bytes, keys: Sequence[SigningKey], *, timestamp: int) -> bytes:
    """`message` with one DKIM-Signature per key prepended (the body hashed once); the
    message itself unchanged when `keys` is empty."""
    if not keys:
        return message
    fields, body = split(message)
    body_hash = base64.b64encode(hashlib.sha256(relaxed_body(body)).digest()).decode("ascii")
    signed = selected(fields)
    headers = [signature_header(key, signed, body_hash, timestamp) for key in keys]
    return b"".join([*headers, message])
