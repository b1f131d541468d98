from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from tidings.api.deps import BodyDep, DatabaseDep, ManageKey, ReadKey, SessionDep, WriteSessionDep
from tidings.api.fields import Id
from tidings.api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, paged
from tidings.api.problems import answers
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.idempotency.http import IDEMPOTENT, IdempotentRoute
from tidings.suppressions import inbound, service
from tidings.suppressions.schemas import (
    AddErrorOut,
    AddReportOut,
    AddResult,
    Channel,
    InboundOut,
    Reason,
    SuppressionAdd,
    SuppressionOut,
)

router = APIRouter(
    prefix="/orgs/{org_id}/suppressions", tags=["suppressions"], route_class=IdempotentRoute
)
public = APIRouter(tags=["inbound"], responses=answers(404))  # an unknown token

# OWASP "CSV injection": a cell a spreadsheet would read as a formula gets a leading quote.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> str:
    text = "" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


@router.get("", summary="List suppressions")
async def list_suppressions(
    org_id: Id,
    key: ReadKey,
    session: SessionDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
    channel: Channel | None = None,
    reason: Reason | None = None,
) -> Page[SuppressionOut]:
    rows = await service.list_suppressions(
        session,
        org_id=key.org_id,
        after_id=decode_cursor(cursor),
        limit=limit + 1,
        channel=channel,
        reason=reason,
    )
    return paged(rows, limit, SuppressionOut.of)


@router.post(
    "",
    summary="Suppress up to 1,000 addresses (bad rows are reported by index)",
    dependencies=[IDEMPOTENT],
)
async def add_suppressions(
    org_id: Id, body: SuppressionAdd, key: ManageKey, session: WriteSessionDep
) -> AddReportOut:
    report = await service.add(session, org_id=key.org_id, rows=body.suppressions)
    # Counts only: an address is a person's data, and the audit outlives an erasure.
    counts = {"created": report.created, "existing": report.existing, "failed": report.failed}
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.SUPPRESSION_ADD,
        target_id=None,
        changes=counts,
    )
    return AddReportOut(
        created=report.created,
        existing=report.existing,
        failed=report.failed,
        results=[AddResult(index=o.index, id=o.id, status=o.status) for o in report.outcomes],
        errors=[AddErrorOut(index=e.index, field=e.field, reason=e.reason) for e in report.errors],
    )


@router.delete("", status_code=204, summary="Remove an address from the list")
async def remove_address(
    org_id: Id,
    key: ManageKey,
    session: WriteSessionDep,
    channel: Annotated[Channel, Query()],
    address: Annotated[str, Query(min_length=1, max_length=320)],
) -> Response:
    await service.remove_address(session, org_id=key.org_id, channel=channel, address=address)
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.SUPPRESSION_REMOVE,
        target_id=None,
        changes={"channel": {"from": channel}},
    )
    return Response(status_code=204)


@router.get(
    "/export",
    summary="Export every suppression as CSV (streamed; formula-safe cells)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
async def export_suppressions(org_id: Id, key: ReadKey, db: DatabaseDep) -> StreamingResponse:
    async def lines() -> AsyncIterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(service.EXPORT_COLUMNS)
        async with db.session() as session:
            async for row in service.export_rows(session, org_id=key.org_id):
                writer.writerow([safe_cell(v) for v in row])
                if buffer.tell() > 65_536:
                    yield buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
        yield buffer.getvalue()

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="suppressions.csv"'},
    )


@router.get("/{suppression_id}", summary="Read a suppression")
async def get_suppression(
    org_id: Id, suppression_id: Id, key: ReadKey, session: SessionDep
) -> SuppressionOut:
    return SuppressionOut.of(
        await service.get_suppression(session, org_id=key.org_id, suppression_id=suppression_id)
    )


@router.delete("/{suppression_id}", status_code=204, summary="Remove a suppression")
async def remove_suppression(
    org_id: Id, suppression_id: Id, key: ManageKey, session: WriteSessionDep
) -> Response:
    removed = await service.get_suppression(
        session, org_id=key.org_id, suppression_id=suppression_id
    )
    changes = {"channel": {"from": removed.channel}, "reason": {"from": removed.reason}}
    await service.remove(session, org_id=key.org_id, suppression_id=suppression_id)
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.SUPPRESSION_REMOVE,
        target_id=suppression_id,
        changes=changes,
    )
    return Response(status_code=204)


@public.post(
    "/inbound/sms/{connection_id}/{token}",
    summary="Inbound SMS from a gateway: STOP unsubscribes, START subscribes again",
    response_model=None,
)
async def inbound_sms(
    connection_id: Id, token: str, request: Request, raw: BodyDep, session: WriteSessionDep
) -> InboundOut | Response:
    form = request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded")
    body: Any
    try:
        body = dict(parse_qsl(raw.decode())) if form else json.loads(raw or b"null")
    except (UnicodeDecodeError, ValueError):
        body = None
    actions = await inbound.receive(session, connection_id=connection_id, token=token, body=body)
    if form:  # Twilio reads the answer as TwiML: an empty one sends no reply
        return Response('<?xml version="1.0" encoding="UTF-8"?><Response/>', media_type="text/xml")
    changed = [a for a in actions if a != "ignored"]
    return InboundOut(action=changed[-1] if changed else "ignored")
