"""A person's data over HTTP: the export (erasure is `POST …/contacts/{id}/erase`, in
contacts/routes.py beside the contact's other actions)."""

from __future__ import annotations

from fastapi import APIRouter

from tidings.api.deps import ManageKey, WriteSessionDep
from tidings.api.problems import answers
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.db.base import utcnow
from tidings.privacy import service
from tidings.privacy.schemas import ContactExportOut

router = APIRouter(prefix="/orgs/{org_id}/contacts", tags=["contacts"])


@router.get(
    "/{contact_id}/export",
    summary="Export everything held about one contact (GDPR access and portability)",
    responses=answers(404),
)
async def export_contact(
    org_id: int, contact_id: int, key: ManageKey, session: WriteSessionDep
) -> ContactExportOut:
    export = await service.export_contact(session, org_id=key.org_id, contact_id=contact_id)
    # Who read a person's whole record is the audit's business; what it held is not.
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.CONTACT_EXPORT,
        target_id=contact_id,
        changes={},
    )
    return ContactExportOut.of(export, at=utcnow())
