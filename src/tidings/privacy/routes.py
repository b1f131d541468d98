"""A person's data over HTTP: the export (erasure is `POST …/contacts/{id}/erase`, in
contacts/routes.py beside the contact's other actions)."""

from __future__ import annotations

from fastapi import APIRouter

from tidings.api.deps import ManageKey, SessionDep
from tidings.api.problems import answers
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
    org_id: int, contact_id: int, key: ManageKey, session: SessionDep
) -> ContactExportOut:
    export = await service.export_contact(session, org_id=key.org_id, contact_id=contact_id)
    return ContactExportOut.of(export, at=utcnow())
