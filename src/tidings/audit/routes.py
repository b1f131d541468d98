from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from tidings.api.deps import ManageKey, SessionDep
from tidings.api.fields import Id, UtcMoment
from tidings.api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, paged
from tidings.api.problems import answers
from tidings.audit import service
from tidings.audit.actions import Action
from tidings.audit.schemas import AuditEntryOut

router = APIRouter(prefix="/orgs/{org_id}/audit", tags=["audit"])

TARGET_KINDS = sorted({action.target_kind for action in Action})


@router.get(
    "",
    summary="The audit log of manage actions, newest first (read-only: nothing alters it)",
    responses=answers(422),
)
async def list_audit(
    org_id: Id,
    key: ManageKey,
    session: SessionDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
    action: Annotated[Action | None, Query(description="One action, e.g. key.revoke")] = None,
    target_kind: Annotated[
        str | None,
        Query(pattern=f"^({'|'.join(TARGET_KINDS)})$", description=", ".join(TARGET_KINDS)),
    ] = None,
    target_id: Annotated[Id | None, Query()] = None,
    key_id: Annotated[Id | None, Query(description="Actions of this API key")] = None,
    since: Annotated[UtcMoment | None, Query(description="At or after (ISO 8601; UTC)")] = None,
    until: Annotated[UtcMoment | None, Query(description="Before (ISO 8601; UTC)")] = None,
) -> Page[AuditEntryOut]:
    filters = service.Filters(
        action=action,
        target_kind=target_kind,
        target_id=target_id,
        key_id=key_id,
        since=since,
        until=until,
    )
    rows = await service.list_entries(
        session,
        org_id=key.org_id,
        filters=filters,
        before_id=decode_cursor(cursor),
        limit=limit + 1,
    )
    return paged(rows, limit, AuditEntryOut.model_validate)
