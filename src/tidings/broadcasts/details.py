"""A broadcast with what it refers to, for answers that show more than its own row
(seed 002's broadcast object): its campaign, the connection it sends through (the one it
froze when accepted), and its segments counted now. Read only; a handful of queries per
page, never per contact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.broadcasts.models import Broadcast
from tidings.broadcasts.service import get_broadcast, list_broadcasts
from tidings.broadcasts.status import BroadcastStatus
from tidings.campaigns.models import Campaign, CampaignVersion
from tidings.connections.service import default_connections
from tidings.segments.service import CountedSegment, counted_segments


@dataclass(frozen=True, slots=True)
class Details:
    """`connection_id`: the one the broadcast froze when accepted; for a draft, the
    campaign's own, else the org's default for its channel; None when there is no
    campaign yet, or the built-in sink sends it."""

    broadcast: Broadcast
    campaign: Campaign | None
    connection_id: int | None
    segments: list[CountedSegment]


async def describe(
    session: AsyncSession, *, org_id: int, broadcasts: Sequence[Broadcast]
) -> list[Details]:
    """Details of the org's `broadcasts`, in their order."""
    campaign_ids = {b.campaign_id for b in broadcasts if b.campaign_id is not None}
    campaigns: dict[int, Campaign] = {}
    if campaign_ids:
        query = select(Campaign).where(Campaign.org_id == org_id, Campaign.id.in_(campaign_ids))
        campaigns = {c.id: c for c in await session.scalars(query)}
    defaults = await default_connections(session, org_id=org_id) if campaigns else {}
    version_ids = {b.campaign_version_id for b in broadcasts if b.campaign_version_id}
    frozen: dict[int, int | None] = {}
    if version_ids:
        rows = await session.execute(
            select(CampaignVersion.id, CampaignVersion.connection_id).where(
                CampaignVersion.org_id == org_id, CampaignVersion.id.in_(version_ids)
            )
        )
        frozen = {ident: connection for ident, connection in rows}  # noqa: C416 — rows
    segment_ids = {i for b in broadcasts for i in b.audience.get("segment_ids") or []}
    segments = await counted_segments(session, org_id=org_id, segment_ids=segment_ids)
    described = []
    for broadcast in broadcasts:
        campaign = campaigns.get(broadcast.campaign_id) if broadcast.campaign_id else None
        connection_id = None
        if broadcast.status != BroadcastStatus.DRAFT and broadcast.campaign_version_id in frozen:
            connection_id = frozen[broadcast.campaign_version_id]
        elif campaign is not None:
            connection_id = campaign.connection_id or defaults.get(campaign.channel)
        described.append(
            Details(
                broadcast=broadcast,
                campaign=campaign,
                connection_id=connection_id,
                segments=[
                    segments[i]
                    for i in broadcast.audience.get("segment_ids") or []
                    if i in segments
                ],
            )
        )
    return described


async def get_details(session: AsyncSession, *, org_id: int, broadcast_id: int) -> Details:
    broadcast = await get_broadcast(session, org_id=org_id, broadcast_id=broadcast_id)
    [details] = await describe(session, org_id=org_id, broadcasts=[broadcast])
    return details


async def list_details(
    session: AsyncSession, *, org_id: int, after_id: int | None, limit: int
) -> list[Details]:
    """A page of the org's broadcasts in id order (see `list_broadcasts`), described."""
    rows = await list_broadcasts(session, org_id=org_id, after_id=after_id, limit=limit)
    return await describe(session, org_id=org_id, broadcasts=rows)
