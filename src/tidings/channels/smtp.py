"""The SMTP channel: delivers built messages over a pool of long-lived connections.

    send(batch) ──▶ up to `pool_size` workers, each holding one pooled connection
                    worker: connect if needed ──▶ take the next message ──▶ its transaction
                ──▶ one Result per message, in input order

A transaction, pipelined (RFC 2920) when the server offers PIPELINING and the setting
allows it, one write per arrow:

    MAIL FROM, RCPT TO, DATA ──▶ 250, 250, 354
    content "." + the next message's MAIL FROM, RCPT TO, DATA ──▶ 250 (queued), 250, 250, 354
    …

so a steady stream costs one round trip per message. Every reply is read, in order, and
belongs to the command it answers: when MAIL or RCPT is refused, the reply to DATA (503
or 554) is read and ignored, and RSET clears the transaction before the connection goes
on. Without pipelining each command waits for the reply to the one before, as RFC 5321
has it. Either way a refused transaction is followed by RSET, except when the next one
is already on the wire (the reply to "." ends a transaction whatever it says).

Connections open lazily and stay open between batches. A connection that breaks is
dropped and the worker opens a new one for its next message; a message whose MAIL FROM
got no reply because the connection had gone (a server that closed it while it sat idle,
or the next message pipelined behind one that broke it) had transferred nothing, and goes
again once on a fresh connection. A worker that cannot connect stops and leaves its share
to the others; what nobody could take fails with the connect error.

Before connecting, the host is resolved and vetted against the operator's outbound policy
(`tidings.net.ssrf`), and the connection goes to a vetted address (the name is kept for
TLS). A refused address fails the batch permanently ("refused: …"). Anything that keeps
a session from starting, up to the server's 220 greeting — refused, unreachable, timed
out, not resolved, implicit TLS failed, a greeting that is silence, garbage or a refusal —
is one transient reason, "could not connect to the SMTP server at host:port", so that a
tenant cannot tell an open port from a closed one; the cause goes to the operator's log.

Replies map to errors as RFC 5321 §4.2.1 reads them: 4xx is transient, 5xx permanent.
Breakage (disconnect, reset, timeout, refused connection, DNS, TLS) is transient. A 5xx
answer to AUTH is permanent: no message can go with those credentials, so all that no
logged-in connection took fail with "authentication failed". A 421 (the server is
closing the connection, RFC 5321 §3.8) is push-back: that message, and every message of
the batch not yet started, come back transient with `retry_after = pushback_seconds`
(those not started marked `attempted=False`: their attempt does not count), so the
dispatcher stops the whole connection cluster-wide for that long. A 421 while
connecting stops only that worker, as any connect failure does (a server may refuse
connections past a per-client limit and serve the others). `send` never raises; every
problem becomes a result.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import ssl
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Annotated, Final, Literal, NamedTuple

from pydantic import AfterValidator, Field

from tidings.channels.base import (
    Outgoing,
    PermanentSendError,
    RecipientRefused,
    Report,
    Result,
    SendError,
    Sent,
    TransientSendError,
)
from tidings.channels.provider import Address, ConnectionSpec, Provider, Schema, options
from tidings.channels.smtp_wire import (
    AuthRefused,
    BadAddress,
    ConnectionLost,
    NotOffered,
    Reply,
    ReplyRefused,
    SmtpConnection,
    SmtpError,
    Unreachable,
    data_payload,
    mail_command,
    needs_smtputf8,
    open_connection,
    rcpt_command,
    with_size,
)
from tidings.db.engine import Database
from tidings.net.hostnames import helo_name, is_fqdn
from tidings.net.ssrf import STRICT, IPAddress, OutboundPolicy, Unresolved, UnsafeURL

__all__ = ["PROVIDER", "SmtpChannel", "SmtpSettings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """Where and how to connect. `security` is "starttls" (upgrade required, never sent in
    the clear), "tls" (implicit TLS, usually port 465) or "none". `timeout` bounds the
    connect and every single reply, in seconds. `helo_name` is the name given in EHLO;
    None means this host's name (`socket.getfqdn`), sent only to a server on loopback
    unless it is fully qualified (`helo_refusal`). `pipelining` uses RFC 2920 where the
    server offers it. `pushback_seconds` is how long a 421 stops the connection (0: a
    421 only drops the connection it came on)."""

    host: str
    port: int = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    pool_size: int = 4
    validate_certs: bool = True
    helo_name: str | None = None
    pipelining: bool = True
    pushback_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.pool_size < 1:
            raise ValueError("pool_size must be at least 1")
        if self.timeout <= 0:
            raise ValueError("timeout must be positive")
        if self.pushback_seconds < 0:
            raise ValueError("pushback_seconds must not be negative")
        if self.helo_name is not None:
            helo_name(self.helo_name)  # ValueError: not an FQDN nor an address literal


# "250 2.0.0 Ok: queued as 4XyZ12" (Postfix and most MTAs), "250 OK id=1rAbCd-0001Xy-Zz"
# (Exim).
_QUEUE_ID: Final = re.compile(r"(?:\bqueued as|\bid=)\s*<?([\w.@+-]+?)>?\.?(?:\s|$)", re.I)
_MESSAGE_ID: Final = re.compile(rb"^message-id:[ \t]*<?([^\s<>]+)>?", re.I | re.M)
_DATA: Final = b"DATA\r\n"
_RSET: Final = b"RSET\r\n"
_END_ONLY: Final = b".\r\n"
# Each step of a transaction and the first digit of the reply that lets it go on.
_STEPS: Final = (("MAIL FROM", 2), ("RCPT TO", 2), ("DATA", 3))


class _Prepared(NamedTuple):
    """One message as it goes on the wire."""

    position: int  # in the batch
    mail: bytes  # the MAIL FROM line
    rcpt: bytes  # the RCPT TO line
    payload: bytes  # the content after DATA, dot-stuffed, "." included
    content: bytes  # as given, for the Message-ID


@dataclass(slots=True)
class _Run:
    """One `send` call, shared by its workers (one event loop, so no locking)."""

    batch: Sequence[Outgoing]
    pending: deque[int]
    results: list[Result | None]
    report: Report | None = None
    retried: set[int] = field(default_factory=set)
    unreachable: SendError | None = None  # the last connect failure, for what is left
    pushback: TransientSendError | None = None  # after a 421: for what is left; start none

    def settle(self, index: int, result: Result) -> None:
        """The message at `index` ended with `result`: kept, and reported at once."""
        self.results[index] = result
        if self.report is not None:
            self.report(index, result)


class SmtpChannel:
    """A `Channel` for one SMTP server and one set of credentials.

    At most `pool_size` connections are open at once, across concurrent `send` calls.
    `close()` ends them with QUIT; a closed channel answers every later message with a
    TransientSendError, so a batch caught by a shutdown is retried, not lost.
    """

    def __init__(self, settings: SmtpSettings, *, policy: OutboundPolicy = STRICT) -> None:
        self.settings = settings
        self.policy = policy
        self._where = f"{settings.host}:{settings.port}"
        self._idle: list[SmtpConnection] = []
        self._slots = asyncio.Semaphore(settings.pool_size)
        self._closed = False
        self._tls: ssl.SSLContext | None = None  # made on first use: it reads the CA store
        self._helo_name = settings.helo_name

    messages_per_request: int = 1  # a transaction per message (see `Channel`)

    @property
    def parallelism(self) -> int:
        """`pool_size`: one message in flight per pooled connection, whatever the batch.
        The dispatcher asks the connection's concurrency limit for this many and hands
        over a whole batch, which the pool streams (see `Channel`)."""
        return self.settings.pool_size

    async def send(
        self, batch: Sequence[Outgoing], *, report: Report | None = None
    ) -> Sequence[Result]:
        """One result per message of `batch`, in order, each told to `report` as soon as
        its reply is read; never raises (but for cancellation)."""
        if self._closed:
            return [TransientSendError("SMTP channel is closed")] * len(batch)
        run = _Run(batch, deque(range(len(batch))), [None] * len(batch), report)
        async with asyncio.TaskGroup() as workers:
            for _ in range(min(self.settings.pool_size, len(batch))):
                workers.create_task(self._work(run))
        leftover = run.pushback or run.unreachable or TransientSendError("no SMTP connection")
        return [leftover if result is None else result for result in run.results]

    async def close(self) -> None:
        """QUIT and close every idle connection; those in use close when their batch ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(connection.quit() for connection in idle))

    # --- workers ---------------------------------------------------------------------

    async def _work(self, run: _Run) -> None:
        """Send messages of `run` on one pooled connection, replacing it when it breaks."""
        async with self._slots:
            connection = self._idle.pop() if self._idle else None
            reusable = False
            try:
                while run.pending and run.pushback is None:
                    if connection is None or not connection.is_open:
                        opened = await self._connect()
                        if isinstance(opened, SendError):
                            # Other workers may still get through (past a per-client
                            # connection limit, or on connections that logged in before the
                            # password changed); this one leaves its share to them.
                            run.unreachable = opened
                            return
                        connection = opened
                        continue  # the others may have taken the rest while we connected
                    await self._stream(connection, run)
                reusable = True
            finally:
                # A cancelled or failed worker may leave a transaction half done.
                if connection is not None:
                    if reusable and connection.is_open and not self._closed:
                        self._idle.append(connection)
                    else:
                        connection.close()

    async def _connect(self) -> SmtpConnection | SendError:
        """Open, greet, upgrade and log in; or the error that stopped it."""
        settings, where = self.settings, self._where
        try:
            addresses = await self.policy.vet(settings.host, settings.port)
        except Unresolved as exc:
            log.warning("cannot connect to %s: %s", where, exc.reason)
            return TransientSendError(f"could not connect to the SMTP server at {where}")
        except UnsafeURL as exc:
            return PermanentSendError(f"refused: {exc.reason}")
        helo = await self._helo()
        refusal = helo_refusal(helo, addresses)
        if refusal is not None:
            log.error("not connecting to %s: %s", where, refusal)
            # The operator's to mend, not the message's: every message waits, retried
            # no sooner than the push-back, and fails only after max_attempts.
            return TransientSendError(
                f"not sent: {refusal}", retry_after=settings.pushback_seconds or None
            )
        try:
            return await open_connection(
                settings.host,
                settings.port,
                addresses=[str(address) for address in addresses],
                security=settings.security,
                tls=self._tls_context(),
                reply_timeout=settings.timeout,
                helo_name=helo,
                username=settings.username,
                password=settings.password,
            )
        except Unreachable as exc:
            log.warning("cannot connect to %s: %s", where, exc.detail)
            reason = f"could not connect to the SMTP server at {where}"
            return self._transient(reason, exc.reply) if exc.reply else TransientSendError(reason)
        except AuthRefused as exc:
            reason = f"authentication failed: {exc.reply}"
            if exc.reply.code >= 500:
                return PermanentSendError(reason)
            return self._transient(reason, exc.reply)
        except NotOffered as exc:
            if exc.extension.startswith("AUTH"):
                return PermanentSendError(f"authentication failed: {where}: {exc}")
            return TransientSendError(f"cannot connect to {where}: {exc}")
        except ReplyRefused as exc:  # EHLO or STARTTLS refused
            return self._transient(f"cannot connect to {where}: {exc}", exc.reply)
        except (SmtpError, OSError, ValueError) as exc:  # STARTTLS failed, lost, timeout
            return TransientSendError(f"cannot connect to {where}: {_describe(exc)}")

    def _tls_context(self) -> ssl.SSLContext | None:
        if self.settings.security == "none":
            return None
        if self._tls is None:
            context = ssl.create_default_context()
            if not self.settings.validate_certs:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._tls = context
        return self._tls

    async def _helo(self) -> str:
        if self._helo_name is None:
            name = await asyncio.to_thread(socket.getfqdn)  # may ask DNS
            self._helo_name = name if _is_helo_name(name) else "localhost"
        return self._helo_name

    # --- transactions ------------------------------------------------------------------

    async def _stream(self, connection: SmtpConnection, run: _Run) -> None:
        """Send messages of `run` on `connection` until none is left to take (or a 421
        stopped the run) or the connection closes. It is left idle or closed."""
        pipelined = self.settings.pipelining and connection.pipelining
        in_flight: list[int] = []
        # Raising here would lose the results of messages already delivered in this batch,
        # and the dispatcher would send them twice; a bug costs the messages in flight.
        try:
            message = self._next(connection, run, pipelined=pipelined)
            while message is not None:
                in_flight = [message.position]
                following: _Prepared | None = None
                if await self._open(connection, message, run, pipelined=pipelined):
                    following = self._take(run, connection) if pipelined else None
                    if following is None:
                        connection.write(message.payload)
                    else:  # RFC 2920 §3.1: the content, then the next transaction
                        in_flight.append(following.position)
                        connection.write(message.payload + following.mail + following.rcpt + _DATA)
                    result = await self._finish(connection, message, run, last=following is None)
                    run.settle(message.position, result)
                if following is None and connection.is_open:
                    following = self._next(connection, run, pipelined=pipelined)
                message = following
        except Exception as exc:
            log.exception("unexpected error sending on %s", self._where)
            connection.close()
            for index in in_flight:
                if run.results[index] is None:
                    run.settle(index, TransientSendError(f"unexpected error: {exc!r}"))

    def _next(self, connection: SmtpConnection, run: _Run, *, pipelined: bool) -> _Prepared | None:
        """The next message to send, its MAIL, RCPT and DATA written when pipelined."""
        message = self._take(run, connection)
        if message is not None and pipelined:
            connection.write(message.mail + message.rcpt + _DATA)
        return message

    def _take(self, run: _Run, connection: SmtpConnection) -> _Prepared | None:
        """The next message to send on `connection`, ready for the wire; None when none is
        left, or a 421 stopped the run. Messages that cannot be written (on this server)
        get their error on the way."""
        while run.pending and run.pushback is None:
            index = run.pending.popleft()
            prepared = _prepare(
                index,
                run.batch[index],
                smtputf8=connection.smtputf8,
                size_limit=connection.size_limit,
            )
            if isinstance(prepared, _Prepared):
                return prepared
            run.settle(index, prepared)
        return None

    async def _open(
        self, connection: SmtpConnection, message: _Prepared, run: _Run, *, pipelined: bool
    ) -> bool:
        """Start the transaction of `message`, up to DATA's 354 (MAIL, RCPT and DATA are
        already written when pipelined). False when it did not start: its result is set
        (or it is queued again), and the connection is idle or closed."""
        index = message.position
        stage = "MAIL FROM"
        replies: list[Reply] = []
        try:
            if not pipelined:
                connection.write(message.mail)
            try:
                replies.append(await connection.reply())
            except ConnectionLost:
                self._lost_before_start(run, index)
                return False
            if pipelined:
                # After a 421 the server closes: no more replies will come.
                while len(replies) < len(_STEPS) and replies[-1].code != 421:
                    stage = _STEPS[len(replies)][0]
                    replies.append(await connection.reply())
            elif replies[0].code // 100 == 2:
                stage = "RCPT TO"
                replies.append(await connection.command(message.rcpt))
                if replies[1].code // 100 == 2:
                    stage = "DATA"
                    replies.append(await connection.command(_DATA))
        except SmtpError as exc:  # disconnect, reset, timeout: the connection is closed
            run.settle(index, TransientSendError(f"{stage}: connection lost: {_describe(exc)}"))
            return False
        refused = [
            (step, reply)
            for (step, ok), reply in zip(_STEPS, replies, strict=False)
            if reply.code // 100 != ok
        ]
        if not refused:
            return True
        # The first refusal is the reason (a 503 to DATA after a refused RCPT is only its
        # echo), unless a later reply is a 421: then the server is closing the connection.
        stage, reply = next(((s, r) for s, r in refused if r.code == 421), refused[0])
        run.settle(index, self._refused(connection, run, stage, reply))
        try:
            if connection.is_open and len(replies) == 3 and replies[2].code == 354:
                # DATA accepted despite the refusal: a lone "." ends it (RFC 2920 §3.1).
                await connection.command(_END_ONLY)
            await self._reset(connection)
        except SmtpError:
            pass  # the connection is closed; the next message goes on a new one
        return False

    async def _finish(
        self, connection: SmtpConnection, message: _Prepared, run: _Run, *, last: bool
    ) -> Result:
        """The outcome of `message`, whose content was written. RSET after a refusal when
        it was the `last` on the wire."""
        try:
            await connection.drain()
            reply = await connection.reply()
        except SmtpError as exc:  # the connection is closed: the message may have arrived
            return TransientSendError(f"DATA: connection lost: {_describe(exc)}")
        if reply.code // 100 == 2:
            return Sent(_provider_id(reply.text, message.content))
        error = self._refused(connection, run, "DATA", reply)
        if last:
            await self._reset(connection)
        return error

    def _refused(
        self, connection: SmtpConnection, run: _Run, stage: str, reply: Reply
    ) -> SendError:
        """The error for a refusal at `stage`; a 421 also stops the run (push-back)."""
        reason = f"{stage}: {reply}"
        if reply.code == 421 or not 400 <= reply.code < 600:
            # 421: the server closes this connection (RFC 5321 §3.8); anything else is
            # not a reply we understand, so the session state is unknown.
            connection.close()
        if 500 <= reply.code < 600:
            if stage != "MAIL FROM" and refuses_address(reply):
                return RecipientRefused(reason)
            return PermanentSendError(reason)
        error = self._transient(reason, reply)
        if error.retry_after is not None and run.pushback is None:
            run.pushback = TransientSendError(
                f"not sent: the server pushed back ({reason})",
                retry_after=error.retry_after,
                attempted=False,
            )
        return error

    def _transient(self, reason: str, reply: Reply) -> TransientSendError:
        """A transient error; after a 421, one that asks the dispatcher to hold off."""
        if reply.code == 421 and self.settings.pushback_seconds > 0:
            return TransientSendError(reason, retry_after=self.settings.pushback_seconds)
        return TransientSendError(reason)

    def _lost_before_start(self, run: _Run, index: int) -> None:
        """The connection had gone before MAIL FROM was answered, so nothing of the message
        was transferred: it goes again, once, on another connection (after a 421 it waits
        with the rest)."""
        if run.pushback is not None:
            run.pending.appendleft(index)
        elif index not in run.retried:
            run.retried.add(index)
            run.pending.appendleft(index)
        else:
            run.settle(index, TransientSendError("MAIL FROM: connection lost"))

    async def _reset(self, connection: SmtpConnection) -> None:
        """RSET after a refused transaction, or drop the connection if even that fails."""
        if not connection.is_open:
            return
        try:
            reply = await connection.command(_RSET)
        except SmtpError:
            return  # closed
        if reply.code != 250:
            connection.close()


