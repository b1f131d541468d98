"""Which keys sign which message, for the dispatcher: a worker's `KeyCache` keeps loaded
keys between batches; each batch gets a `Signer` built from the keys active when the batch
was read, so a key activated, retired or deleted applies to the messages built after.

    batch read ──▶ the active keys of the batch's orgs (no private key: `ActiveKey`)
               ──▶ the private keys of those not cached yet: unsealed and loaded, once
               ──▶ Signer: (org, domain) → its keys; `sign(org, From address, bytes)`
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

import idna

from tidings.domains.dkim import Algorithm, SigningKey, sign

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ActiveKey:
    """An active key as a batch reads it: everything but its private key."""

    id: int
    org_id: int
    domain: str
    include_subdomains: bool
    selector: str
    algorithm: str


@dataclass(frozen=True, slots=True)
class Signer:
    """The keys that sign a batch: by (org id, domain), whether they cover subdomains and
    the keys (one per algorithm). `timestamp` is every signature's `t=`."""

    domains: Mapping[tuple[int, str], tuple[bool, tuple[SigningKey, ...]]] = field(
        default_factory=dict
    )
    timestamp: int = 0

    def keys_for(self, org_id: int, sender: str) -> tuple[SigningKey, ...]:
        """The keys of the From address's domain, else of the nearest parent domain that
        covers its subdomains; none if neither."""
        if not self.domains:
            return ()
        name = _ascii(sender.rpartition("@")[2].rstrip(".").lower())
        if name is None:
            return ()
        exact = self.domains.get((org_id, name))
        if exact is not None:
            return exact[1]
        labels = name.split(".")
        for at in range(1, len(labels) - 1):
            parent = self.domains.get((org_id, ".".join(labels[at:])))
            if parent is not None and parent[0]:
                return parent[1]
        return ()

    def sign(self, org_id: int, sender: str, message: bytes) -> bytes:
        """`message` signed with the keys of its From address's domain (unchanged if
        none): the one call the renderer makes on each email it builds."""
        keys = self.keys_for(org_id, sender)
        return sign(message, keys, timestamp=self.timestamp) if keys else message


NO_SIGNING = Signer()


def _ascii(domain: str) -> str | None:
    if domain.isascii():
        return domain
    try:
        return idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError:
        return None


class KeyCache:
    """Loaded signing keys by key id, for one worker: a key is unsealed and loaded once,
    then kept while it stays active. A batch reads the active keys of its own orgs only,
    so a key is dropped when a batch of its org no longer finds it active (retired,
    deleted), not when a batch of other orgs does not name it."""

    def __init__(self) -> None:
        self._loaded: dict[int, tuple[int, SigningKey]] = {}  # by key id: (org id, key)
        self._broken: set[int] = set()

    def missing(self, active: Iterable[ActiveKey]) -> set[int]:
        """The ids of `active` keys not loaded yet (to read their private keys)."""
        return {k.id for k in active if k.id not in self._loaded and k.id not in self._broken}

    def load(self, active: Iterable[ActiveKey], private_keys: Mapping[int, str]) -> None:
        """Load the keys whose PEM is in `private_keys`. A key that does not load is
        logged once and left out: its domain's mail goes out unsigned, not failed."""
        for key in active:
            pem = private_keys.get(key.id)
            if pem is None or key.id in self._loaded:
                continue
            try:
                self._loaded[key.id] = (
                    key.org_id,
                    SigningKey.load(
                        domain=key.domain,
                        selector=key.selector,
                        algorithm=Algorithm(key.algorithm),
                        private_pem=pem,
                    ),
                )
            except ValueError as exc:
                self._broken.add(key.id)
                log.error("DKIM key %d of %s does not load: %s; its mail is not signed",
                          key.id, key.domain, type(exc).__name__)  # fmt: skip

    def signer(
        self, active: Iterable[ActiveKey], *, orgs: Collection[int], timestamp: int
    ) -> Signer:
        """The batch's Signer from the active keys of its orgs `orgs` (loaded with `load`
        first); the orgs' keys no longer active leave the cache."""
        wanted = list(active)
        ids = {k.id for k in wanted}
        self._loaded = {
            i: pair for i, pair in self._loaded.items() if i in ids or pair[0] not in orgs
        }
        domains: dict[tuple[int, str], tuple[bool, tuple[SigningKey, ...]]] = {}
        for key in sorted(wanted, key=lambda k: (k.algorithm != Algorithm.RSA, k.id)):
            pair = self._loaded.get(key.id)
            if pair is None:
                continue
            loaded = pair[1]
            _, keys = domains.get((key.org_id, key.domain), (False, ()))
            domains[(key.org_id, key.domain)] = (key.include_subdomains, (*keys, loaded))
        return Signer(domains, timestamp)
