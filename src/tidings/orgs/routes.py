from __future__ import annotations

from fastapi import APIRouter

from tidings.api.deps import ManageKey, ReadKey, SessionDep, WriteSessionDep
from tidings.api.fields import Id
from tidings.api.patch import changes_of
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.audit.diff import diff, view
from tidings.orgs import service
from tidings.orgs.schemas import OrgChanges, OrgOut, OrgUpdate

router = APIRouter(prefix="/orgs/{org_id}", tags=["orgs"])


@router.get("", summary="Read the org")
async def get_org(org_id: Id, key: ReadKey, session: SessionDep) -> OrgOut:
    return OrgOut.model_validate(await service.get_org(session, org_id=key.org_id))


@router.patch("", summary="Rename the org, set its phone region or the countries SMS may go to")
async def update_org(
    org_id: Id, body: OrgUpdate, key: ManageKey, session: WriteSessionDep
) -> OrgOut:
    before = view(OrgOut.model_validate(await service.get_org(session, org_id=key.org_id)))
    changes = changes_of(body, OrgChanges)
    org = OrgOut.model_validate(
        await service.update_org(session, org_id=key.org_id, changes=changes)
    )
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.ORG_UPDATE,
        target_id=key.org_id,
        changes=diff(before, view(org)),
    )
    return org