_ENHANCED: Final = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})\b")
_ADDRESS_CODES: Final = frozenset({550, 551, 553})  # mailbox unavailable, not local, bad name


def refuses_address(reply: Reply) -> bool:
    """Whether a 5xx reply to RCPT TO or to a message's content says the address itself
    takes no mail (a hard bounce), not that this connection, sender or content was
    refused: the enhanced status (RFC 3463) is an addressing one (5.1.x: no such user,
    no such domain) or 5.2.1 (mailbox disabled); without one, the code is 550, 551 or
    553. Never 5.7.x (relay denied, authentication required, policy), 552 (too large)
    or 554 (transaction failed): a misconfigured relay refuses every recipient, and must
    not suppress a whole list."""
    if not 500 <= reply.code < 600:
        return False
    enhanced = _ENHANCED.match(reply.text.lstrip())
    if enhanced is not None:
        subject, detail = enhanced[2], enhanced[3]
        return enhanced[1] == "5" and (subject == "1" or (subject, detail) == ("2", "1"))
    return reply.code in _ADDRESS_CODES


def helo_refusal(helo: str, addresses: Sequence[IPAddress]) -> str | None:
    """Why `helo` must not be given to a server at `addresses`, or None: a name that is
    not fully qualified (`localhost`, a bare host name) goes to a server on loopback
    only (a local relay); any other server refuses it or scores every message as spam."""
    if is_fqdn(helo) or helo.startswith("["):
        return None
    if all(address.is_loopback for address in addresses):
        return None
    return (
        f"the HELO name {helo!r} is not a fully qualified domain name, which receiving "
        "servers refuse or score as spam: set TIDINGS_SMTP_HELO_NAME (or this connection's "
        "settings.helo_name) to this host's public name, e.g. mail.example.com"
    )


