"""Fast, standards-correct assembly of one email as bytes, with no I/O.

`build(email)` writes the message directly from pre-encoded pieces instead of going through
`email.message.EmailMessage`, which costs about 0.5 ms a message, more than the rest of the
send path. The output is what the SMTP client hands to DATA, before dot-stuffing:

    From / To / Reply-To / Subject / Date / Message-ID / MIME-Version   (RFC 5322, 2047)
    extra headers, verbatim                                             (List-Unsubscribe…)
    Content-Type + Content-Transfer-Encoding: quoted-printable          (RFC 2045)
    one text/plain or text/html part, or multipart/alternative of both  (RFC 2046)

Guarantees: CRLF line endings only; every line at most 998 octets; header lines folded at
78 where the content allows (76 for lines that carry encoded-words, RFC 2047 §2); bodies
in quoted-printable, so body lines are at most 76 octets and 7-bit clean; headers 7-bit
too, except an address with a non-ASCII local part (RFC 6532, UTF-8: for SMTPUTF8 only).
Any CR, LF or NUL in a header input raises `HeaderInjection`; other unusable input raises
`ValueError`.

Headers built from values that recur within a campaign (sender, subject, IDN domains) are
cached, so `build` spends its time on the personalised parts only.
"""

from __future__ import annotations

import binascii
import itertools
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Annotated

import idna
from pydantic import AfterValidator

__all__ = [
    "Address",
    "Email",
    "HeaderInjection",
    "HeaderText",
    "breaks_header",
    "build",
    "new_message_id",
    "sending_domain",
]


class Undeliverable(ValueError):
    """An address no message can be built for: a domain that is not a valid IDN. The
    message fails with this reason."""


def breaks_header(value: str) -> bool:
    """Whether a header input holds CR, LF or NUL: the one rule, checked when a template or
    a single send is saved (`HeaderText`) and again on each built message (its variables
    may bring them)."""
    return "\r" in value or "\n" in value or "\0" in value


def header_text(value: str) -> str:
    """A header input as it is saved: ValueError (a 422 naming the field) if it breaks."""
    if breaks_header(value):
        raise ValueError("CR, LF or NUL cannot be in a header: it would end the header early")
    return value


HeaderText = Annotated[str, AfterValidator(header_text)]
"""Literal text of a header (a subject, a sender's name), refused at save if it breaks."""


class HeaderInjection(ValueError):
    """A header input holds CR, LF or NUL, which would end the header or the message early.

    `header` names the header whose input was rejected.
    """

    def __init__(self, header: str) -> None:
        super().__init__(f"{header}: CR, LF or NUL in header input")
        self.header = header


@dataclass(frozen=True, slots=True)
class Address:
    """A mailbox. `email` is syntax-checked upstream; its domain may be an IDN (written as
    punycode); a non-ASCII local part is written in UTF-8 (RFC 6532), which only a server
    offering SMTPUTF8 (RFC 6531) takes: the SMTP channel checks. `name` is the display
    name, any Unicode."""

    email: str
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Email:
    """One message to build. At least one of `text` and `html` is set; `date` is aware;
    `message_id` has no angle brackets; `headers` are extra (name, value) pairs written
    verbatim in order, ASCII only, and may not repeat a header `build` writes itself."""

    sender: Address
    to: Address
    subject: str
    text: str | None
    html: str | None
    message_id: str
    date: datetime
    reply_to: Address | None = None
    headers: tuple[tuple[str, str], ...] = ()


# --- header encoding ---------------------------------------------------------------------

_FOLD = 78  # RFC 5322 §2.1.1: lines SHOULD be at most 78 characters
_FOLD_ENCODED = 76  # RFC 2047 §2: lines holding an encoded-word are at most 76
_MAX_LINE = 998  # RFC 5322 §2.1.1: lines MUST be at most 998 characters
_LONGEST_PREFIX = len("Reply-To: ")
# Every encoded-word fits on the first line after the longest prefix we write, so folding
# never has to put one on a line of its own to meet the 76-character limit.
_EW_MAX = _FOLD_ENCODED - _LONGEST_PREFIX
_EW_PAYLOAD = _EW_MAX - len("=?utf-8?q??=")
_B_CHUNK = _EW_PAYLOAD // 4 * 3  # bytes whose base64 fills a payload

