"""The SMTP channel: delivers built messages over a pool of long-lived connections.

    send(batch) ──▶ up to `pool_size` workers, each holding one pooled connection
                    worker: connect if needed ──▶ take the next message ──▶ one transaction
                            MAIL FROM:<sender> ──▶ RCPT TO:<recipient> ──▶ DATA <content>
                            (RSET after a refused transaction, so the connection goes on)
                ──▶ one Result per message, in input order

Connections open lazily and stay open between batches. A connection that breaks is
dropped and the worker opens a new one for its next message; one that the server closed
while it sat idle is noticed at MAIL FROM, before anything was transferred, and the
message goes again on a fresh connection. A worker that cannot connect stops and leaves
its share to the others; what nobody could take fails with the connect error.

Replies map to errors as RFC 5321 §4.2.1 reads them: 4xx is transient, 5xx permanent.
Breakage (disconnect, reset, timeout, refused connection, DNS, TLS) is transient. A 5xx
answer to AUTH is permanent: no message can go with those credentials, so all that no
logged-in connection took fail with "authentication failed". `send` never raises; every
problem becomes a result.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

import aiosmtplib

from tidings.channels.base import (
    Outgoing,
    PermanentSendError,
    Result,
    SendError,
    Sent,
    TransientSendError,
)

__all__ = ["SmtpChannel", "SmtpSettings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    """Where and how to connect. `security` is "starttls" (upgrade required, never sent in
    the clear), "tls" (implicit TLS, usually port 465) or "none". `timeout` bounds the
    connect and every single reply, in seconds. `helo_name` is the name given in EHLO;
    None means this host's fully qualified name."""

    host: str
    port: int = 587
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    pool_size: int = 4
    validate_certs: bool = True
    helo_name: str | None = None

    def __post_init__(self) -> None:
        if self.pool_size < 1:
            raise ValueError("pool_size must be at least 1")


# "250 2.0.0 Ok: queued as 4XyZ12" (Postfix and most MTAs), "250 OK id=1rAbCd-0001Xy-Zz"
# (Exim).
_QUEUE_ID: Final = re.compile(r"(?:\bqueued as|\bid=)\s*<?([\w.@+-]+?)>?\.?(?:\s|$)", re.I)
_MESSAGE_ID: Final = re.compile(rb"^message-id:[ \t]*<?([^\s<>]+)>?", re.I | re.M)


class _Retry:
    """The connection had died before the message started; send it again elsewhere."""


_RETRY: Final = _Retry()


@dataclass(slots=True)
class _Run:
    """One `send` call, shared by its workers (one event loop, so no locking)."""

    batch: Sequence[Outgoing]
    pending: deque[int]
    results: list[Result | None]
    retried: set[int] = field(default_factory=set)
    unreachable: SendError | None = None  # the last connect failure, for what is left


