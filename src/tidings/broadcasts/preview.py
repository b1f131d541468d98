"""Know before you send, as use cases: the estimate of a broadcast that has not started
(`POST …/broadcasts/{id}/estimate`), and of one only described (`dry_run` on create),
which leaves nothing behind. The figures themselves are `broadcasts.estimate`'s. Query
helpers: the caller owns the transaction (a dry run's savepoint is its own).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.broadcasts import estimate as estimates
from tidings.broadcasts import service
from tidings.broadcasts.schemas import BroadcastCreate
from tidings.broadcasts.status import BroadcastStatus
from tidings.campaigns.models import Campaign
from tidings.campaigns.service import get_campaign
from tidings.db.base import utcnow
from tidings.errors import Conflict


async def estimate_broadcast(
    session: AsyncSession, *, org_id: int, broadcast_id: int, now: datetime | None = None
) -> estimates.Figures:
    """What the broadcast (not started) would send if it started now (read only)."""
    now = now or utcnow()
    broadcast = await service.get_broadcast(session, org_id=org_id, broadcast_id=broadcast_id)
    if broadcast.campaign_id is None:
        raise Conflict("attach a template (a campaign) to this draft before estimating it")
    if broadcast.status == BroadcastStatus.DRAFT:
        campaign = await get_campaign(session, org_id=org_id, campaign_id=broadcast.campaign_id)
        version = await estimates.draft_version(session, campaign=campaign)
    else:
        version = await service.frozen(session, broadcast=broadcast)
    return await estimates.estimate(session, broadcast=broadcast, now=now, version=version)


async def dry_run(
    session: AsyncSession,
    *,
    org_id: int,
    body: BroadcastCreate,
    is_test: bool = False,
    now: datetime | None = None,
    campaign: Campaign | None = None,
) -> estimates.Figures:
    """The estimate of the broadcast `body` describes, leaving nothing behind: it is
    created in a savepoint (its explicit recipients upserted, held, nothing reserved),
    estimated, and the savepoint rolled back. `campaign`: as `create_broadcast`'s."""
    now = now or utcnow()
    savepoint = await session.begin_nested()
    try:
        created = await service.create_broadcast(
            session,
            org_id=org_id,
            body=body,
            is_test=is_test,
            now=now,
            charge=False,
            campaign=campaign,
        )
        broadcast = created.broadcast
        version = await service.frozen(session, broadcast=broadcast)
        return await estimates.estimate(session, broadcast=broadcast, now=now, version=version)
    finally:
        await savepoint.rollback()