def _prepare(
    index: int, message: Outgoing, *, smtputf8: bool, size_limit: int | None
) -> _Prepared | PermanentSendError:
    """`message` ready for the wire, for a server that offers SMTPUTF8 or not: an address
    with a non-ASCII local part goes in an SMTPUTF8 transaction, and fails (permanently:
    the server will not change its mind) where the server offers none. Where the server
    offers SIZE (RFC 1870), MAIL FROM declares the message's size, and a message over the
    server's limit fails before anything of it is sent."""
    if message.sender is None:
        return PermanentSendError("no sender address for MAIL FROM")
    # The reason names whose address, not the address: it is logged, and logs hold no
    # recipient (docs/monitoring.md).
    utf8 = [w for w, a in (("recipient", message.recipient), ("sender", message.sender))
            if needs_smtputf8(a)]  # fmt: skip
    if utf8 and not smtputf8:
        return PermanentSendError(
            f"the server does not offer SMTPUTF8 (RFC 6531), needed for the {utf8[0]}'s "
            "address (its local part is not ASCII)"
        )
    try:
        content = (
            message.content
            if isinstance(message.content, bytes)
            else message.content.encode("ascii")
        )
    except UnicodeEncodeError:
        return PermanentSendError("content is not bytes nor ASCII text")
    if size_limit and len(content) > size_limit:
        return PermanentSendError(
            f"the message is {len(content)} bytes; the server takes at most {size_limit} "
            "(its SIZE, RFC 1870)"
        )
    try:
        mail = mail_command(message.sender, smtputf8=bool(utf8))
    except BadAddress as exc:
        return PermanentSendError(f"MAIL FROM: {exc}")
    if size_limit is not None:
        mail = with_size(mail, len(content))
    try:
        rcpt = rcpt_command(message.recipient, smtputf8=bool(utf8))
    except BadAddress as exc:
        return PermanentSendError(f"RCPT TO: {exc}")
    return _Prepared(index, mail, rcpt, data_payload(content), content)