class SmtpChannel:
    """A `Channel` for one SMTP server and one set of credentials.

    At most `pool_size` connections are open at once, across concurrent `send` calls.
    `close()` ends them with QUIT; a closed channel answers every later message with a
    TransientSendError, so a batch caught by a shutdown is retried, not lost.
    """

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._idle: list[aiosmtplib.SMTP] = []
        self._slots = asyncio.Semaphore(settings.pool_size)
        self._closed = False
        self._new_client()  # aiosmtplib rejects bad settings now rather than at first send

    async def send(self, batch: Sequence[Outgoing]) -> Sequence[Result]:
        """One result per message of `batch`, in order; never raises (but for cancellation)."""
        if self._closed:
            return [TransientSendError("SMTP channel is closed")] * len(batch)
        run = _Run(batch, deque(range(len(batch))), [None] * len(batch))
        async with asyncio.TaskGroup() as workers:
            for _ in range(min(self.settings.pool_size, len(batch))):
                workers.create_task(self._work(run))
        leftover = run.unreachable or TransientSendError("no SMTP connection")
        return [leftover if result is None else result for result in run.results]

    async def close(self) -> None:
        """QUIT and close every idle connection; those in use close when their batch ends."""
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(self._quit(smtp) for smtp in idle))

    # --- workers ---------------------------------------------------------------------

    async def _work(self, run: _Run) -> None:
        """Send messages of `run` one after another on one pooled connection."""
        async with self._slots:
            smtp = self._idle.pop() if self._idle else self._new_client()
            reusable = False
            try:
                while run.pending:
                    if not smtp.is_connected:
                        error = await self._connect(smtp)
                        if error is not None:
                            # Other workers may still get through (past a per-client
                            # connection limit, or on connections that logged in before the
                            # password changed); this one leaves its share to them.
                            run.unreachable = error
                            return
                    if not run.pending:  # the others took the rest while we connected
                        break
                    index = run.pending.popleft()
                    result = await self._deliver_guarded(smtp, run.batch[index])
                    if isinstance(result, _Retry) and index not in run.retried:
                        run.retried.add(index)
                        run.pending.appendleft(index)
                    elif isinstance(result, _Retry):
                        run.results[index] = TransientSendError("MAIL FROM: connection lost")
                    else:
                        run.results[index] = result
                reusable = True
            finally:
                # A cancelled or failed worker may leave a transaction half done.
                if reusable and smtp.is_connected and not self._closed:
                    self._idle.append(smtp)
                else:
                    smtp.close()

    def _new_client(self) -> aiosmtplib.SMTP:
        settings = self.settings
        return aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.port,
            local_hostname=settings.helo_name,
            timeout=settings.timeout,
            use_tls=settings.security == "tls",
            # True, not aiosmtplib's default None (upgrade if offered): a server that stops
            # offering STARTTLS must not get the mail and the password in the clear.
            start_tls=settings.security == "starttls",
            validate_certs=settings.validate_certs,
        )

    async def _connect(self, smtp: aiosmtplib.SMTP) -> SendError | None:
        """Open, greet, upgrade and log in; the error that stopped it, if any."""
        settings = self.settings
        where = f"{settings.host}:{settings.port}"
        try:
            await smtp.connect()
            if smtp.is_ehlo_or_helo_needed:
                # Greet now, so that a refused EHLO counts against the connection rather
                # than against the first message.
                try:
                    await smtp.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await smtp.helo()
            if settings.username is not None:
                if not smtp.supports_extension("auth"):
                    smtp.close()
                    return PermanentSendError(f"authentication failed: {where} does not offer AUTH")
                await smtp.login(settings.username, settings.password or "")
        except aiosmtplib.SMTPAuthenticationError as exc:
            smtp.close()
            reason = f"authentication failed: {_reply(exc)}"
            return PermanentSendError(reason) if exc.code >= 500 else TransientSendError(reason)
        except aiosmtplib.SMTPResponseException as exc:  # greeting, EHLO or STARTTLS refused
            smtp.close()
            return TransientSendError(f"cannot connect to {where}: {_reply(exc)}")
        except (aiosmtplib.SMTPException, OSError) as exc:  # refused, DNS, TLS, timeout
            smtp.close()
            return TransientSendError(f"cannot connect to {where}: {_describe(exc)}")
        return None

    async def _deliver_guarded(self, smtp: aiosmtplib.SMTP, message: Outgoing) -> Result | _Retry:
        # Raising here would lose the results of messages already delivered in this batch,
        # and the dispatcher would send them twice; a bug costs one message instead.
        try:
            return await self._deliver(smtp, message)
        except Exception as exc:
            log.exception("unexpected error sending message %s", message.message_id)
            smtp.close()
            return TransientSendError(f"unexpected error: {exc!r}")

    async def _deliver(self, smtp: aiosmtplib.SMTP, message: Outgoing) -> Result | _Retry:
        """One transaction on a connected `smtp`, which is left reusable or closed."""
        if message.sender is None:
            return PermanentSendError("no sender address for MAIL FROM")
        try:
            content = (
                message.content
                if isinstance(message.content, bytes)
                else message.content.encode("ascii")
            )
        except UnicodeEncodeError:
            return PermanentSendError("content is not bytes nor ASCII text")
        stage = "MAIL FROM"
        try:
            try:
                await smtp.mail(message.sender)
            except aiosmtplib.SMTPServerDisconnected:
                return _RETRY  # nothing was transferred: an idle connection the server shut
            stage = "RCPT TO"
            await smtp.rcpt(message.recipient)
            stage = "DATA"
            reply = await smtp.data(content)
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421 or not 400 <= exc.code < 600:
                # 421: the server closes this connection (RFC 5321 §3.8); anything else is
                # not a reply we understand, so the session state is unknown.
                smtp.close()
            else:
                await self._reset(smtp)
            reason = f"{stage}: {_reply(exc)}"
            if 500 <= exc.code < 600:
                return PermanentSendError(reason)
            return TransientSendError(reason)
        except ValueError as exc:  # an address that cannot go on a command line
            await self._reset(smtp)
            return PermanentSendError(f"{stage}: {exc}")
        except (aiosmtplib.SMTPException, OSError) as exc:  # disconnect, reset, timeout
            smtp.close()
            return TransientSendError(f"{stage}: connection lost: {_describe(exc)}")
        return Sent(_provider_id(reply.message, content))

    async def _reset(self, smtp: aiosmtplib.SMTP) -> None:
        """RSET after a refused transaction, or drop the connection if even that fails."""
        if not smtp.is_connected:
            return
        try:
            await smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            smtp.close()

    async def _quit(self, smtp: aiosmtplib.SMTP) -> None:
        try:
            if smtp.is_connected:
                await smtp.quit()
        except (aiosmtplib.SMTPException, OSError):
            pass  # closing anyway
        finally:
            smtp.close()


def _reply(exc: aiosmtplib.SMTPResponseException) -> str:
    text = " ".join(exc.message.split())  # multi-line replies arrive joined by newlines
    return f"{exc.code} {text}"


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