# Characters RFC 2047 §5(3) lets stand for themselves in a Q-encoded word inside a phrase;
# the strictest context, used for subjects too so there is one encoder.
_Q_LITERAL = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/"
_Q_MAP = {b: f"={b:02X}" for b in range(256) if b not in _Q_LITERAL}
_Q_MAP[0x20] = "_"
_Q_KEEP = _Q_LITERAL + b" "  # bytes that cost one character in Q (space becomes "_")

_PLAIN = re.compile(r"[ -~]*")  # printable ASCII: can go in a header without encoding
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_VISIBLE = re.compile(r"[\t -~]*")
_FIELD_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 §3.6.8 ftext
_MSG_ID = re.compile(r"[!-;=?-~]+@[!-;=?-~]+")  # no "<", ">" or whitespace
_OWN_HEADERS = frozenset(
    {
        "from",
        "to",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    }
)


def _fold(prefix: str, tokens: list[str], limit: int) -> str:
    """One header field: `prefix` ("Name: ") then `tokens` joined by single spaces,
    breaking lines before a token where the line would pass `limit`. An empty token (a run
    of spaces in the source) never starts a line, so no line is whitespace only.

    The first token stays on the first line: a break right after the colon reads back as
    leading whitespace in the value in some parsers (the standard library's among them).
    """
    line = prefix + tokens[0]
    lines: list[str] = []
    for token in tokens[1:]:
        if not token or len(line) + 1 + len(token) <= limit:
            line = f"{line} {token}"
        else:
            lines.append(line)
            line = " " + token
    lines.append(line)
    return "\r\n".join(lines) + "\r\n"


