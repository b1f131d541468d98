"""Outbound connections to addresses that tenants give us, without reaching inside our
network (SSRF).

Every address Tidings connects to on a tenant's behalf — a webhook URL, a connection's
gateway URL (`http_sms`, `kannel`, `infobip`, `twilio`), an SMTP host, an IMAP bounce
mailbox — is checked twice, against one rule, the operator's `OutboundPolicy`:

- **when saved**, `policy.check_url(url)` or `policy.vet(host, port)`: for a URL, scheme
  `http` or `https` and no credentials in it; the host resolved (`loop.getaddrinfo`, so
  numeric forms such as `2130706433` or `0x7f.1` resolve as the C library would) to
  addresses that are **all** allowed;
- **when connected**, the same `vet` right before the connection, and the connection goes
  to a vetted address (the name stays in the `Host` header, the TLS SNI and the
  certificate check): `guarded_client()` does it for HTTP (an httpx transport whose every
  TCP connection is vetted; it never follows redirects: a 3xx is the receiver's answer,
  not an instruction to fetch something else), the SMTP channel and the IMAP poller do it
  themselves. The check and the connect use the same answer, so a name that rebinds to
  127.0.0.1 after the save is refused without a packet sent.

Refused by default: loopback, private (RFC 1918, RFC 4193), link-local (169.254/16 —
with the cloud metadata address 169.254.169.254 — and fe80::/10), unspecified, multicast,
reserved and other non-global ranges, CGNAT 100.64/10, NAT64 64:ff9b::/96; IPv4-mapped,
IPv4-compatible and 6to4 IPv6 addresses are judged by the IPv4 address they carry; and
the names of cloud metadata services (`metadata.google.internal`, …) whatever they
resolve to.

The operator opens networks and hosts with `TIDINGS_OUTBOUND_ALLOW` (`OutboundPolicy.parse`):
comma-separated networks (`10.0.0.0/8`, `192.168.1.20`, `fd00::/8`) admit every address
in them, and host names (`kannel.lan`) admit whatever non-public address that name
resolves to. Unspecified and multicast addresses are never admitted, and a cloud
metadata address only by an entry that names that single address. Every refusal of an
address names the setting.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]
"""`(host, port) → addresses as text`; raises OSError when the name does not resolve."""

SETTING: Final = "TIDINGS_OUTBOUND_ALLOW"
HINT: Final = f"the operator may allow it in {SETTING}"

_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_V4_COMPATIBLE = ipaddress.IPv6Network("::/96")

PRIVATE_NETWORKS: Final = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "::1/128",
        "fc00::/7",
    )
)
"""Loopback, private and CGNAT: what the retired `TIDINGS_WEBHOOK_ALLOW_PRIVATE` opened."""

METADATA_ADDRESSES: Final = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, Oracle, OpenStack, DigitalOcean …
        "169.254.170.2",  # AWS ECS task credentials
        "169.254.170.23",  # AWS EKS pod identity
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS pod identity over IPv6
        "100.100.100.200",  # Alibaba Cloud
    )
)
"""Cloud metadata services: admitted only by an entry that names the single address."""

METADATA_NAMES: Final = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
    }
)
"""Names of cloud metadata services: refused whatever they resolve to, unless listed."""

_HOST_NAME = re.compile(
    r"^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$"
)


class UnsafeURL(Exception):
    """The URL or address, or an address its host resolves to, may not be connected to.
    `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unresolved(UnsafeURL):
    """The host does not resolve (at connect time this is an outage, not a refusal)."""


@dataclass(frozen=True, slots=True)
class Target:
    """A URL that passed the check, with the host, port and the addresses it resolved to."""

    url: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


async def system_resolver(host: str, port: int) -> Sequence[str]:
    try:  # an address as written needs no lookup (nor a trip through the thread pool)
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
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


def refusal(address: IPAddress) -> str | None:
    """Why `address` is not public (so refused unless the operator allows it), or None."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64 or address in _NAT64_LOCAL:
            return f"{address} is a NAT64 address"
        inner = _embedded_v4(address)
        if inner is not None:
            reason = refusal(inner)
            return f"{address} carries {reason}" if reason else None
    if address.is_unspecified:
        return f"{address} is unspecified"
    if address in METADATA_ADDRESSES:
        return f"{address} is a cloud metadata address"
    if address.is_link_local:
        return f"{address} is link-local (cloud metadata lives there)"
    if address.is_multicast:
        return f"{address} is multicast"
    if address.is_loopback:
        return f"{address} is loopback"
    if address.is_private:
        return f"{address} is private"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return f"{address} is shared address space (CGNAT)"
    if address.is_reserved or not address.is_global:
        return f"{address} is not a public address"
    return None


def _never(address: IPAddress) -> bool:
    """Addresses no entry admits: nothing listens on them for us."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_v4(address)
        if inner is not None:
            return _never(inner)
    return address.is_unspecified or address.is_multicast


def _metadata(address: IPAddress) -> IPAddress | None:
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_v4(address)
        if inner is not None:
            return _metadata(inner)
    return address if address in METADATA_ADDRESSES else None


def host_key(host: str) -> str:
    """A host as compared with the policy's names: lower case, no brackets, no final dot."""
    return host.strip("[]").rstrip(".").lower()


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


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    """Where Tidings may connect on a tenant's behalf: public addresses, plus what the
    operator opened (`networks`, `hosts`; see the module docstring). The default policy
    opens nothing."""

    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, text: str) -> OutboundPolicy:
        """The policy of a `TIDINGS_OUTBOUND_ALLOW` value: comma-separated networks
        (CIDR, or a single address) and host names. ValueError names a bad entry."""
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        for raw in text.split(","):
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=True))
                continue
            except ValueError as exc:
                if "/" in entry or ":" in entry or entry.replace(".", "").isdigit():
                    raise ValueError(f"{entry!r} is not a network: {exc}") from None
            name = host_key(entry)
            if not _HOST_NAME.match(name):
                raise ValueError(f"{entry!r} is neither a network nor a host name")
            hosts.add(name)
        return cls(tuple(networks), frozenset(hosts))

    def widened(self, networks: Iterable[IPNetwork]) -> OutboundPolicy:
        """This policy with more networks open."""
        return OutboundPolicy((*self.networks, *networks), self.hosts)

    def refusal(self, address: IPAddress, *, listed_name: bool = False) -> str | None:
        """Why `address` may not be connected to, or None when it may. `listed_name`:
        the host name it came from is one of the policy's `hosts`."""
        reason = refusal(address)
        if reason is None:
            return None
        if _never(address):
            return reason
        metadata = _metadata(address)
        if metadata is not None:
            named = any(n.num_addresses == 1 and metadata in n for n in self.networks)
            return None if named else reason
        if listed_name:
            return None
        candidates = [address]
        if isinstance(address, ipaddress.IPv6Address) and (inner := _embedded_v4(address)):
            candidates.append(inner)
        if any(a in n for a in candidates for n in self.networks):
            return None
        return reason

    async def vet(
        self, host: str, port: int, *, resolver: Resolver | None = None
    ) -> tuple[IPAddress, ...]:
        """Resolve `host`; every address must be allowed, else UnsafeURL naming the first
        that is not (and the setting that would allow it). Vetting all (not just the one we
        would use) keeps a round-robin name honest. `Unresolved` when it does not resolve."""
        name = host_key(host)
        listed = name in self.hosts
        if name in METADATA_NAMES and not listed:
            raise UnsafeURL(f"{name} is a cloud metadata service; {HINT}")
        try:
            # The name as compared (`host_key`): the connection goes to what this resolves
            # to, so the name's spelling cannot make the check and the connection differ.
            answers = await (resolver or system_resolver)(name, port)
        except (OSError, UnicodeError):
            raise Unresolved(f"{host} does not resolve") from None
        addresses: list[IPAddress] = []
        for text in answers:
            address = ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id
            reason = self.refusal(address, listed_name=listed)
            if reason is not None:
                same = name == text.lower()
                raise UnsafeURL(f"{reason if same else f'{host} resolves to {reason}'}; {HINT}")
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise Unresolved(f"{host} does not resolve")
        return tuple(addresses)

    async def check_url(self, url: str, *, resolver: Resolver | None = None) -> Target:
        """The save-time check of a URL: well-formed http(s) whose host resolves to
        allowed addresses only. Raises UnsafeURL."""
        _, host, port = parse(url)
        addresses = await self.vet(host, port, resolver=resolver)
        return Target(url=url, host=host, port=port, addresses=addresses)


STRICT: Final = OutboundPolicy()
"""Public addresses only."""


async def check_url(
    url: str, *, policy: OutboundPolicy = STRICT, resolver: Resolver | None = None
) -> Target:
    """`policy.check_url(url)`."""
    return await policy.check_url(url, resolver=resolver)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to vetted addresses of the host asked for.

    Each new connection resolves and vets its host, then connects to the vetted addresses
    in turn. A refusal raises UnsafeURL before any socket is opened.
    """

    def __init__(
        self,
        *,
        policy: OutboundPolicy = STRICT,
        resolver: Resolver | None = None,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.policy = policy
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
        addresses = await self.policy.vet(host, port, resolver=self.resolver)
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
    policy: OutboundPolicy = STRICT,
    timeout: float | httpx.Timeout = 10.0,
    limits: httpx.Limits | None = None,
    headers: dict[str, str] | None = None,
    resolver: Resolver | None = None,
    inner: httpcore.AsyncNetworkBackend | None = None,
) -> httpx.AsyncClient:
    """An httpx client that connects only to addresses `policy` allows, vetted at every
    connection, and never follows redirects."""
    backend = GuardedBackend(policy=policy, resolver=resolver, inner=inner)
    return httpx.AsyncClient(
        transport=GuardedTransport(backend, limits=limits or httpx.Limits()),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        headers=headers,
    )
