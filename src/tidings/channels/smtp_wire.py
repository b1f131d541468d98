"""The SMTP client side on the wire: one connection, its replies, and what goes on it.

    open_connection()  connect to the given (vetted) addresses in turn, the host's name
                       kept for TLS (TLS from the start when security="tls")
                       ──▶ 220 greeting ──▶ EHLO (HELO when EHLO is refused)
                       ──▶ STARTTLS, EHLO again (security="starttls"; never go on in clear)
                       ──▶ AUTH PLAIN or LOGIN (when credentials are given)
    SmtpConnection     write(bytes) ─ reply() ─ command(line) ─ quit() ─ close()

The connection writes what it is given and parses replies as they arrive (RFC 5321
§4.2: "250-first line" … "250 last line"), so a caller that pipelines (RFC 2920) writes
several commands at once and then reads one reply per command, in order. A reply that
already arrived is returned without waiting; every wait is bounded by the timeout.
Transactions (MAIL, RCPT, DATA and what their replies mean) are the channel's business
(`smtp.py`); this module supplies the pieces: `mail_command`, `rcpt_command` and
`data_payload` (CRLF line endings and dot-stuffing, RFC 5321 §4.5.2).

    SmtpError                the conversation cannot go on
    ├── Unreachable          no SMTP greeting: refused, unreachable, timed out, implicit
    │                        TLS failed, silence or garbage, a greeting that refuses —
    │                        one error whatever the cause (`detail` for the operator's
    │                        log), so that nothing tells an open port from a closed one
    ├── ReplyRefused         the server answered EHLO, STARTTLS or AUTH with an error
    │   │                    (`stage`, `reply`)
    │   └── AuthRefused      … AUTH
    ├── NotOffered           STARTTLS or AUTH is needed and the server does not offer it
    ├── ConnectionLost       closed or reset by the server
    ├── ReplyTimeout         no reply within the timeout
    └── ProtocolError        not an SMTP reply
    BadAddress (ValueError)  an envelope address that cannot go on a command line

After the greeting, STARTTLS can also raise OSError (`ssl.SSLError`).
"""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
from collections import deque
from collections.abc import Sequence
from functools import lru_cache
from typing import Final, Literal, NamedTuple, cast

import idna

from tidings.net.answers import excerpt

__all__ = [
    "AuthRefused",
    "BadAddress",
    "ConnectionLost",
    "NotOffered",
    "ProtocolError",
    "Reply",
    "ReplyRefused",
    "ReplyTimeout",
    "SmtpConnection",
    "SmtpError",
    "Unreachable",
    "data_payload",
    "mail_command",
    "open_connection",
    "rcpt_command",
]

Security = Literal["starttls", "tls", "none"]

MAX_LINE: Final = 8192  # longest reply line accepted (RFC 5321 §4.5.3.1.5 says 512)
MAX_REPLY_LINES: Final = 1000


class SmtpError(Exception):
    pass


class Reply(NamedTuple):
    """One complete reply: its code and its lines' text (without the codes), joined by
    newlines."""

    code: int
    raw: bytes

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", "replace")

    def __str__(self) -> str:  # one line of bounded length, for error messages
        return f"{self.code} {excerpt(self.text)}".rstrip()


class ReplyRefused(SmtpError):
    def __init__(self, stage: str, reply: Reply) -> None:
        super().__init__(f"{stage}: {reply}")
        self.stage = stage
        self.reply = reply


class AuthRefused(ReplyRefused):
    pass


class NotOffered(SmtpError):
    """`extension` ("STARTTLS", "AUTH" or "AUTH PLAIN or LOGIN") is needed; `offered` is
    what the server offers instead, if anything."""

    def __init__(self, extension: str, offered: str | None = None) -> None:
        only = f" (only {offered})" if offered else ""
        super().__init__(f"the server does not offer {extension}{only}")
        self.extension = extension


class ConnectionLost(SmtpError):
    pass


class Unreachable(SmtpError):
    """No SMTP session: `detail` says why, for the operator only; `reply` is the
    greeting's refusal, when there was one (a 421 asks to hold off)."""

    def __init__(self, detail: str, reply: Reply | None = None) -> None:
        super().__init__("could not connect to the SMTP server")
        self.detail = detail
        self.reply = reply