def _is_helo_name(name: str) -> bool:
    return bool(name) and name.isascii() and name.isprintable() and " " not in name


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _provider_id(reply: str, content: bytes) -> str:
    """The queue id in the server's answer to DATA, else the message's Message-ID, else
    that answer itself."""
    queued = _QUEUE_ID.search(reply)
    if queued:
        return queued.group(1)
    head_end = content.find(b"\r\n\r\n")
    found = _MESSAGE_ID.search(content, 0, len(content) if head_end < 0 else head_end)
    if found:
        return found.group(1).decode("ascii", "replace")
    return reply


# ── the connection kind (see channels/provider.py) ──────────────────────────────────


class BounceImapSettings(Schema):
    """The mailbox bounces and complaints arrive in; polled, see docs/bounces.md."""

    host: str = Field(min_length=1, max_length=255)
    port: int = Field(default=993, ge=1, le=65535)
    security: Literal["tls", "starttls", "none"] = "tls"
    username: str = Field(min_length=1, max_length=255)
    mailbox: str = Field(default="INBOX", min_length=1, max_length=255)
    validate_certs: bool = True


HeloName = Annotated[str, AfterValidator(helo_name)]
"""A fully qualified name or an address literal (`net/hostnames.py`)."""


class SmtpSettingsIn(Schema):
    host: str = Field(min_length=1, max_length=255)
    helo_name: HeloName | None = Field(
        default=None,
        max_length=255,
        description=(
            "The name given in EHLO: this sender's fully qualified name or an address "
            "literal; unset, TIDINGS_SMTP_HELO_NAME or the public URL's host"
        ),
    )
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    pool_size: int = Field(default=4, ge=1, le=64)
    timeout: float = Field(default=30.0, gt=0, le=300)
    validate_certs: bool = True
    pipelining: bool = Field(default=True, description="RFC 2920, where the server offers it")
    pushback_seconds: float = Field(
        default=60.0, ge=0, le=3600, description="How long a 421 stops the connection (0: never)"
    )
    bounce_imap: BounceImapSettings | None = Field(
        default=None, description="An IMAP mailbox of DSNs and ARF reports to poll"
    )


