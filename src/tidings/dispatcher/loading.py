"""What the dispatcher reads to render a claimed batch: the campaign versions its
messages froze, their template versions, its contacts, the connections the versions
send through, and the DKIM keys its orgs sign with.

Every statement here is read only, one per kind of row whatever the batch's size. The
message rows themselves (claim, record, reap, …) are the outbox's (`outbox/queue.py`,
`outbox/outcomes.py`), composed into the dispatcher's steps by `dispatcher/queries.py`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.campaigns.models import CampaignVersion
from tidings.channels.registry import SINK, ConnectionSpec
from tidings.connections import health
from tidings.connections.health import Health
from tidings.connections.models import Connection
from tidings.contacts.models import Contact
from tidings.content.context import FIELDS
from tidings.db.dialect import one_of
from tidings.domains.models import DkimKey, SendingDomain
from tidings.domains.signing import ActiveKey
from tidings.domains.status import KeyStatus
from tidings.templates.models import TemplateVersion


async def campaign_versions(
    session: AsyncSession, ids: Collection[int]
) -> dict[int, CampaignVersion]:
    """The campaign versions of `ids`, by id (read only; they never change)."""
    rows = await session.scalars(select(CampaignVersion).where(CampaignVersion.id.in_(ids)))
    return {version.id: version for version in rows}


async def template_versions(session: AsyncSession, ids: Collection[int]) -> list[TemplateVersion]:
    """The template versions of `ids`, whole, to compile (read only; they never change)."""
    return list(await session.scalars(select(TemplateVersion).where(TemplateVersion.id.in_(ids))))


async def contact_fields(session: AsyncSession, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Each contact of `ids` → its template fields and attributes, as templates see them
    (read only)."""
    rows = await session.execute(
        select(Contact.id, Contact.attributes, *(getattr(Contact, f) for f in FIELDS)).where(
            one_of(session, Contact.id, sorted(ids))
        )
    )
    return {
        row.id: {"attributes": row.attributes, **{f: getattr(row, f) for f in FIELDS}}
        for row in rows
    }


@dataclass(frozen=True, slots=True)
class Routes:
    """Each campaign version's id → its connections in order (failover; `[SINK]` for a
    version without one), and the breakers of those connections."""

    by_version: dict[int, list[ConnectionSpec]]
    health: dict[int, Health]


async def connection_routes(session: AsyncSession, versions: Iterable[CampaignVersion]) -> Routes:
    """Each campaign version's connections as they stand now (their settings and
    credentials are read each batch, so a change applies to what is not handed over
    yet), with their breakers; the built-in sink for a version without one (read only:
    two SELECTs, none when every version sends to the sink)."""
    wanted = list(versions)
    ids = {c for v in wanted for c in _connection_ids(v)}
    found: dict[int, Connection] = {}
    breakers: dict[int, Health] = {}
    if ids:
        rows = await session.scalars(select(Connection).where(Connection.id.in_(ids)))
        found = {row.id: row for row in rows}
        breakers = await health.states(session, sorted(ids))
    routes: dict[int, list[ConnectionSpec]] = {}
    for version in wanted:
        specs = [
            connection_spec(found[c])
            for c in _connection_ids(version)
            # A failover connection deleted since the send froze its list is skipped.
            if c in found and (c == version.connection_id or found[c].deleted_at is None)
        ]
        routes[version.id] = specs or [SINK]
    return Routes(routes, breakers)


def _connection_ids(version: CampaignVersion) -> list[int]:
    if version.connection_ids:
        return list(version.connection_ids)
    return [] if version.connection_id is None else [version.connection_id]


def connection_spec(row: Connection) -> ConnectionSpec:
    """What building and limiting a channel needs from a `connections` row."""
    return ConnectionSpec(
        id=row.id,
        kind=row.kind,
        settings=row.settings,
        credentials=row.credentials,
        max_concurrency=row.max_concurrency,
        updated_at=row.updated_at,
        max_per_second=row.max_per_second,
    )


async def active_dkim_keys(session: AsyncSession, org_ids: Collection[int]) -> list[ActiveKey]:
    """The active DKIM keys of the orgs `org_ids`, with their domains, without their private
    keys (read only: one SELECT, none without an org). Read each batch, so that a key
    activated, retired or deleted applies to the messages not built yet."""
    if not org_ids:
        return []
    rows = await session.execute(
        select(
            DkimKey.id,
            DkimKey.org_id,
            SendingDomain.name,
            SendingDomain.include_subdomains,
            DkimKey.selector,
            DkimKey.algorithm,
        )
        .join(SendingDomain, SendingDomain.id == DkimKey.domain_id)
        .where(DkimKey.org_id.in_(org_ids), DkimKey.status == KeyStatus.ACTIVE.value)
    )
    return [ActiveKey(*row) for row in rows]


async def dkim_private_keys(session: AsyncSession, ids: Collection[int]) -> dict[int, str]:
    """The private keys (PEM, unsealed) of the DKIM keys `ids`, by id (read only): only for
    the keys a worker has not loaded yet."""
    if not ids:
        return {}
    rows = await session.execute(select(DkimKey.id, DkimKey.private_key).where(DkimKey.id.in_(ids)))
    return {row.id: row.private_key for row in rows}
