"""Polling an IMAP bounce mailbox (the smtp connection's `bounce_imap` setting).

    poll_once(connection) ── vet the host (the operator's outbound policy, tidings.net.ssrf)
        └─ thread: connect to a vetted address (the name kept for TLS), LOGIN, SELECT,
                   UID SEARCH UNSEEN, UID FETCH BODY.PEEK[]
        └─ each message: service.process (own transaction)
        └─ thread: UID STORE +FLAGS (\\Seen) for the messages processed

The mailbox holds the state: a message is marked \\Seen only after it was applied, so a
crash between the two reads it again, and applying a report twice changes nothing. No
database state is needed. Messages that are not reports are marked \\Seen too.
`BouncePoller` polls every connection that has `bounce_imap`, every
`TIDINGS_BOUNCE_POLL_SECONDS`, beside the dispatcher; `tidings bounces poll` polls once.
"""

from __future__ import annotations

import asyncio
import contextlib
import imaplib
import logging
import socket
import ssl
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from tidings.bounces import service
from tidings.connections.models import Connection
from tidings.db.engine import Database
from tidings.net.ssrf import OutboundPolicy

log = logging.getLogger(__name__)

BATCH = 100  # messages per poll and connection: a huge backlog drains over several polls


@dataclass(frozen=True, slots=True)
class Mailbox:
    host: str
    port: int
    security: str  # tls, starttls, none
    username: str
    password: str
    mailbox: str = "INBOX"
    validate_certs: bool = True
    timeout: float = 30.0

    @property
    def where(self) -> str:
        """username@host:port/mailbox: names the mailbox, never the password."""
        return f"{self.username}@{self.host}:{self.port}/{self.mailbox}"

    @classmethod
    def of(cls, connection: Connection) -> Mailbox | None:
        config: dict[str, Any] | None = connection.settings.get("bounce_imap")
        if connection.kind != "smtp" or not config:
            return None
        return cls(
            host=config["host"],
            port=config.get("port", 993),
            security=config.get("security", "tls"),
            username=config["username"],
            password=connection.credentials.get("bounce_imap_password") or "",
            mailbox=config.get("mailbox", "INBOX"),
            validate_certs=config.get("validate_certs", True),
        )


def _connected(addresses: Sequence[str], port: int, timeout: float | None) -> socket.socket:
    """A TCP connection to the first of `addresses` that takes one."""
    error: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as exc:
            error = exc
    raise error or OSError("no address to connect to")


class _IMAP4(imaplib.IMAP4):
    """imaplib's client, connecting to vetted addresses rather than resolving the name."""

    def __init__(self, host: str, port: int, *, addresses: Sequence[str], timeout: float) -> None:
        self._addresses = addresses
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        return _connected(self._addresses, self.port, timeout)


