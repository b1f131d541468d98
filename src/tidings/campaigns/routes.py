from __future__ import annotations

from fastapi import APIRouter

from tidings.api.deps import ManageKey, ReadKey, SessionDep, WriteSessionDep
from tidings.api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, paged
from tidings.campaigns import service
from tidings.campaigns.schemas import CampaignCreate, CampaignOut

router = APIRouter(prefix="/orgs/{org_id}/campaigns", tags=["campaigns"])


@router.post("", status_code=201, summary="Create a campaign")
async def create_campaign(
    org_id: int, body: CampaignCreate, key: ManageKey, session: WriteSessionDep
) -> CampaignOut:
    campaign = await service.create_campaign(session, org_id=key.org_id, body=body)
    return CampaignOut.model_validate(campaign)


@router.get("", summary="List campaigns")
async def list_campaigns(
    org_id: int,
    key: ReadKey,
    session: SessionDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[CampaignOut]:
    rows = await service.list_campaigns(
        session, org_id=key.org_id, after_id=decode_cursor(cursor), limit=limit + 1
    )
    return paged(rows, limit, CampaignOut.model_validate)


@router.get("/{campaign_id}", summary="Read a campaign")
async def get_campaign(
    org_id: int, campaign_id: int, key: ReadKey, session: SessionDep
) -> CampaignOut:
    campaign = await service.get_campaign(session, org_id=key.org_id, campaign_id=campaign_id)
    return CampaignOut.model_validate(campaign)
