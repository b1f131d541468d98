from __future__ import annotations

from fastapi import APIRouter

from tidings.api.deps import ManageKey, ReadKey, SessionDep, WriteSessionDep
from tidings.api.patch import changes_of
from tidings.orgs import service
from tidings.orgs.schemas import OrgChanges, OrgOut, OrgUpdate

router = APIRouter(prefix="/orgs/{org_id}", tags=["orgs"])


@router.get("", summary="Read the org")
async def get_org(org_id: int, key: ReadKey, session: SessionDep) -> OrgOut:
    return OrgOut.model_validate(await service.get_org(session, org_id=key.org_id))


@router.patch("", summary="Rename the org, set its phone region or the countries SMS may go to")
async def update_org(
    org_id: int, body: OrgUpdate, key: ManageKey, session: WriteSessionDep
) -> OrgOut:
    changes = changes_of(body, OrgChanges)
    org = await service.update_org(session, org_id=key.org_id, changes=changes)
    return OrgOut.model_validate(org)