def _encoded_words(text: str) -> list[str]:
    """`text` as RFC 2047 encoded-words of at most `_EW_MAX` characters, each holding whole
    characters. Q when it is no longer than B (mostly-Latin text stays legible), else B."""
    data = text.encode("utf-8")
    escaped = len(data.translate(None, _Q_KEEP))
    if len(data) + 2 * escaped <= (len(data) + 2) // 3 * 4:
        return [f"=?utf-8?q?{chunk}?=" for chunk in _q_chunks(data)]
    words: list[str] = []
    start = 0
    while start < len(data):
        end = min(start + _B_CHUNK, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # a UTF-8 continuation byte
            end -= 1
        encoded = binascii.b2a_base64(data[start:end], newline=False).decode("ascii")
        words.append(f"=?utf-8?b?{encoded}?=")
        start = end
    return words


def _q_chunks(data: bytes) -> list[str]:
    """The Q encoding of `data` cut into payloads of at most `_EW_PAYLOAD` characters, never
    inside an "=XX" escape nor between the bytes of one UTF-8 character."""
    q = data.decode("latin-1").translate(_Q_MAP)
    chunks: list[str] = []
    start = 0
    while len(q) - start > _EW_PAYLOAD:
        end = start + _EW_PAYLOAD
        # Literal "=" never occurs in Q output, so any "=" starts an escape.
        if q[end - 1] == "=":
            end -= 1
        elif q[end - 2] == "=":
            end -= 2
        # Bytes >= 0x80 are always escaped, so a continuation byte "=8X".."=BX" is
        # preceded by another escape exactly three characters back.
        while q[end] == "=" and q[end + 1] in "89AB":
            end -= 3
        chunks.append(q[start:end])
        start = end
    chunks.append(q[start:])
    return chunks


def _text_tokens(text: str, prefix: str, *, phrase: bool) -> tuple[list[str], bool]:
    """Tokens for a subject, or for a display name when `phrase`, and whether they are
    encoded-words. Printable ASCII stays plain when its words each fit a folded line and
    nothing in it looks like an encoded-word; a display name that is not a run of atoms is
    written as a quoted-string, which may fold at its spaces like atoms (RFC 5322 §3.2.4)."""
    if _PLAIN.fullmatch(text) and "=?" not in text:
        plain = text
        if phrase and not _ATOMS.fullmatch(text):
            plain = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        room = _FOLD - len(prefix)  # what the first line leaves; later lines leave more
        tokens = plain.split(" ")
        if len(plain) <= room or max(map(len, tokens)) <= room:
            return tokens, False
    return _encoded_words(text), True


@lru_cache(maxsize=256)
def _subject_line(subject: str) -> str:
    tokens, encoded = _text_tokens(subject, "Subject: ", phrase=False)
    return _fold("Subject: ", tokens, _FOLD_ENCODED if encoded else _FOLD)


@lru_cache(maxsize=1024)
def _ascii_domain(domain: str) -> str:
    """The IDNA 2008 (UTS 46) A-label form, as email-validator checks domains."""
    return idna.encode(domain, uts46=True).decode("ascii")


def sending_domain(address: str) -> str:
    """The domain of a sender's `address` as Message-ID and List-Id carry it: ASCII (an
    IDN's A-label form); `invalid` (RFC 2606) for a domain that is not a valid IDN, whose
    From line then fails the message (`Undeliverable`)."""
    domain = address.rpartition("@")[2].rstrip(".")
    if not domain:
        return "invalid"
    if domain.isascii():
        return domain.lower()
    try:
        return _ascii_domain(domain)
    except idna.IDNAError:
        return "invalid"


class _RandomPool:
    """Random bytes from the operating system's generator, drawn 4 KiB at a time and
    each handed out once: on the virtual machines Tidings was measured on, a getrandom()
    system call costs 8-14 µs however few bytes it returns, and one per message was most
    of the dispatcher's system time (bench/quick.py: 25-27 µs of system time a message
    with one call each, 15-19 with the pool). As unpredictable as `secrets.token_bytes`:
    the same source, each byte used once (a lock: renders also run in a thread), and a
    forked child starts a pool of its own, never its parent's."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._forget()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()  # new: a fork may have copied it held
        self._pool = b""
        self._at = 0

    def take(self, count: int) -> bytes:
        with self._lock:
            if self._at + count > len(self._pool):
                self._pool, self._at = os.urandom(max(self._size, count)), 0
            taken = self._pool[self._at : self._at + count]
            self._at += count
            return taken


_RANDOM = _RandomPool()


def new_message_id(domain: str) -> str:
    """A Message-ID (without angle brackets): the time in microseconds (14 hex digits),
    a dot, 128 random bits (32 hex digits), then the sending domain. Unpredictable, so it
    tells nothing of a sender's volume or other messages, and unique across installations
    sending from one domain; stored with the message (`messages.email_message_id`), which
    is how a bounce finds it. The time first makes the ids of a send ascend, so each is
    added at the end of that column's index, not at a random page of it: random ids cost
    SQLite 5-9 µs more a message at 50,000 messages, and more as the table grows."""
    return f"{time.time_ns() // 1000:014x}.{_RANDOM.take(16).hex()}@{domain}"


def _address_line(prefix: str, name: str | None, addr: str) -> str:
    if not addr.isascii():
        local, _, domain = addr.rpartition("@")
        try:
            addr = f"{local}@{_ascii_domain(domain)}"
        except idna.IDNAError as exc:
            raise Undeliverable(f"{prefix[:-2]}: domain is not a valid IDN: {domain!r}") from exc
    if not name:
        return f"{prefix}{addr}\r\n"
    tokens, encoded = _text_tokens(name, prefix, phrase=True)
    tokens.append(f"<{addr}>")
    return _fold(prefix, tokens, _FOLD_ENCODED if encoded else _FOLD)


# The sender and reply-to recur for a whole campaign; recipients do not, so only the former
# go through a cache.
_cached_address_line = lru_cache(maxsize=64)(_address_line)


@lru_cache(maxsize=64)
def _extra_prefix(name: str) -> str:
    if not _FIELD_NAME.fullmatch(name):
        raise ValueError(f"{name!r}: header name must be printable ASCII without ':'")
    if name.lower() in _OWN_HEADERS:
        raise ValueError(f"{name}: written by build(); not allowed as an extra header")
    return name + ": "


def _extra_line(name: str, value: str) -> str:
    prefix = _extra_prefix(name)
    if not _VISIBLE.fullmatch(value):
        raise ValueError(f"{name}: extra header values must be printable ASCII")
    if len(prefix) + len(value) <= _FOLD:
        return f"{prefix}{value}\r\n"
    tokens = value.split(" ")
    if len(prefix) + max(map(len, tokens)) > _MAX_LINE:
        raise ValueError(f"{name}: value has a word too long to fold under 998 octets")
    return _fold(prefix, tokens, _FOLD)


def _check_injection(email: Email) -> None:
    """Raise HeaderInjection for the first header input holding CR, LF or NUL."""
    fields = [
        ("From", email.sender.email),
        ("From", email.sender.name or ""),
        ("To", email.to.email),
        ("To", email.to.name or ""),
        ("Subject", email.subject),
        ("Message-ID", email.message_id),
    ]
    if email.reply_to is not None:
        fields += [("Reply-To", email.reply_to.email), ("Reply-To", email.reply_to.name or "")]
    for name, value in email.headers:
        fields += [(repr(name), name), (name, value)]
    # One scan of everything joined; finding the culprit is only paid on failure.
    if breaks_header("".join([value for _, value in fields])):
        for header, value in fields:
            if breaks_header(value):
                raise HeaderInjection(header)


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MINUTE = timedelta(minutes=1)


@lru_cache(maxsize=8)  # a batch of messages shares one date
def _format_date(date: datetime) -> str:
    """RFC 5322 §3.3 date-time, as `email.utils.format_datetime` writes it but in half the
    time, and independent of the locale (unlike strftime's %a and %b)."""
    offset = date.utcoffset()
    if offset is None:
        raise ValueError("Date: must be timezone-aware")
    hours, minutes = divmod(abs(offset // _MINUTE), 60)
    sign = "-" if offset < timedelta(0) else "+"
    return (
        f"{_DAYS[date.weekday()]}, {date.day:02d} {_MONTHS[date.month - 1]} {date.year:04d} "
        f"{date.hour:02d}:{date.minute:02d}:{date.second:02d} {sign}{hours:02d}{minutes:02d}"
    )


# --- bodies ------------------------------------------------------------------------------

_TEXT_PART = b"Content-Type: text/plain; charset=utf-8\r\n"
_HTML_PART = b"Content-Type: text/html; charset=utf-8\r\n"
_QP = b"Content-Transfer-Encoding: quoted-printable\r\n"


# binascii.b2a_qp writes a line of 75 or 76 characters that ends in a space or tab with
# that last character escaped ("=20", "=09"): 77 or 78 octets, over RFC 2045's 76.
_LONG_LINE = re.compile(rb"[^\n]{77,}")
_ESCAPED_END = re.compile(rb"=(?:20|09)\n")


def _rewrap(match: re.Match[bytes]) -> bytes:
    """A quoted-printable line over 76 octets as lines of at most 76, joined by soft
    breaks, never cutting an "=XX" escape."""
    line = match[0]
    pieces = []
    while len(line) > 76:
        cut = 75  # 75 characters and the soft break's "="
        if line[cut - 1] == 0x3D:  # "=" starts an escape: keep it whole for the next line
            cut -= 1
        elif line[cut - 2] == 0x3D:
            cut -= 2
        pieces.append(line[:cut] + b"=")
        line = line[cut:]
    pieces.append(line)
    return b"\n".join(pieces)


def _quoted_printable(text: str) -> bytes:
    """`text` in quoted-printable with CRLF line breaks.

    Always quoted-printable, never 7bit: its lines are at most 76 octets, so no relay
    re-wraps them (which would break DKIM), and the boundary rule below depends on it.
    Lone CR and LF are line breaks, as in MIME canonical text (RFC 2046 §4.1.1). A line
    starting "From " gets its "F" escaped, because mbox-style relays otherwise rewrite it
    to ">From ", altering the text and the DKIM body hash; lines starting "." are left to
    the SMTP client's dot-stuffing.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    data = binascii.b2a_qp(text.encode("utf-8"))
    # Only a line ending in escaped whitespace can be too long: looking for one costs
    # about 1 µs a part, looking for a long line more than the encoding itself.
    if _ESCAPED_END.search(data) or data.endswith((b"=20", b"=09")):
        data = _LONG_LINE.sub(_rewrap, data)
    if data.startswith(b"From ") or b"\nFrom " in data:
        # "=46" then a soft break keeps the line within 76 octets, whatever its length.
        data = data.replace(b"\nFrom ", b"\n=46=\nrom ")
        if data.startswith(b"From "):
            data = b"=46=\nrom " + data[5:]
    return data.replace(b"\n", b"\r\n")


def _new_boundary() -> str:
    # Quoted-printable output only has "=" before two hex digits or a line break, so a
    # boundary holding "=_" can never occur in a body; the random part keeps it unique
    # when this message is nested inside another built by us. The randomness is drawn
    # once per process, and a counter tells its messages apart: a getrandom() system
    # call per message was 14 µs of the dispatcher's ~215 (py-spy, bench sqlite-1).
    return f"{_boundary_prefix()}{next(_BOUNDARIES):x}"


@lru_cache(maxsize=1)
def _boundary_prefix() -> str:
    return f"=_{secrets.token_hex(8)}."


_BOUNDARIES = itertools.count()


# --- the message -------------------------------------------------------------------------


def build(email: Email) -> bytes:
    """The complete message as bytes, CRLF line endings, ready for SMTP DATA.

    Raises HeaderInjection if any header input holds CR, LF or NUL; ValueError if neither
    body is set, the date is naive, the message id or an extra header is malformed, or an
    address has an invalid IDN domain. An address with a non-ASCII local part is written
    in UTF-8 (RFC 6532): the headers are then 8-bit, for SMTPUTF8 only.
    """
    _check_injection(email)
    if email.text is None and email.html is None:
        raise ValueError("an email needs a text or an html body")
    if not _MSG_ID.fullmatch(email.message_id):
        raise ValueError(f"Message-ID: not an id-left@id-right: {email.message_id!r}")

    sender, reply_to = email.sender, email.reply_to
    head = [
        _cached_address_line("From: ", sender.name, sender.email),
        _address_line("To: ", email.to.name, email.to.email),
    ]
    if reply_to is not None:
        head.append(_cached_address_line("Reply-To: ", reply_to.name, reply_to.email))
    head += [
        _subject_line(email.subject),
        f"Date: {_format_date(email.date)}\r\n"
        f"Message-ID: <{email.message_id}>\r\n"
        "MIME-Version: 1.0\r\n",
    ]
    head += [_extra_line(name, value) for name, value in email.headers]

    if email.text is not None and email.html is not None:
        boundary = _new_boundary()
        head.append(f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n')
        delimiter = f"\r\n--{boundary}\r\n".encode("ascii")
        return b"".join(
            [
                "".join(head).encode(),  # UTF-8: ASCII but for a non-ASCII local part
                delimiter[2:],  # the first delimiter needs no line break before it
                _TEXT_PART,
                _QP,
                b"\r\n",
                _quoted_printable(email.text),
                delimiter,
                _HTML_PART,
                _QP,
                b"\r\n",
                _quoted_printable(email.html),
                delimiter[:-2],
                b"--\r\n",
            ]
        )

    body = _quoted_printable(email.text if email.text is not None else email.html or "")
    if body and not body.endswith(b"\r\n"):
        # The message must end with CRLF; a soft break adds none to the decoded text.
        body += b"=\r\n"
    part = _TEXT_PART if email.text is not None else _HTML_PART
    return b"".join(["".join(head).encode(), part, _QP, b"\r\n", body])
