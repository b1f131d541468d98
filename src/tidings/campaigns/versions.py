"""Freezing a campaign when a send is accepted: the `CampaignVersion` its messages are
made and sent with, whatever the campaign, its template or the org's default connection
become meanwhile.

    freeze(campaign) ──▶ its template's current version (one SELECT)
                     ──▶ its connection: its own, else the org's default for the channel,
                         else none (the built-in sink) (one SELECT); its failover list,
                         when it has one (one SELECT more)
                     ──▶ the version with exactly this content: found by its digest, or
                         added (INSERT … ON CONFLICT DO NOTHING, then read: raced safely)

Query helper: the caller owns the (write) transaction. A connection's settings and
credentials are not frozen: a send goes through the connection it froze as that
connection stands when each message is handed over (a rotated password applies at once).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.campaigns.models import Campaign, CampaignVersion
from tidings.connections.models import Connection
from tidings.db.base import utcnow
from tidings.db.dialect import insert_ignoring_conflicts
from tidings.errors import Conflict
from tidings.templates.models import Template, TemplateVersion

FROZEN = ("channel", "purpose", "from_name", "from_email", "reply_to", "sms_sender",
          "track_opens", "track_clicks", "invite_url", "language", "quiet_hours")  # fmt: skip
"""The campaign's fields a send keeps as they were when it was accepted (with its
template's version and its connection)."""


async def freeze(
    session: AsyncSession, *, campaign: Campaign, with_fallback: bool = True
) -> CampaignVersion:
    """The campaign as it stands now, as a version sends point at. Conflict when it, its
    template or its connection was deleted (a draft's campaign may be, before it is sent).
    Its fallback campaign is frozen with it (without a fallback of its own: a message
    falls back once)."""
    if campaign.deleted_at is not None:
        raise Conflict(f"campaign {campaign.id} was deleted")
    template_version_id = await session.scalar(
        select(TemplateVersion.id)
        .join(Template, Template.id == TemplateVersion.template_id)
        .where(
            Template.id == campaign.template_id,
            TemplateVersion.number == Template.version,
            Template.deleted_at.is_(None),
        )
    )
    if template_version_id is None:
        raise Conflict(f"campaign {campaign.id}'s template {campaign.template_id} was deleted")
    values: dict[str, Any] = {name: getattr(campaign, name) for name in FROZEN}
    values["template_version_id"] = template_version_id
    values["connection_id"] = await _connection(session, campaign=campaign)
    if campaign.connection_ids:  # only then: the digests of versions without stay the same
        await _check_failover(session, campaign=campaign)
        values["connection_ids"] = list(campaign.connection_ids)
    if with_fallback and campaign.fallback_campaign_id is not None:  # as connection_ids
        fallback = await session.get(Campaign, campaign.fallback_campaign_id)
        assert fallback is not None  # a foreign key
        values["fallback_version_id"] = (
            await freeze(session, campaign=fallback, with_fallback=False)
        ).id
    digest = hashlib.sha256(
        json.dumps(values, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    query = select(CampaignVersion).where(
        CampaignVersion.campaign_id == campaign.id, CampaignVersion.digest == digest
    )
    found = await session.scalar(query)
    if found is None:
        row = {**values, "org_id": campaign.org_id, "campaign_id": campaign.id,
               "digest": digest, "created_at": utcnow()}  # fmt: skip
        await session.execute(insert_ignoring_conflicts(session, CampaignVersion).values(row))
        found = await session.scalar(query)
    assert found is not None
    return found


async def _check_failover(session: AsyncSession, *, campaign: Campaign) -> None:
    """Conflict when a connection of the campaign's failover list was deleted."""
    assert campaign.connection_ids
    deleted = await session.scalar(
        select(Connection.id)
        .where(Connection.id.in_(campaign.connection_ids), Connection.deleted_at.is_not(None))
        .limit(1)
    )
    if deleted is not None:
        raise Conflict(f"campaign {campaign.id}'s connection {deleted} was deleted")


async def _connection(session: AsyncSession, *, campaign: Campaign) -> int | None:
    """The connection the campaign sends through now: its own (Conflict if deleted), else
    the org's default for its channel, else None (the sink)."""
    if campaign.connection_id is not None:
        deleted = await session.scalar(
            select(Connection.deleted_at.is_not(None)).where(
                Connection.id == campaign.connection_id
            )
        )
        if deleted:
            raise Conflict(
                f"campaign {campaign.id}'s connection {campaign.connection_id} was deleted"
            )
        return campaign.connection_id
    default: int | None = await session.scalar(
        select(Connection.id).where(
            Connection.org_id == campaign.org_id,
            Connection.channel == campaign.channel,
            Connection.is_default.is_(True),
            Connection.deleted_at.is_(None),
        )
    )
    return default
