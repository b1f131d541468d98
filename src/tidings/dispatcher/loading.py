"""What the dispatcher reads to render a claimed batch: its campaigns, templates and
contacts, and the connection each campaign sends through.

Every statement here is read only, one per kind of row whatever the batch's size. The
message rows themselves (claim, record, reap, …) are the outbox's (`outbox/queue.py`,
`outbox/outcomes.py`), composed into the dispatcher's steps by `dispatcher/queries.py`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.campaigns.models import Campaign
from tidings.channels.registry import SINK, ConnectionSpec
from tidings.connections.models import Connection
from tidings.contacts.models import Contact
from tidings.content.context import FIELDS
from tidings.db.dialect import one_of
from tidings.templates.models import Template


async def campaigns_by_id(session: AsyncSession, ids: Collection[int]) -> dict[int, Campaign]:
    """The campaigns of `ids`, by id (read only)."""
    rows = await session.scalars(select(Campaign).where(Campaign.id.in_(ids)))
    return {campaign.id: campaign for campaign in rows}


async def template_versions(session: AsyncSession, ids: Collection[int]) -> dict[int, datetime]:
    """Each template of `ids` → its `updated_at`, to tell a cached compilation is stale
    (read only)."""
    rows = await session.execute(
        select(Template.id, Template.updated_at).where(Template.id.in_(ids))
    )
    return dict(rows.all())


async def templates(session: AsyncSession, ids: Collection[int]) -> list[Template]:
    """The templates of `ids`, whole, to compile (read only)."""
    return list(await session.scalars(select(Template).where(Template.id.in_(ids))))


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


async def connection_routes(
    session: AsyncSession, campaigns: Iterable[Campaign]
) -> dict[int, ConnectionSpec]:
    """Each campaign's id → the connection it sends through: its own, else its org's
    default for the channel, else the built-in sink (read only: one SELECT)."""
    wanted = list(campaigns)
    explicit = {c.connection_id for c in wanted if c.connection_id is not None}
    orgs = {c.org_id for c in wanted}
    rows = await session.scalars(
        select(Connection).where(
            or_(
                Connection.id.in_(explicit),
                Connection.org_id.in_(orgs) & Connection.is_default.is_(True),
            )
        )
    )
    found = {row.id: row for row in rows}
    defaults = {(c.org_id, c.channel): c for c in found.values() if c.is_default}
    routes: dict[int, ConnectionSpec] = {}
    for campaign in wanted:
        row = found.get(campaign.connection_id) if campaign.connection_id else None
        row = row or defaults.get((campaign.org_id, campaign.channel))
        routes[campaign.id] = SINK if row is None else connection_spec(row)
    return routes


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
