from __future__ import annotations

import tempfile
from typing import Annotated

from fastapi import APIRouter, Query, Request

from tidings.api.deps import ManageKey, ReadKey, SessionDep, WriteSessionDep
from tidings.api.fields import Id
from tidings.api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, paged
from tidings.api.problems import answers
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.contacts import importer, service
from tidings.contacts.schemas import (
    ContactOut,
    ContactUpsert,
    FieldErrorOut,
    ImportReportOut,
    RowResult,
    UpsertReportOut,
)
from tidings.db.engine import transaction
from tidings.errors import InvalidInput
from tidings.idempotency.http import IDEMPOTENT, IdempotentRoute
from tidings.links.secret import erasure_key
from tidings.privacy import service as privacy

router = APIRouter(prefix="/orgs/{org_id}/contacts", tags=["contacts"], route_class=IdempotentRoute)

_CSV_EXAMPLE = "email,first_name,plan\nada@example.com,Ada,pro\n"


def _counts(report: service.UpsertReport | importer.ImportReport) -> dict[str, int]:
    """What the audit shows of a batch: counts only, never a person's data."""
    return {"created": report.created, "updated": report.updated, "failed": report.failed}


@router.post(
    "",
    summary="Create or update up to 10,000 contacts (bad rows are reported)",
    dependencies=[IDEMPOTENT],
)
async def upsert_contacts(
    org_id: Id, body: ContactUpsert, key: ManageKey, session: WriteSessionDep
) -> UpsertReportOut:
    report = await service.upsert_contacts(
        session, org_id=key.org_id, rows=body.contacts, list_ids=body.list_ids
    )
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.CONTACT_UPSERT,
        target_id=None,
        changes=_counts(report),
    )
    return UpsertReportOut(
        created=report.created,
        updated=report.updated,
        failed=report.failed,
        results=[
            RowResult(index=o.index, id=o.contact_id, status=o.status) for o in report.outcomes
        ],
        errors=[FieldErrorOut.of(e) for e in report.errors],
    )


@router.post(
    "/import",
    summary="Import a CSV file (streamed; any size)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}, "example": _CSV_EXAMPLE}},
        }
    },
    dependencies=[IDEMPOTENT],
)
async def import_contacts(
    org_id: Id,
    request: Request,
    key: ManageKey,
    session: SessionDep,  # no transaction: the importer opens one per batch
    list_id: Annotated[list[Id], Query(description="Lists every imported contact joins.")] = [],  # noqa: B006
) -> ImportReportOut:
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type not in ("text/csv", "application/csv", "application/octet-stream"):
        raise InvalidInput.field("content-type", "send the file as text/csv")
    with tempfile.TemporaryFile() as spool:
        async for chunk in request.stream():
            spool.write(chunk)
        spool.seek(0)
        report = await importer.import_csv(
            session,
            org_id=key.org_id,
            source=spool,
            list_ids=list_id,
            batch_size=request.app.state.settings.import_batch_size,
        )
    async with transaction(session):  # the batches committed theirs; the record has its own
        await audit.record(
            session,
            org_id=key.org_id,
            by=key,
            action=Action.CONTACT_IMPORT,
            target_id=None,
            changes=_counts(report),
        )
    return ImportReportOut(
        rows=report.rows,
        created=report.created,
        updated=report.updated,
        failed=report.failed,
        errors=[FieldErrorOut.of(e) for e in report.errors],
        errors_truncated=report.errors_truncated,
    )


@router.get("", summary="List contacts")
async def list_contacts(
    org_id: Id,
    key: ReadKey,
    session: SessionDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
    email: Annotated[str | None, Query(description="Exact address")] = None,
    phone: Annotated[str | None, Query(description="Exact E.164 number")] = None,
    list_id: Annotated[Id | None, Query(description="Members of this list")] = None,
) -> Page[ContactOut]:
    rows = await service.list_contacts(
        session,
        org_id=key.org_id,
        after_id=decode_cursor(cursor),
        limit=limit + 1,
        email=email,
        phone=phone,
        list_id=list_id,
    )
    return paged(rows, limit, ContactOut.of)


@router.get("/{contact_id}", summary="Read a contact")
async def get_contact(org_id: Id, contact_id: Id, key: ReadKey, session: SessionDep) -> ContactOut:
    return ContactOut.of(
        await service.get_contact(session, org_id=key.org_id, contact_id=contact_id)
    )


@router.post(
    "/{contact_id}/erase",
    summary="Erase a contact's personal data everywhere it lives (GDPR)",
    responses=answers(404),
)
async def erase_contact(
    org_id: Id, contact_id: Id, request: Request, key: ManageKey, session: WriteSessionDep
) -> ContactOut:
    erased = ContactOut.of(
        await privacy.erase_contact(
            session,
            org_id=key.org_id,
            contact_id=contact_id,
            erasure_key=erasure_key(request.app.state.settings),
        )
    )
    # The erased_at only: what was erased is a person's data, and the audit outlives it.
    changes = {"erased_at": {"to": erased.model_dump(mode="json")["erased_at"]}}
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.CONTACT_ERASE,
        target_id=contact_id,
        changes=changes,
    )
    return erased
