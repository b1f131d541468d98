"""What every HTTP SMS provider shares: the client, the status classification, redaction.

    2xx                          success; the provider module reads its id
    429                          TransientSendError, `retry_after` from Retry-After
    408, 5xx                     TransientSendError (Retry-After honoured when present)
    no answer (refused, timeout, TransientSendError "connection failed: no answer from the
      reset, DNS)                gateway", whatever the cause (the cause is logged)
    any other status             PermanentSendError: the status and a short excerpt
    bad gateway URL              PermanentSendError (no retry will make it valid)
    address refused              PermanentSendError "refused: …" (`tidings.net.ssrf`: the
                                 operator's TIDINGS_OUTBOUND_ALLOW does not admit it)

Every connection goes through `tidings.net.ssrf.guarded_client`: the gateway's host is
resolved and vetted against the operator's policy at each connection, the vetted address
is the one connected to, and redirects are not followed.

A reason is stored on the message and shown to the org, so it never holds a credential
nor more than an excerpt of what the gateway said: every reason passes through `redact`
with the channel's secrets, because gateways do echo what they were sent (a Kannel URL
with its password, an API key in an error page), then `excerpt` (one line, printable,
at most 200 characters). A refused connection and a timeout read the same, so the
reasons do not tell an open port from a closed one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Final, TypeVar

import httpx

from tidings.channels.base import Outgoing, PermanentSendError, SendError, TransientSendError
from tidings.net.answers import EXCERPT_CHARS
from tidings.net.answers import excerpt as _bounded
from tidings.net.ssrf import STRICT, OutboundPolicy, Unresolved, UnsafeURL, guarded_client

T = TypeVar("T")
R = TypeVar("R")

# Connecting is quick or broken; a gateway may take a while to answer a large request.
DEFAULT_TIMEOUT: Final = httpx.Timeout(30.0, connect=5.0)
REDACTED: Final = "[redacted]"
NO_ANSWER: Final = "connection failed: no answer from the gateway"
_USER_AGENT: Final = "tidings"

log = logging.getLogger(__name__)


def new_client(*, max_concurrency: int, policy: OutboundPolicy = STRICT) -> httpx.AsyncClient:
    """A client for one channel: pooled keep-alive connections, at most `max_concurrency`,
    each to an address `policy` allows (vetted when it opens).

    Redirects are not followed: a gateway that redirects a send is misconfigured, and
    following it would repeat a POST to a place nobody chose.
    """
    limits = httpx.Limits(
        max_connections=max_concurrency, max_keepalive_connections=max_concurrency
    )
    return guarded_client(
        policy=policy, timeout=DEFAULT_TIMEOUT, limits=limits, headers={"User-Agent": _USER_AGENT}
    )


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every occurrence of each non-empty secret replaced by a marker.

    Longer secrets go first, so a secret that contains another is removed whole.
    """
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def excerpt(text: str, secrets: Iterable[str] = ()) -> str:
    """A one-line, redacted, at most `EXCERPT_CHARS`-long rendering of a response body."""
    # Redact before flattening and truncating: truncation could cut a secret in half and
    # leave its start behind.
    return _bounded(redact(text, secrets), EXCERPT_CHARS)


def retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds or an HTTP date (RFC 9110).

    None when the header is absent or unreadable; a date in the past is 0.
    """
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 850 / asctime dates carry no zone; HTTP dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def status_error(
    response: httpx.Response, *, detail: str | None = None, secrets: Iterable[str] = ()
) -> SendError | None:
    """None for a 2xx response, else the classified error (see the module docstring).

    `detail` replaces the body excerpt in the reason when the provider module has read a
    structured error out of the body; it is redacted all the same.
    """
    status = response.status_code
    if 200 <= status < 300:
        return None
    what = excerpt(detail or response.text, secrets)
    reason = f"HTTP {status}: {what}" if what else f"HTTP {status}"
    if status in (408, 429) or status >= 500:
        wait = retry_after(response.headers.get("Retry-After"))
        return TransientSendError(reason, retry_after=wait)
    return PermanentSendError(reason)


def transport_error(exc: Exception, *, secrets: Iterable[str] = ()) -> SendError:
    """The error for a request that got no response at all.

    A URL the client cannot use (bad syntax, a scheme other than http/https) will not
    improve by waiting, so it is permanent, and so is an address the operator's policy
    refuses; everything else on the way (refused, reset, timed out, a broken HTTP
    exchange, a name that does not resolve) is transient, with one reason for all of
    them (`NO_ANSWER`: the tenant must not tell an open port from a closed one) and the
    cause in the operator's log.
    """
    if isinstance(exc, UnsafeURL) and not isinstance(exc, Unresolved):
        return PermanentSendError(f"refused: {exc.reason}")
    detail = redact(str(exc), secrets)
    name = type(exc).__name__
    reason = f"{name}: {detail}" if detail else name
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return PermanentSendError(f"invalid gateway URL ({reason})")
    log.warning("gateway request failed: %s", _bounded(reason, 500))
    return TransientSendError(NO_ANSWER)


# The exceptions `transport_error` classifies: what a request raises without a response.
REQUEST_ERRORS: Final = (httpx.TransportError, httpx.InvalidURL, UnsafeURL)


def json_body(response: httpx.Response) -> Any:
    """The response's JSON document, or None when it has none or it is not JSON."""
    try:
        return response.json()
    except ValueError:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None


def dig(document: Any, path: str) -> Any:
    """The value at a dotted path ("messages.0.id"); numbers index lists. None if absent."""
    node = document
    for step in path.split("."):
        if isinstance(node, dict):
            node = node.get(step)
        elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        else:
            return None
    return node


async def each_limited(
    items: Sequence[T],
    send_one: Callable[[T], Awaitable[R]],
    *,
    limit: asyncio.Semaphore,
) -> list[R]:
    """`send_one` over `items`, at most `limit` at a time, results in input order.

    A TaskGroup rather than gather: should `send_one` raise (a bug, not a send failure),
    the other requests are cancelled instead of left running unattended.
    """

    async def limited(item: T) -> R:
        async with limit:
            return await send_one(item)

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(limited(item)) for item in items]
    return [task.result() for task in tasks]


def sms_text(message: Outgoing) -> str:
    """The text of an SMS. It is a str by contract; bytes are decoded rather than sent raw."""
    content = message.content
    return content if isinstance(content, str) else content.decode("utf-8", "replace")


class HttpChannel:
    """The part every HTTP provider shares: one client, one concurrency limit, `close`.

    The client is the channel's own unless one is injected (tests, or a caller that
    shares a client between channels); only an owned client is closed by `close`. An
    owned client connects where `policy` (the operator's `TIDINGS_OUTBOUND_ALLOW`) allows. The
    limit is per channel, so two overlapping `send` calls together stay within it.
    """

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None,
        max_concurrency: int,
        policy: OutboundPolicy = STRICT,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self._owns_client = client is None
        self.client = (
            client
            if client is not None
            else new_client(max_concurrency=max_concurrency, policy=policy)
        )
        self._limit = asyncio.Semaphore(max_concurrency)

    async def close(self) -> None:
        if self._owns_client:
            await self.client.aclose()
