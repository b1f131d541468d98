"""The audit log: one append-only row per `manage` action, written in the transaction of
the action itself (the entry point's), so an action and its record commit together or
not at all. Nothing updates or deletes a row; the API only lists them.

An entry point records what it did after its service call:

    await audit.record(session, org_id=key.org_id, by=key, action=Action.KEY_REVOKE,
                       target_id=key_id, changes=diff(before, after))

`by` is the API key (`api.principal.Principal`) or, for the CLI, `CLI`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.audit.actions import Action
from tidings.audit.models import AuditEntry


class Actor(Protocol):
    """Who acted: an API key (`key_id`), or an operator at the CLI (no key)."""

    @property
    def who(self) -> str: ...

    @property
    def key_id(self) -> int | None: ...


@dataclass(frozen=True, slots=True)
class Operator:
    """An operator acting outside the API, named by where: `cli`."""

    who: str
    key_id: None = None


CLI = Operator("cli")


async def record(
    session: AsyncSession,
    *,
    org_id: int,
    by: Actor,
    action: Action,
    target_id: int | None,
    changes: Mapping[str, Any],
) -> AuditEntry:
    """Add the entry to the caller's transaction (flushed, so it has its id)."""
    entry = AuditEntry(
        org_id=org_id,
        actor=by.who,
        key_id=by.key_id,
        action=action.value,
        target_kind=action.target_kind,
        target_id=target_id,
        changes=dict(changes),
    )
    session.add(entry)
    await session.flush()
    return entry


@dataclass(frozen=True, slots=True)
class Filters:
    """What `list_entries` keeps; None: any. `since` inclusive, `until` exclusive."""

    action: Action | None = None
    target_kind: str | None = None
    target_id: int | None = None
    key_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None


async def list_entries(
    session: AsyncSession,
    *,
    org_id: int,
    filters: Filters,
    before_id: int | None,
    limit: int,
) -> list[AuditEntry]:
    """The org's entries that match, newest first, older than the cursor's id."""
    query = select(AuditEntry).where(AuditEntry.org_id == org_id)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    if filters.action is not None:
        query = query.where(AuditEntry.action == filters.action.value)
    if filters.target_kind is not None:
        query = query.where(AuditEntry.target_kind == filters.target_kind)
    if filters.target_id is not None:
        query = query.where(AuditEntry.target_id == filters.target_id)
    if filters.key_id is not None:
        query = query.where(AuditEntry.key_id == filters.key_id)
    if filters.since is not None:
        query = query.where(AuditEntry.at >= filters.since)
    if filters.until is not None:
        query = query.where(AuditEntry.at < filters.until)
    return list(await session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit)))
