"""Asking DNS for the TXT records a sending domain should publish.

`TxtResolver` is what a check needs: the TXT values at one name, `[]` when there are none
(no such name, or no TXT there), `DnsUnreachable` when DNS could not answer at all (no
resolver configured, no network, time-out, server failure). The default is dnspython's
stub resolver on the system's configuration, with a short time limit; a test or an
air-gapped install gives its own (`StaticResolver` answers from a table).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import dns.asyncresolver
import dns.exception
import dns.resolver

TIMEOUT = 3.0
"""Seconds a whole lookup may take: an unreachable DNS says so within this."""


class DnsUnreachable(Exception):
    """DNS gave no answer (neither records nor "there are none"); `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TxtResolver(Protocol):
    async def txt(self, name: str) -> list[str]:
        """The TXT values at `name` (each record's strings joined), [] if none;
        DnsUnreachable when DNS cannot be asked."""
        ...


class SystemResolver:
    """dnspython's stub resolver on /etc/resolv.conf, each lookup within `timeout`.

    A resolver that cannot see the internet's DNS may still answer, "no such name" to
    everything (a sandbox's, a captive network's): that would read as "record missing".
    So before its first lookup it asks for the root zone's name servers, which every
    resolver connected to the DNS knows, and reports DNS unreachable when it gets none.
    """

    def __init__(self, timeout: float = TIMEOUT) -> None:
        self.timeout = timeout
        self._root_seen = False

    def _resolver(self) -> dns.asyncresolver.Resolver:
        try:
            resolver = dns.asyncresolver.Resolver()
        except dns.resolver.NoResolverConfiguration:
            raise DnsUnreachable("no DNS resolver is configured on this host") from None
        resolver.lifetime = self.timeout
        return resolver

    async def _see_root(self, resolver: dns.asyncresolver.Resolver) -> None:
        if self._root_seen:
            return
        try:
            await resolver.resolve(".", "NS")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            raise DnsUnreachable(
                "this host's DNS resolver does not know the root zone: it cannot see the "
                "internet's DNS"
            ) from None
        self._root_seen = True

    async def txt(self, name: str) -> list[str]:
        resolver = self._resolver()
        try:
            await self._see_root(resolver)
            answer = await resolver.resolve(name, "TXT")
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.resolver.LifetimeTimeout:
            raise DnsUnreachable(f"no DNS answer within {self.timeout:g} s") from None
        except dns.resolver.NoNameservers:
            raise DnsUnreachable("every DNS server failed to answer") from None
        except dns.exception.DNSException as exc:
            raise DnsUnreachable(f"DNS lookup failed: {type(exc).__name__}") from None
        except OSError as exc:
            raise DnsUnreachable(f"DNS cannot be reached: {exc.strerror or exc}") from None
        return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]


class StaticResolver:
    """Answers from a table (name → TXT values); a name not in it has none. With
    `unreachable`, every lookup raises DnsUnreachable with that reason."""

    def __init__(
        self, records: Mapping[str, Sequence[str]] | None = None, *, unreachable: str | None = None
    ) -> None:
        self.records = {name.rstrip(".").lower(): list(v) for name, v in (records or {}).items()}
        self.unreachable = unreachable
        self.asked: list[str] = []

    async def txt(self, name: str) -> list[str]:
        self.asked.append(name)
        if self.unreachable is not None:
            raise DnsUnreachable(self.unreachable)
        return list(self.records.get(name.rstrip(".").lower(), []))
