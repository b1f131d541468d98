from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from tidings.api.deps import ReadKey, SessionDep
from tidings.api.fields import Id
from tidings.api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, paged
from tidings.event_types import EVENT_TYPES
from tidings.events import service, stats
from tidings.events.schemas import BroadcastStatsOut, CampaignStatsOut, EventOut

router = APIRouter(prefix="/orgs/{org_id}", tags=["events"])

IntervalQuery = Annotated[
    stats.Interval, Query(description="Bucket of the time series: minute or hour (UTC).")
]


@router.get("/events", summary="List events, filtered by message, broadcast or type")
async def list_events(
    org_id: Id,
    key: ReadKey,
    session: SessionDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
    message_id: Annotated[Id | None, Query()] = None,
    broadcast_id: Annotated[Id | None, Query()] = None,
    type: Annotated[
        list[str] | None, Query(description=f"One or more of: {', '.join(EVENT_TYPES)}")
    ] = None,
) -> Page[EventOut]:
    rows = await service.list_events(
        session,
        org_id=key.org_id,
        after_id=decode_cursor(cursor),
        limit=limit + 1,
        message_id=message_id,
        broadcast_id=broadcast_id,
        types=type or (),
    )
    return paged(rows, limit, EventOut.model_validate)


@router.get("/broadcasts/{broadcast_id}/stats", summary="A broadcast's counters, rates, series")
async def broadcast_stats(
    org_id: Id,
    broadcast_id: Id,
    key: ReadKey,
    session: SessionDep,
    interval: IntervalQuery = "hour",
) -> BroadcastStatsOut:
    found = await stats.broadcast_stats(
        session, org_id=key.org_id, broadcast_id=broadcast_id, interval=interval
    )
    return BroadcastStatsOut.model_validate(found)


@router.get("/campaigns/{campaign_id}/stats", summary="Stats over a campaign's broadcasts")
async def campaign_stats(
    org_id: Id,
    campaign_id: Id,
    key: ReadKey,
    session: SessionDep,
    interval: IntervalQuery = "hour",
) -> CampaignStatsOut:
    found = await stats.campaign_stats(
        session, org_id=key.org_id, campaign_id=campaign_id, interval=interval
    )
    return CampaignStatsOut.model_validate(found)