class _IMAP4_SSL(imaplib.IMAP4_SSL):  # noqa: N801 (imaplib's name)
    """The same over implicit TLS; the certificate is checked against the host's name."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        addresses: Sequence[str],
        ssl_context: ssl.SSLContext,
        timeout: float,
    ) -> None:
        self._addresses = addresses
        super().__init__(host, port, ssl_context=ssl_context, timeout=timeout)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        raw = _connected(self._addresses, self.port, timeout)
        wrapped: socket.socket = self.ssl_context.wrap_socket(raw, server_hostname=self.host)
        return wrapped


async def vetted(db: Database, box: Mailbox) -> list[str]:
    """The addresses of the mailbox's host that the operator's outbound policy allows,
    else UnsafeURL (`tidings.net.ssrf`; `Unresolved` when the name does not resolve)."""
    policy: OutboundPolicy = db.settings.outbound_policy
    return [str(address) for address in await policy.vet(box.host, box.port)]


@contextlib.contextmanager
def _session(box: Mailbox, addresses: Sequence[str]) -> Iterator[imaplib.IMAP4]:
    context = ssl.create_default_context()
    if not box.validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    imap: imaplib.IMAP4
    if box.security == "tls":
        imap = _IMAP4_SSL(
            box.host, box.port, addresses=addresses, ssl_context=context, timeout=box.timeout
        )
    else:
        imap = _IMAP4(box.host, box.port, addresses=addresses, timeout=box.timeout)
        if box.security == "starttls":
            imap.starttls(context)
    try:
        imap.login(box.username, box.password)
        status, _ = imap.select(_quoted(box.mailbox))
        if status != "OK":
            raise imaplib.IMAP4.error(f"SELECT {box.mailbox}: {status}")
        yield imap
    finally:
        with contextlib.suppress(Exception):
            imap.logout()


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def fetch_unseen(
    box: Mailbox, addresses: Sequence[str], *, limit: int = BATCH
) -> list[tuple[bytes, bytes]]:
    """(uid, raw message) of up to `limit` unseen messages, left unseen (blocking); the
    connection goes to the first of the (vetted) `addresses` that answers."""
    with _session(box, addresses) as imap:
        _, data = imap.uid("SEARCH", "UNSEEN")
        uids = (data[0] or b"").split()[:limit] if data else []
        found = []
        for uid in uids:
            _, parts = imap.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
            raw = next((p[1] for p in parts if isinstance(p, tuple)), None)
            if isinstance(raw, bytes):
                found.append((uid, raw))
        return found


def mark_seen(box: Mailbox, addresses: Sequence[str], uids: list[bytes]) -> None:
    """Flag these messages \\Seen (blocking)."""
    if not uids:
        return
    with _session(box, addresses) as imap:
        imap.uid("STORE", b",".join(uids).decode(), "+FLAGS.SILENT", "(\\Seen)")


@dataclass(frozen=True, slots=True)
class Polled:
    """One poll of one mailbox: how many unseen messages were read (reports or not, all
    now \\Seen) and the outcome of each report in them (see `service.process`)."""

    connection_id: int
    org_id: int
    name: str
    mailbox: str  # username@host:port/mailbox, no password
    messages: int
    outcomes: list[str]


async def mailbox_connections(db: Database, *, org_id: int | None = None) -> list[int]:
    """The ids of the smtp connections that have a `bounce_imap` mailbox (of one org)."""
    query = (
        select(Connection)
        .where(Connection.kind == "smtp", Connection.deleted_at.is_(None))
        .order_by(Connection.id)
    )
    if org_id is not None:
        query = query.where(Connection.org_id == org_id)
    async with db.session() as session:
        return [c.id for c in await session.scalars(query) if Mailbox.of(c) is not None]


async def poll(
    db: Database,
    *,
    connection_id: int,
    soft_bounce_limit: int,
    fallback_window: timedelta = service.FALLBACK_WINDOW,
) -> Polled | None:
    """Read the connection's unseen messages, apply the reports in them, mark them seen;
    None when the connection has no bounce mailbox. IMAP and network errors propagate,
    and so does UnsafeURL when the operator's outbound policy refuses the host."""
    async with db.session() as session:
        connection = await session.get(Connection, connection_id)
        box = Mailbox.of(connection) if connection is not None else None
        if connection is None or box is None:
            return None
        org_id, name = connection.org_id, connection.name
    addresses = await vetted(db, box)
    messages = await asyncio.to_thread(fetch_unseen, box, addresses)
    outcomes: list[str] = []
    done = []
    for uid, raw in messages:
        async with db.transaction() as session:
            outcomes += await service.process(
                session, org_id=org_id, raw=raw, soft_bounce_limit=soft_bounce_limit,
                fallback_window=fallback_window,
            )  # fmt: skip
        done.append(uid)
    await asyncio.to_thread(mark_seen, box, addresses, done)
    return Polled(connection_id, org_id, name, box.where, len(messages), outcomes)


async def poll_once(
    db: Database,
    *,
    connection_id: int,
    soft_bounce_limit: int,
    fallback_window: timedelta = service.FALLBACK_WINDOW,
) -> list[str]:
    """Read the connection's unseen reports, apply them, mark them seen. Returns the
    outcome of every report read (see `service.process`)."""
    polled = await poll(
        db, connection_id=connection_id, soft_bounce_limit=soft_bounce_limit,
        fallback_window=fallback_window,
    )  # fmt: skip
    return polled.outcomes if polled is not None else []


class BouncePoller:
    """Polls every smtp connection with `bounce_imap` every `interval` seconds until `stop`."""

    def __init__(
        self,
        db: Database,
        *,
        interval: float,
        soft_bounce_limit: int,
        fallback_window: timedelta = service.FALLBACK_WINDOW,
    ) -> None:
        self.db = db
        self.interval = interval
        self.soft_bounce_limit = soft_bounce_limit
        self.fallback_window = fallback_window

    async def poll_all(self) -> None:
        for connection_id in await mailbox_connections(self.db):
            try:
                await poll_once(
                    self.db, connection_id=connection_id, soft_bounce_limit=self.soft_bounce_limit,
                    fallback_window=self.fallback_window,
                )  # fmt: skip
            except Exception:  # one unreachable mailbox must not stop the others
                log.exception("bounce mailbox of connection %s", connection_id)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                await self.poll_all()
            except Exception:  # listing the mailboxes: a database hiccup must not end the loop
                log.exception("bounce mailboxes")
            else:
                log.debug("bounce mailboxes polled in %.3f s", time.perf_counter() - started)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