class ReplyTimeout(SmtpError):
    pass


class ProtocolError(SmtpError):
    pass


class BadAddress(ValueError):
    def __init__(self, address: str, why: str) -> None:
        super().__init__(f"{address!r} cannot go on an SMTP command line: {why}")
        self.address = address


# --- what goes on the wire ----------------------------------------------------------------

_UNSAFE: Final = re.compile(r"[\r\n\0<>]")
_LINE_END: Final = re.compile(rb"\r\n|\r|\n")


def needs_smtputf8(address: str) -> bool:
    """An address with a non-ASCII local part: only SMTPUTF8 (RFC 6531) carries it."""
    return not address.rpartition("@")[0].isascii()


def _envelope(address: str, *, smtputf8: bool) -> bytes:
    """`address` as it goes between < and >: the domain in IDNA (punycode), the local part
    ASCII, or UTF-8 in an SMTPUTF8 transaction."""
    if _UNSAFE.search(address):
        raise BadAddress(address, "it holds CR, LF, NUL, < or >")
    if address.isascii():
        return address.encode("ascii")
    local, at, domain = address.rpartition("@")
    if not at or not (local.isascii() or smtputf8):
        raise BadAddress(address, "a non-ASCII local part needs SMTPUTF8")
    try:
        return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}".encode()
    except idna.IDNAError as exc:
        raise BadAddress(address, f"bad domain ({exc})") from None


@lru_cache(maxsize=64)  # a campaign sends from one address
def mail_command(sender: str, *, smtputf8: bool = False) -> bytes:
    """MAIL FROM for `sender`, with the SMTPUTF8 parameter for a transaction that needs
    it (RFC 6531 §3.4); BadAddress when it cannot be written."""
    parameter = b" SMTPUTF8" if smtputf8 else b""
    return b"MAIL FROM:<" + _envelope(sender, smtputf8=smtputf8) + b">" + parameter + b"\r\n"


def with_size(mail: bytes, size: int) -> bytes:
    """`mail` (a MAIL FROM line) declaring the message's size in octets (RFC 1870 §6), so
    that a server refuses a message too large for it before its content is sent."""
    return b"%s SIZE=%d\r\n" % (mail[:-2], size)


def rcpt_command(recipient: str, *, smtputf8: bool = False) -> bytes:
    """RCPT TO for `recipient` (in an SMTPUTF8 transaction or not); BadAddress when it
    cannot be written."""
    return b"RCPT TO:<" + _envelope(recipient, smtputf8=smtputf8) + b">\r\n"


def data_payload(content: bytes) -> bytes:
    """What follows DATA's 354: `content` with CRLF line endings, dot-stuffed (a line
    that starts with "." gets another), ending with CRLF "." CRLF.

    Content from `tidings.content.mime` has CRLF endings only, which three counts confirm
    without copying it; anything else has its bare CR and LF made CRLF first."""
    lines = content.count(b"\n")
    if lines != content.count(b"\r\n") or lines != content.count(b"\r"):
        content = _LINE_END.sub(b"\r\n", content)
    if content.startswith(b"."):
        content = b"." + content
    content = content.replace(b"\r\n.", b"\r\n..")
    if content and not content.endswith(b"\r\n"):
        return content + b"\r\n.\r\n"
    return content + b".\r\n"


# --- the connection -----------------------------------------------------------------------


