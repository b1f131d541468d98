"""Who calls the API and what they may do: the vocabulary of authorization that every
route speaks. The keys domain (`tidings.keys`) issues keys and resolves a presented one to
a `Principal`; the API only reads it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tidings.errors import Forbidden


class Scope(StrEnum):
    """What a key may do. `read`: every GET. `send`: send messages, broadcasts and invites.
    `manage`: change the org's data and configuration (contacts, lists, segments, keys)."""

    SEND = "send"
    READ = "read"
    MANAGE = "manage"


ALL_SCOPES = frozenset(Scope)


class KeyKind(StrEnum):
    """`live` sends for real; `test` runs the whole pipeline but hands nothing to a provider."""

    LIVE = "live"
    TEST = "test"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key, its org and what it may do."""

    key_id: int
    org_id: int
    org_login: str
    kind: KeyKind
    scopes: frozenset[Scope]
    stale_use: bool = False  # last_used_at is due to be written (`record_use`)

    @property
    def who(self) -> str:
        """How what this caller made names its maker (a template's version): `key <id>`."""
        return f"key {self.key_id}"

    def require(self, *, org_id: int, scope: Scope) -> None:
        if org_id != self.org_id:
            raise Forbidden("this key belongs to another org")
        if scope not in self.scopes:
            raise Forbidden(f"this key lacks the `{scope}` scope")
