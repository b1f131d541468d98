"""What an action changed, as the audit log shows it: pure functions, no I/O.

A route takes a *view* of the object before and after the action (a flat mapping of
field → JSON value, usually its API answer, `view()`), and `diff()` keeps the fields that
differ as `{"from": old, "to": new}` (`from` absent on a creation, `to` on a deletion).

A secret is put in a view as `Secret(value)`: it is compared, never written. The diff
says `{"secret": "set" | "changed" | "removed"}`, so neither the value nor any digest or
ciphertext of it reaches the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

View = Mapping[str, object]

NOISE = frozenset({"id", "created_at", "updated_at"})
"""Fields every answer has that say nothing about what the action changed."""


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret's value in a view: compared with the other side, never written."""

    value: object = field(repr=False)


def view(answer: BaseModel, *, drop: frozenset[str] = frozenset()) -> dict[str, object]:
    """An API answer as a flat view (nested objects as dotted keys), without `NOISE`."""
    return flat(answer.model_dump(mode="json", exclude=set(NOISE | drop)))


def secrets(prefix: str, values: Mapping[str, object]) -> dict[str, object]:
    """Each of `values` as a `Secret` under `prefix.` (a connection's credentials)."""
    return {f"{prefix}.{name}": Secret(value) for name, value in values.items()}


def flat(doc: Mapping[str, Any], prefix: str = "") -> dict[str, object]:
    """Nested mappings as dotted keys (`settings.host`); lists and scalars are leaves."""
    out: dict[str, object] = {}
    for name, value in doc.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping) and value:
            out.update(flat(value, f"{key}."))
        else:
            out[key] = value
    return out


def diff(before: View | None, after: View | None) -> dict[str, Any]:
    """The fields that differ between the two views (None: the object did not exist, or
    no longer does), in field order."""
    old, new = before or {}, after or {}
    changes: dict[str, Any] = {}
    for name in [*old, *(n for n in new if n not in old)]:
        was, now = old.get(name, _ABSENT), new.get(name, _ABSENT)
        if was == now:
            continue
        if isinstance(was, Secret) or isinstance(now, Secret):
            changes[name] = {"secret": _secret_move(was, now)}
            continue
        change: dict[str, object] = {}
        if was is not _ABSENT:
            change["from"] = was
        if now is not _ABSENT:
            change["to"] = now
        changes[name] = change
    return changes


_ABSENT: Any = object()


def _secret_move(was: object, now: object) -> str:
    if was is _ABSENT or was == Secret(None):
        return "set"
    if now is _ABSENT or now == Secret(None):
        return "removed"
    return "changed"
