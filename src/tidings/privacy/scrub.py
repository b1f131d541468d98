"""What of a stored document names a person, and the document without it (pure).

Erasure rewrites the documents Tidings keeps beside a person's messages: event details, the
webhook deliveries made of them, pending delivery reports, a message's failure reason, and
stored `Idempotency-Key` answers. Providers quote the address in free text ("550 5.1.1
<ada@example.com>: no such user"), a complaint names the reporter, a tracking hit keeps a
user agent; so a `Person` drops the keys that hold such data whatever their value, and
replaces each occurrence of the person's identifiers in every other string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

REDACTED = "[erased]"

PERSONAL_KEYS = frozenset(
    {
        "recipient", "to", "from", "email", "phone", "address", "name", "display_name",
        "first_name", "last_name", "ip", "client_ip", "user_agent",
    }
)  # fmt: skip
"""Keys of event details (and of the payloads made of them) whose value is about the
person whatever it says: dropped, not rewritten."""


@dataclass(frozen=True, slots=True)
class Person:
    """The identifiers of one person: their addresses (found anywhere in a string, in any
    case) and their names (found in the person's own records only: `shared=False`)."""

    addresses: tuple[str, ...]
    names: tuple[str, ...] = ()

    @classmethod
    def of(
        cls, *, email: str | None, phone: str | None, first_name: str | None, last_name: str | None
    ) -> Person:
        addresses = [a for a in (email, phone) if a]
        if phone:
            addresses.append(phone.lstrip("+"))  # gateways write numbers without the +
        names = [n.strip() for n in (first_name, last_name) if n and len(n.strip()) >= 2]
        if len(names) == 2:
            names.insert(0, f"{names[0]} {names[1]}")
        return cls(tuple(addresses), tuple(names))

    @property
    def needles(self) -> tuple[str, ...]:
        """Every string that marks a document as quoting this person (addresses and names):
        a document `scrub` changes contains one of them, in some case."""
        return self.addresses + self.names

    def _pattern(self, *, shared: bool) -> re.Pattern[str] | None:
        needles = self.addresses if shared else self.needles
        if not needles:
            return None
        ordered = sorted(set(needles), key=len, reverse=True)  # "Ada Byron" before "Ada"
        return re.compile("|".join(re.escape(n) for n in ordered), re.IGNORECASE)

    def scrub(self, value: Any, *, shared: bool = False) -> Any:
        """`value` (a JSON document or a string) without this person: personal keys
        dropped, identifiers replaced by REDACTED. `shared`: a document about other people
        too (a batch's stored answer), where only addresses are replaced and a name only
        when it is a whole string."""
        pattern = self._pattern(shared=shared)
        if pattern is None:
            return value
        names = {n.casefold() for n in self.names}
        return _walk(value, pattern, names if shared else set(), drop_keys=not shared)


def _walk(value: Any, pattern: re.Pattern[str], whole: set[str], *, drop_keys: bool) -> Any:
    if isinstance(value, str):
        if value.strip().casefold() in whole:
            return REDACTED
        return pattern.sub(REDACTED, value)
    if isinstance(value, dict):
        return {
            key: _walk(item, pattern, whole, drop_keys=drop_keys)
            for key, item in value.items()
            if not (drop_keys and key in PERSONAL_KEYS)
        }
    if isinstance(value, list):
        return [_walk(item, pattern, whole, drop_keys=drop_keys) for item in value]
    return value
