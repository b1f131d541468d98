from __future__ import annotations

from fastapi import APIRouter

from tidings.api.deps import ManageKey, ReadKey, SessionDep, WriteSessionDep
from tidings.api.fields import Id
from tidings.api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, paged
from tidings.api.patch import changes_of
from tidings.api.problems import answers
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.audit.diff import diff, view
from tidings.campaigns import service
from tidings.campaigns.schemas import CampaignChanges, CampaignCreate, CampaignOut, CampaignUpdate
from tidings.idempotency.http import IDEMPOTENT, IdempotentRoute
from tidings.retirement import service as retirement

router = APIRouter(
    prefix="/orgs/{org_id}/campaigns", tags=["campaigns"], route_class=IdempotentRoute
)


@router.post(
    "",
    status_code=201,
    summary="Create a campaign",
    responses=answers(422),
    dependencies=[IDEMPOTENT],
)
async def create_campaign(
    org_id: Id, body: CampaignCreate, key: ManageKey, session: WriteSessionDep
) -> CampaignOut:
    campaign = CampaignOut.model_validate(
        await service.create_campaign(session, org_id=key.org_id, body=body)
    )
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.CAMPAIGN_CREATE,
        target_id=campaign.id,
        changes=diff(None, view(campaign)),
    )
    return campaign


@router.get("", summary="List campaigns")
async def list_campaigns(
    org_id: Id,
    key: ReadKey,
    session: SessionDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[CampaignOut]:
    rows = await service.list_campaigns(
        session, org_id=key.org_id, after_id=decode_cursor(cursor), limit=limit + 1
    )
    return paged(rows, limit, CampaignOut.model_validate)


@router.get("/{campaign_id}", summary="Read a campaign", responses=answers(404))
async def get_campaign(
    org_id: Id, campaign_id: Id, key: ReadKey, session: SessionDep
) -> CampaignOut:
    campaign = await service.get_campaign(session, org_id=key.org_id, campaign_id=campaign_id)
    return CampaignOut.model_validate(campaign)


@router.patch(
    "/{campaign_id}",
    summary="Change a campaign (sends already accepted keep it as it was)",
    responses=answers(404, 409, 422),
)
async def update_campaign(
    org_id: Id, campaign_id: Id, body: CampaignUpdate, key: ManageKey, session: WriteSessionDep
) -> CampaignOut:
    before = view(
        CampaignOut.model_validate(
            await service.get_campaign(session, org_id=key.org_id, campaign_id=campaign_id)
        )
    )
    campaign = CampaignOut.model_validate(
        await service.update_campaign(
            session,
            org_id=key.org_id,
            campaign_id=campaign_id,
            changes=changes_of(body, CampaignChanges),
        )
    )
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.CAMPAIGN_UPDATE,
        target_id=campaign_id,
        changes=diff(before, view(campaign)),
    )
    return campaign


@router.delete(
    "/{campaign_id}",
    status_code=204,
    summary="Delete a campaign: hidden, kept for the sends that used it",
    responses=answers(404, 409),
)
async def delete_campaign(
    org_id: Id, campaign_id: Id, key: ManageKey, session: WriteSessionDep
) -> None:
    before = view(
        CampaignOut.model_validate(
            await service.get_campaign(session, org_id=key.org_id, campaign_id=campaign_id)
        )
    )
    await retirement.delete_campaign(session, org_id=key.org_id, campaign_id=campaign_id)
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.CAMPAIGN_DELETE,
        target_id=campaign_id,
        changes=diff(before, None),
    )
