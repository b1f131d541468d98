"""Outbound HTTP to URLs that tenants give us, without reaching inside our network (SSRF).

An org's webhook URL is checked twice:

- **when saved**, `check_url(url)`: scheme `http` or `https`, no credentials in the URL, and
  the host resolved (`loop.getaddrinfo`, so numeric forms such as `2130706433` or
  `0x7f.1` resolve as the C library would) to addresses that are **all** public;
- **when sent**, by `guarded_transport()`: an httpx transport whose every TCP connection
  resolves the host, vets each address the same way, and connects to a vetted address
  (the name stays in the `Host` header and the TLS SNI). The check and the connect use
  the same answer, so a name that rebinds to 127.0.0.1 after the save is refused without a
  packet sent. The client built on it never follows redirects: a 3xx is the receiver's
  answer, not an instruction to fetch something else.

Refused: loopback, private (RFC 1918, RFC 4193), link-local (169.254/16 — with the cloud
metadata address 169.254.169.254 — and fe80::/10), unspecified, multicast, reserved and
other non-global ranges, CGNAT 100.64/10, NAT64 64:ff9b::/96; IPv4-mapped, IPv4-compatible
and 6to4 IPv6 addresses are judged by the IPv4 address they carry.

`allow_private` (the operator's `TIDINGS_WEBHOOK_ALLOW_PRIVATE`, for on-premise receivers)
admits loopback, private and CGNAT targets; link-local, unspecified, multicast and NAT64
stay refused, so the metadata service is never reachable.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""`(host, port) → addresses as text`; raises OSError when the name does not resolve."""

_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")


class UnsafeURL(Exception):
    """The URL, or an address its host resolves to, may not be fetched. `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Target:
    """A URL that passed the check, with the host, port and the addresses it resolved to."""

    url: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


async def system_resolver(host: str, port: int) -> Sequence[str]:
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _embedded_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _V4_COMPATIBLE and int(address) > 1:  # not :: or ::1, judged as they are
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: IPAddress, *, allow_private: bool = False) -> str | None:
    """Why `address` may not be connected to, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64 or address in _NAT64_LOCAL:
            return f"{address} is a NAT64 address"
        inner = _embedded_v4(address)
        if inner is not None:
            reason = refusal(inner, allow_private=allow_private)
            return f"{address} carries {reason}" if reason else None
    if address.is_unspecified:
        return f"{address} is unspecified"
    if address.is_link_local:
        return f"{address} is link-local (cloud metadata lives there)"
    if address.is_multicast:
        return f"{address} is multicast"
    if allow_private and (
        address.is_loopback
        or address.is_private
        or (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT)
    ):
        return None
    if address.is_loopback:
        return f"{address} is loopback"
    if address.is_private:
        return f"{address} is private"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return f"{address} is shared address space (CGNAT)"
    if address.is_reserved or not address.is_global:
        return f"{address} is not a public address"
    return None


def parse(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL we may try, else UnsafeURL. No I/O."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeURL("only http and https URLs are allowed")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("credentials in the URL are not allowed")
    host = parts.hostname
    if not host:
        raise UnsafeURL("the URL has no host")
    return scheme, host, port or (443 if scheme == "https" else 80)


async def vet(
    host: str, port: int, *, allow_private: bool = False, resolver: Resolver | None = None
) -> tuple[IPAddress, ...]:
    """Resolve `host`; every address must be allowed, else UnsafeURL naming the first that
    is not. Vetting all (not just the one we would use) keeps a round-robin name honest."""
    try:
        answers = await (resolver or system_resolver)(host, port)
    except (OSError, UnicodeError):
        raise UnsafeURL(f"{host} does not resolve") from None
    addresses: list[IPAddress] = []
    for text in answers:
        address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
        reason = refusal(address, allow_private=allow_private)
        if reason is not None:
            same = host.strip("[]") == text
            raise UnsafeURL(reason if same else f"{host} resolves to {reason}")
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnsafeURL(f"{host} does not resolve")
    return tuple(addresses)


async def check_url(
    url: str, *, allow_private: bool = False, resolver: Resolver | None = None
) -> Target:
    """The save-time check: a well-formed http(s) URL whose host resolves to allowed
    addresses only. Raises UnsafeURL."""
    _, host, port = parse(url)
    addresses = await vet(host, port, allow_private=allow_private, resolver=resolver)
    return Target(url=url, host=host, port=port, addresses=addresses)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to vetted addresses of the host asked for.

    Each new connection resolves and vets its host, then connects to the vetted addresses
    in turn. A refusal raises UnsafeURL before any socket is opened.
    """

    def __init__(
        self,
        *,
        allow_private: bool = False,
        resolver: Resolver | None = None,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.resolver = resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await vet(host, port, allow_private=self.allow_private, resolver=self.resolver)
        options = list(socket_options or ())
        error: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    str(address), port, timeout, local_address, options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise UnsafeURL("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool on a GuardedBackend. httpx takes no
    network backend, so the pool is rebuilt here with the same limits; proxies from the
    environment are ignored (a proxy would connect on our behalf, unchecked)."""

    def __init__(self, backend: GuardedBackend, *, limits: httpx.Limits = httpx.Limits()) -> None:
        super().__init__(trust_env=False, limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )


def guarded_client(
    *,
    allow_private: bool = False,
    timeout: float = 10.0,
    resolver: Resolver | None = None,
    inner: httpcore.AsyncNetworkBackend | None = None,
) -> httpx.AsyncClient:
    """An httpx client that connects only to vetted addresses and never follows redirects."""
    backend = GuardedBackend(allow_private=allow_private, resolver=resolver, inner=inner)
    return httpx.AsyncClient(
        transport=GuardedTransport(backend),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
