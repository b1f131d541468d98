"""The "test this connection" check: can Tidings reach the hosts a connection names?

    result = await probe(connection, policy=settings.outbound_policy)
    result.ok, result.lines      # True, ["host: connected to smtp.example.com:587, …"]

For each address the kind's settings name (`Provider.addresses`: an SMTP host, a
gateway URL's host, an IMAP bounce mailbox) it vets the host with the operator's
outbound policy (`net/ssrf.py`), as the channel does when it connects, then opens a TCP
connection to the vetted address and reads a greeting if the server speaks first (SMTP
and IMAP do). It does not sign in and sends nothing: the credentials are not used, so
a wrong password shows at the first send, not here. A kind that reaches no host (the
sink) says so and passes.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from pydantic import ValidationError

from tidings.channels.registry import PROVIDERS
from tidings.connections.models import Connection
from tidings.net.ssrf import OutboundPolicy, Resolver, UnsafeURL

CONNECT_SECONDS = 5.0
GREETING_SECONDS = 1.0


@dataclass(slots=True)
class Probe:
    ok: bool = True
    lines: list[str] = field(default_factory=list)

    def fail(self, line: str) -> None:
        self.ok = False
        self.lines.append(line)


async def _greeting(reader: asyncio.StreamReader) -> str:
    try:
        line = await asyncio.wait_for(reader.readline(), GREETING_SECONDS)
    except TimeoutError:
        return ""
    return line.decode("utf-8", errors="replace").strip()[:120]


async def probe(
    connection: Connection,
    *,
    policy: OutboundPolicy,
    resolver: Resolver | None = None,
    connect_seconds: float = CONNECT_SECONDS,
) -> Probe:
    """Open each host of `connection` (see the module docstring); never raises."""
    result = Probe()
    provider = PROVIDERS.get(connection.kind)
    if provider is None:
        result.fail(f"unknown kind {connection.kind!r}")
        return result
    try:
        settings = provider.settings.model_validate(connection.settings)
    except ValidationError as exc:
        result.fail(f"the stored settings do not validate: {exc.error_count()} error(s)")
        return result
    addresses = provider.addresses(settings)
    if not addresses:
        result.lines.append(f"a {connection.kind} connection reaches no host: nothing to open")
        return result
    for address in addresses:
        where = f"{address.field}: {address.host}:{address.port}"
        try:
            vetted = await policy.vet(address.host, address.port, resolver=resolver)
        except UnsafeURL as exc:
            result.fail(f"{where} refused: {exc.reason}")
            continue
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(str(vetted[0]), address.port), connect_seconds
            )
        except TimeoutError:
            result.fail(f"{where} did not answer within {connect_seconds:g} s")
            continue
        except OSError as exc:
            result.fail(f"{where} unreachable: {exc.strerror or exc}")
            continue
        try:
            said = await _greeting(reader)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        result.lines.append(f"{where} connected" + (f"; it said {said!r}" if said else ""))
    return result