class SmtpCredentials(Schema):
    username: str | None = None
    password: str | None = None
    report_secret: str | None = Field(
        default=None,
        pattern=r"^whsec_[A-Za-z0-9+/]{32,}={0,2}$",
        description="Standard Webhooks secret of generic reports to /reports/{connection_id}/json",
    )
    bounce_token: str | None = Field(
        default=None,
        min_length=24,
        max_length=128,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Secret of the bounce URL /bounces/{connection_id}/{bounce_token}",
    )
    bounce_imap_password: str | None = Field(default=None, description="For bounce_imap")


def _addresses(settings: SmtpSettingsIn) -> list[Address]:
    found = [Address("host", settings.host, settings.port)]
    if settings.bounce_imap is not None:
        imap = settings.bounce_imap
        found.append(Address("bounce_imap.host", imap.host, imap.port))
    return found


def _build(spec: ConnectionSpec, db: Database) -> SmtpChannel:
    """The channel of a stored connection: its own `helo_name`, else the operator's
    (`Settings.smtp_helo`: TIDINGS_SMTP_HELO_NAME or the public URL's host)."""
    given = options(spec)
    given["helo_name"] = given.get("helo_name") or db.settings.smtp_helo
    return SmtpChannel(SmtpSettings(**given), policy=db.settings.outbound_policy)


PROVIDER = Provider(
    kind="smtp",
    channels=frozenset({"email"}),
    settings=SmtpSettingsIn,
    credentials=SmtpCredentials,
    build=_build,
    addresses=_addresses,
)
