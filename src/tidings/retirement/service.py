"""Deleting what sends are made of — templates, campaigns, connections — without
pulling it from under a send: a use case above the outbox and broadcasts, like `privacy`.

A deletion is refused (409, naming what uses it) while something in flight or about to
be sent uses it:

    in flight   a broadcast SCHEDULED, SENDING or PAUSED whose frozen campaign version
                uses it; a message QUEUED or SENDING whose version does (single sends,
                link invites)
    about to    a campaign not deleted that names it (a template, a connection): every
                future send of that campaign would fail; change or delete the campaign
                first. Single sends' hidden campaigns do not count: a single send names
                its template itself, and a deleted one is a 404.

Otherwise the row is marked deleted (hidden from the API, its name free again) and kept,
with its versions, as the history of the sends that used it. Query helpers: the route's
write transaction holds the check and the mark.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.broadcasts.models import Broadcast
from tidings.broadcasts.status import BroadcastStatus
from tidings.campaigns import service as campaigns
from tidings.campaigns.models import Campaign, CampaignVersion
from tidings.connections import service as connections
from tidings.errors import Conflict
from tidings.outbox.models import Message
from tidings.outbox.status import MessageStatus
from tidings.templates import service as templates
from tidings.templates.models import TemplateVersion

B, MS = BroadcastStatus, MessageStatus
IN_FLIGHT = (B.SCHEDULED, B.SENDING, B.PAUSED)


async def delete_template(session: AsyncSession, *, org_id: int, template_id: int) -> None:
    template = await templates.get_template(session, org_id=org_id, template_id=template_id)
    await _unused_by_campaigns(session, org_id, Campaign.template_id == template_id, "template")
    versions = select(TemplateVersion.id).where(TemplateVersion.template_id == template_id)
    await _not_in_flight(
        session, org_id, CampaignVersion.template_version_id.in_(versions), "template"
    )
    templates.mark_deleted(template)


async def delete_campaign(session: AsyncSession, *, org_id: int, campaign_id: int) -> None:
    campaign = await campaigns.get_campaign(session, org_id=org_id, campaign_id=campaign_id)
    await _unused_by_campaigns(
        session, org_id, Campaign.fallback_campaign_id == campaign_id, "campaign as its fallback"
    )
    await _not_in_flight(session, org_id, CampaignVersion.campaign_id == campaign_id, "campaign")
    campaigns.mark_deleted(campaign)


async def delete_connection(session: AsyncSession, *, org_id: int, connection_id: int) -> None:
    connection = await connections.get_connection(
        session, org_id=org_id, connection_id=connection_id
    )
    await _unused_by_campaigns(
        session, org_id, Campaign.connection_id == connection_id, "connection"
    )
    await _not_in_failover(session, org_id, connection_id)
    await _not_in_flight(
        session, org_id, CampaignVersion.connection_id == connection_id, "connection"
    )
    connections.mark_deleted(connection)


async def _not_in_failover(session: AsyncSession, org_id: int, connection_id: int) -> None:
    """Conflict when a campaign of the org lists the connection for failover (read only;
    the lists are JSON, read in Python: an org has campaigns by the dozen, not millions).
    A send in flight that froze such a list skips a connection deleted since."""
    rows = await session.execute(
        select(Campaign.id, Campaign.connection_ids).where(
            Campaign.org_id == org_id,
            Campaign.deleted_at.is_(None),
            Campaign.is_single_send.is_(False),
            Campaign.connection_ids.is_not(None),
        )
    )
    for campaign_id, listed in rows:
        if connection_id in (listed or ()):
            raise Conflict(
                f"campaign {campaign_id} uses this connection: change or delete the campaign first"
            )


async def _unused_by_campaigns(
    session: AsyncSession, org_id: int, uses: ColumnElement[bool], what: str
) -> None:
    """Conflict when a campaign of the org, not deleted nor made by single sends, `uses`
    the object (read only)."""
    found = await session.scalar(
        select(Campaign.id)
        .where(
            Campaign.org_id == org_id,
            Campaign.deleted_at.is_(None),
            Campaign.is_single_send.is_(False),
            uses,
        )
        .limit(1)
    )
    if found is not None:
        raise Conflict(f"campaign {found} uses this {what}: change or delete the campaign first")


async def _not_in_flight(
    session: AsyncSession, org_id: int, uses: ColumnElement[bool], what: str
) -> None:
    """Conflict when a broadcast in flight, or a message queued or being sent, froze a
    campaign version that `uses` the object (read only). Messages are looked up status by
    status, so that each lookup reads the queue's partial index (`outbox.models`)."""
    broadcast = await session.scalar(
        select(Broadcast.id)
        .join(CampaignVersion, CampaignVersion.id == Broadcast.campaign_version_id)
        .where(Broadcast.org_id == org_id, Broadcast.status.in_(IN_FLIGHT), uses)
        .limit(1)
    )
    if broadcast is not None:
        raise Conflict(f"broadcast {broadcast} is being sent with this {what}; try once it ends")
    for status in (MS.QUEUED, MS.SENDING):
        message = await session.scalar(
            select(Message.id)
            .join(CampaignVersion, CampaignVersion.id == Message.campaign_version_id)
            .where(Message.org_id == org_id, Message.status == status, uses)
            .limit(1)
        )
        if message is not None:
            raise Conflict(f"message {message} is being sent with this {what}; try once it ends")