class _Protocol(asyncio.Protocol):
    """Bytes in, complete replies out, in order; wakes the one reader waiting."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.replies: deque[Reply] = deque()
        self.failure: SmtpError | None = None  # set once the connection cannot go on
        self.buffer = bytearray()
        self._lines: list[bytes] = []  # the reply being read, so far
        self._waiter: asyncio.Future[None] | None = None
        self.paused = False  # the socket takes no more for now
        self._drain_waiter: asyncio.Future[None] | None = None
        self.lost = asyncio.Event()  # the socket is closed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport, though not always a subclass of asyncio's (uvloop's).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buffer = self.buffer
        buffer += data
        start = 0
        while (end := buffer.find(b"\n", start)) >= 0:
            line = bytes(buffer[start:end])
            start = end + 1
            self._line(line[:-1] if line.endswith(b"\r") else line)
        del buffer[:start]
        if len(buffer) > MAX_LINE:
            self._fail(ProtocolError(f"a reply line longer than {MAX_LINE} bytes"))
        self._wake()

    def _line(self, line: bytes) -> None:
        if self.failure is not None:
            return
        code, separator = line[:3], line[3:4]
        if len(code) != 3 or not code.isdigit() or separator not in (b" ", b"-", b""):
            self._fail(ProtocolError(f"not an SMTP reply: {line[:80]!r}"))
            return
        self._lines.append(line[4:])
        if separator == b"-":
            if len(self._lines) > MAX_REPLY_LINES:
                self._fail(ProtocolError(f"a reply of more than {MAX_REPLY_LINES} lines"))
            return
        # A multi-line reply repeats its code on every line (RFC 5321 §4.2.1); the last
        # line's is the one that counts.
        lines, self._lines = self._lines, []
        self.replies.append(Reply(int(code), lines[0] if len(lines) == 1 else b"\n".join(lines)))

    def eof_received(self) -> bool | None:
        return None  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        if self.failure is None:
            reason = f": {exc}" if exc is not None and str(exc) else ""
            self.failure = ConnectionLost(f"connection closed by the server{reason}")
        self.lost.set()
        self._wake()
        self._resume()

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._resume()

    def _fail(self, failure: SmtpError) -> None:
        if self.failure is None:
            self.failure = failure
        if self.transport is not None:
            self.transport.abort()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _resume(self) -> None:
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    async def wait(self, seconds: float, *, drain: bool = False) -> None:
        """Until something arrives (or, with `drain`, until writing may go on)."""
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        if drain:
            self._drain_waiter = waiter
        else:
            self._waiter = waiter
        timer = loop.call_later(seconds, _expire, waiter, seconds)
        try:
            await waiter
        finally:
            timer.cancel()
            if drain:
                self._drain_waiter = None
            else:
                self._waiter = None


def _expire(waiter: asyncio.Future[None], seconds: float) -> None:
    if not waiter.done():
        waiter.set_exception(ReplyTimeout(f"no reply within {seconds:g} s"))


class SmtpConnection:
    """One open SMTP session, greeted (and upgraded, and logged in) by `open_connection`.

    `extensions` holds the EHLO keywords (upper case) with their parameters; empty after
    HELO. Any SmtpError leaves the connection closed: its state is unknown."""

    def __init__(self, protocol: _Protocol, *, timeout: float) -> None:
        self._protocol = protocol
        self.timeout = timeout
        self.extensions: dict[str, str] = {}
        self._plain: asyncio.Transport | None = None  # the socket under TLS, after STARTTLS

    @property
    def is_open(self) -> bool:
        protocol = self._protocol
        return protocol.failure is None and not (
            protocol.transport is None or protocol.transport.is_closing()
        )

    @property
    def pipelining(self) -> bool:
        return "PIPELINING" in self.extensions

    @property
    def size_limit(self) -> int | None:
        """The largest message the server takes, in octets, when it offers SIZE (RFC
        1870): 0 when it offers SIZE without a fixed limit; None when it offers none."""
        if "SIZE" not in self.extensions:
            return None
        value = self.extensions["SIZE"].split(" ", 1)[0]
        return int(value) if value.isdigit() else 0

    @property
    def smtputf8(self) -> bool:
        """The server takes non-ASCII addresses and UTF-8 headers (RFC 6531)."""
        return "SMTPUTF8" in self.extensions

    def write(self, data: bytes) -> None:
        """Queue `data` for sending (it goes at once when the socket takes it)."""
        transport = self._protocol.transport
        if transport is not None and not transport.is_closing():
            transport.write(data)

    async def drain(self) -> None:
        """Wait while the socket does not take more (a large message), up to `timeout`
        each time it stalls."""
        protocol = self._protocol
        try:
            while protocol.paused and protocol.failure is None:
                await protocol.wait(self.timeout, drain=True)
        except ReplyTimeout:
            self.close()
            raise ReplyTimeout(f"could not write for {self.timeout:g} s") from None

    async def reply(self) -> Reply:
        """The next reply, in the order the commands were written."""
        protocol = self._protocol
        try:
            while not protocol.replies:
                if protocol.failure is not None:
                    raise protocol.failure
                await protocol.wait(self.timeout)
        except SmtpError:
            self.close()
            raise
        return protocol.replies.popleft()

    async def command(self, line: bytes) -> Reply:
        """Write one command line (CRLF included) and read its reply."""
        self.write(line)
        return await self.reply()

    async def quit(self) -> None:
        """QUIT politely, then close; never raises."""
        try:
            if self.is_open:
                await self.command(b"QUIT\r\n")
        except SmtpError:
            pass  # closing anyway
        finally:
            self.close()
            await self.wait_closed()

    def close(self) -> None:
        """Close at once. Replies that arrived but were not read are dropped: they belong
        to commands whose outcome the caller has given up on."""
        protocol = self._protocol
        if protocol.failure is None:
            protocol.failure = ConnectionLost("connection closed")
        protocol.replies.clear()
        if protocol.transport is not None:
            protocol.transport.close()
        if self._plain is not None:
            # After STARTTLS the TLS transport closes the socket only once its shutdown
            # completes; close it now so no socket outlives the session unclosed.
            self._plain.close()

    async def wait_closed(self, seconds: float = 1.0) -> None:
        """Until the socket is closed (`close` only starts it; a TLS transport first waits
        for the peer's close_notify), aborting it after `seconds`."""
        try:
            await asyncio.wait_for(self._protocol.lost.wait(), seconds)
        except TimeoutError:
            for transport in (self._protocol.transport, self._plain):
                if transport is not None:
                    transport.abort()

    # --- session set-up -------------------------------------------------------------

    async def _expect(self, stage: str, line: bytes | None, ok: int) -> Reply:
        """Write `line` (None: just read), and the reply if its first digit is `ok`'s;
        otherwise ReplyRefused, and the connection closed."""
        reply = await (self.reply() if line is None else self.command(line))
        if reply.code // 100 != ok // 100:
            self.close()
            raise ReplyRefused(stage, reply)
        return reply

    async def _greet(self, helo_name: str) -> None:
        name = helo_name.encode("ascii")
        reply = await self.command(b"EHLO " + name + b"\r\n")
        if reply.code == 250:
            self.extensions = _extensions(reply)
            return
        if reply.code == 421:
            self.close()
            raise ReplyRefused("EHLO", reply)
        await self._expect("HELO", b"HELO " + name + b"\r\n", 250)
        self.extensions = {}

    async def _starttls(self, context: ssl.SSLContext, server_hostname: str) -> None:
        if "STARTTLS" not in self.extensions:
            self.close()
            raise NotOffered("STARTTLS")
        await self._expect("STARTTLS", b"STARTTLS\r\n", 220)
        protocol = self._protocol
        if protocol.buffer or protocol.replies:
            # Anything sent before the handshake could be an attacker's (CVE-2011-0411).
            self.close()
            raise ProtocolError("data after the reply to STARTTLS")
        assert protocol.transport is not None
        loop = asyncio.get_running_loop()
        try:
            transport = await loop.start_tls(
                protocol.transport,
                protocol,
                context,
                server_hostname=server_hostname,
                ssl_handshake_timeout=self.timeout,
            )
        except BaseException:
            self.close()
            raise
        if transport is None:  # the connection went during the handshake
            raise protocol.failure or ConnectionLost("connection closed during STARTTLS")
        self._plain = protocol.transport
        protocol.transport = transport

    async def _login(self, username: str, password: str) -> None:
        offered = self.extensions.get("AUTH")
        if offered is None:
            self.close()
            raise NotOffered("AUTH")
        mechanisms = offered.upper().split()
        user, secret = username.encode("utf-8"), password.encode("utf-8")
        try:
            if "PLAIN" in mechanisms:
                token = _b64(b"\0" + user + b"\0" + secret)
                await self._expect("AUTH", b"AUTH PLAIN " + token + b"\r\n", 235)
            elif "LOGIN" in mechanisms:
                await self._expect("AUTH", b"AUTH LOGIN\r\n", 334)
                await self._expect("AUTH", _b64(user) + b"\r\n", 334)
                await self._expect("AUTH", _b64(secret) + b"\r\n", 235)
            else:
                self.close()
                raise NotOffered("AUTH PLAIN or LOGIN", offered)
        except ReplyRefused as exc:
            raise AuthRefused(exc.stage, exc.reply) from None


def _b64(data: bytes) -> bytes:
    return base64.b64encode(data)


def _extensions(reply: Reply) -> dict[str, str]:
    """EHLO keywords → parameters; the first line is the server's greeting."""
    found: dict[str, str] = {}
    for line in reply.text.splitlines()[1:]:
        keyword, _, parameters = line.strip().partition(" ")
        if keyword:
            found[keyword.upper()] = parameters.strip()
    return found


async def open_connection(
    host: str,
    port: int,
    *,
    addresses: Sequence[str] | None = None,
    security: Security,
    tls: ssl.SSLContext | None,
    reply_timeout: float,
    helo_name: str,
    username: str | None = None,
    password: str | None = None,
) -> SmtpConnection:
    """A connection ready for mail transactions, or SmtpError / OSError saying why not:
    `Unreachable` for anything up to a 220 greeting.

    `addresses` are where to connect, in turn (the addresses `host` resolved to, vetted by
    the caller; None: `host` itself); `host` stays the name TLS checks the certificate
    against. `reply_timeout` bounds the connect, the TLS handshake and every reply. `tls`
    is required unless security is "none"; a server that does not offer STARTTLS when it
    is required gets nothing but EHLO."""
    implicit = tls if security == "tls" else None
    if security != "none" and tls is None:
        raise ValueError(f"security={security!r} needs a TLS context")
    connection = await _greeted(
        host, port, addresses or [host], implicit=implicit, reply_timeout=reply_timeout
    )
    try:
        await connection._greet(helo_name)
        if security == "starttls":
            assert tls is not None
            await connection._starttls(tls, host)
            await connection._greet(helo_name)
        if username is not None:
            await connection._login(username, password or "")
    except Exception:
        # Closed for good before the error goes up, so no transport outlives the session
        # (an event loop closing first would find it open).
        connection.close()
        await connection.wait_closed()
        raise
    except BaseException:
        connection.close()
        raise
    return connection


async def _greeted(
    host: str,
    port: int,
    addresses: Sequence[str],
    *,
    implicit: ssl.SSLContext | None,
    reply_timeout: float,
) -> SmtpConnection:
    """A connection to the first of `addresses` that answers with a 220 greeting, else
    Unreachable (whatever went wrong: see the module docstring)."""
    loop = asyncio.get_running_loop()
    details: list[str] = []
    refusal: Reply | None = None
    for address in addresses:
        protocol = _Protocol()
        try:
            async with asyncio.timeout(reply_timeout):
                await loop.create_connection(
                    lambda: protocol,  # noqa: B023 (called before the loop goes on)
                    address,
                    port,
                    ssl=implicit,
                    server_hostname=host if implicit is not None else None,
                    ssl_handshake_timeout=reply_timeout if implicit is not None else None,
                )
        except TimeoutError:
            details.append(f"{address}: no connection within {reply_timeout:g} s")
            continue
        except OSError as exc:  # refused, unreachable, TLS
            details.append(f"{address}: {exc or type(exc).__name__}")
            continue
        connection = SmtpConnection(protocol, timeout=reply_timeout)
        try:
            reply = await connection.reply()
            if reply.code == 220:
                return connection
            refusal = reply
            details.append(f"{address}: greeting {reply}")
        except SmtpError as exc:  # silence, garbage, closed
            details.append(f"{address}: {exc or type(exc).__name__}")
        except BaseException:
            connection.close()
            raise
        connection.close()
        await connection.wait_closed()
    raise Unreachable("; ".join(details) or "no address", refusal)
