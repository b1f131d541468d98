from __future__ import annotations

from fastapi import APIRouter, Response

from tidings.api.deps import ManageKey, ReadKey, SessionDep, WriteSessionDep
from tidings.api.fields import Id
from tidings.api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, paged
from tidings.api.patch import changes_of
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.audit.diff import diff, view
from tidings.contacts.schemas import ContactOut
from tidings.idempotency.http import IDEMPOTENT, IdempotentRoute
from tidings.segments import service
from tidings.segments.schemas import (
    CountOut,
    FilterCount,
    SegmentChanges,
    SegmentCreate,
    SegmentOut,
    SegmentUpdate,
)
from tidings.segments.service import CountedSegment

router = APIRouter(prefix="/orgs/{org_id}/segments", tags=["segments"], route_class=IdempotentRoute)


def segment_out(item: CountedSegment) -> SegmentOut:
    s = item.segment
    return SegmentOut(
        id=s.id,
        name=s.name,
        description=s.description,
        filter=s.filter,
        contacts_count=item.contacts_count,
        created_at=s.created_at,
        updated_at=s.updated_at,
    )


def audited_segment(item: SegmentOut) -> dict[str, object]:
    """What the audit shows of a segment: its definition, not how many it matches now."""
    return view(item, drop=frozenset({"contacts_count"}))


@router.post("", status_code=201, summary="Save a segment", dependencies=[IDEMPOTENT])
async def create_segment(
    org_id: Id, body: SegmentCreate, key: ManageKey, session: WriteSessionDep
) -> SegmentOut:
    item = segment_out(
        await service.create_segment(
            session,
            org_id=key.org_id,
            name=body.name,
            description=body.description,
            filter=body.filter,
        )
    )
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.SEGMENT_CREATE,
        target_id=item.id,
        changes=diff(None, audited_segment(item)),
    )
    return item


@router.post("/count", summary="Count the contacts an unsaved filter matches")
async def count_filter(
    org_id: Id, body: FilterCount, key: ReadKey, session: SessionDep
) -> CountOut:
    count = await service.count_matching(session, org_id=key.org_id, raw=body.filter)
    return CountOut(contacts_count=count)


@router.get("", summary="List segments with their counts")
async def list_segments(
    org_id: Id,
    key: ReadKey,
    session: SessionDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[SegmentOut]:
    rows = await service.list_segments(
        session, org_id=key.org_id, after_id=decode_cursor(cursor), limit=limit + 1
    )
    return paged(rows, limit, segment_out, key=lambda c: c.segment.id)


@router.get("/{segment_id}", summary="Read a segment")
async def get_segment(org_id: Id, segment_id: Id, key: ReadKey, session: SessionDep) -> SegmentOut:
    return segment_out(await service.get_segment(session, org_id=key.org_id, segment_id=segment_id))


@router.get("/{segment_id}/count", summary="Count the segment's contacts now")
async def count_segment(org_id: Id, segment_id: Id, key: ReadKey, session: SessionDep) -> CountOut:
    item = await service.get_segment(session, org_id=key.org_id, segment_id=segment_id)
    return CountOut(contacts_count=item.contacts_count)


@router.get("/{segment_id}/contacts", summary="List the segment's contacts")
async def segment_contacts(
    org_id: Id,
    segment_id: Id,
    key: ReadKey,
    session: SessionDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[ContactOut]:
    rows = await service.segment_contacts(
        session,
        org_id=key.org_id,
        segment_id=segment_id,
        after_id=decode_cursor(cursor),
        limit=limit + 1,
    )
    return paged(rows, limit, ContactOut.of)


@router.patch("/{segment_id}", summary="Change a segment")
async def update_segment(
    org_id: Id, segment_id: Id, body: SegmentUpdate, key: ManageKey, session: WriteSessionDep
) -> SegmentOut:
    before = audited_segment(
        segment_out(await service.get_segment(session, org_id=key.org_id, segment_id=segment_id))
    )
    changes = changes_of(body, SegmentChanges)
    item = segment_out(
        await service.update_segment(
            session, org_id=key.org_id, segment_id=segment_id, changes=changes
        )
    )
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.SEGMENT_UPDATE,
        target_id=segment_id,
        changes=diff(before, audited_segment(item)),
    )
    return item


@router.delete("/{segment_id}", status_code=204, summary="Delete a segment")
async def delete_segment(
    org_id: Id, segment_id: Id, key: ManageKey, session: WriteSessionDep
) -> Response:
    before = audited_segment(
        segment_out(await service.get_segment(session, org_id=key.org_id, segment_id=segment_id))
    )
    await service.delete_segment(session, org_id=key.org_id, segment_id=segment_id)
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.SEGMENT_DELETE,
        target_id=segment_id,
        changes=diff(before, None),
    )
    return Response(status_code=204)
