from __future__ import annotations

from fastapi import APIRouter, Response

from tidings.api.deps import ManageKey, ReadKey, SessionDep, WriteSessionDep
from tidings.api.fields import Id
from tidings.api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, paged
from tidings.api.patch import changes_of
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.audit.diff import diff, view
from tidings.contacts import service as contacts
from tidings.idempotency.http import IDEMPOTENT, IdempotentRoute
from tidings.lists import service
from tidings.lists.schemas import (
    ListChanges,
    ListCreate,
    ListOut,
    ListUpdate,
    MembersChange,
    MembersChanged,
)
from tidings.lists.service import CountedList

router = APIRouter(prefix="/orgs/{org_id}/lists", tags=["lists"], route_class=IdempotentRoute)


def list_out(item: CountedList) -> ListOut:
    lst = item.list
    return ListOut(
        id=lst.id,
        name=lst.name,
        description=lst.description,
        contacts_count=item.contacts_count,
        created_at=lst.created_at,
        updated_at=lst.updated_at,
    )


def audited_list(item: ListOut) -> dict[str, object]:
    """What the audit shows of a list: its own fields (members are counted by their actions)."""
    return view(item, drop=frozenset({"contacts_count"}))


@router.post("", status_code=201, summary="Create a list", dependencies=[IDEMPOTENT])
async def create_list(
    org_id: Id, body: ListCreate, key: ManageKey, session: WriteSessionDep
) -> ListOut:
    item = list_out(
        await service.create_list(
            session, org_id=key.org_id, name=body.name, description=body.description
        )
    )
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.LIST_CREATE,
        target_id=item.id,
        changes=diff(None, audited_list(item)),
    )
    return item


@router.get("", summary="List the org's lists")
async def list_lists(
    org_id: Id,
    key: ReadKey,
    session: SessionDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[ListOut]:
    rows = await service.list_lists(
        session, org_id=key.org_id, after_id=decode_cursor(cursor), limit=limit + 1
    )
    return paged(rows, limit, list_out, key=lambda c: c.list.id)


@router.get("/{list_id}", summary="Read a list")
async def get_list(org_id: Id, list_id: Id, key: ReadKey, session: SessionDep) -> ListOut:
    return list_out(await service.get_list(session, org_id=key.org_id, list_id=list_id))


@router.patch("/{list_id}", summary="Rename or describe a list")
async def update_list(
    org_id: Id, list_id: Id, body: ListUpdate, key: ManageKey, session: WriteSessionDep
) -> ListOut:
    before = audited_list(
        list_out(await service.get_list(session, org_id=key.org_id, list_id=list_id))
    )
    changes = changes_of(body, ListChanges)
    item = list_out(
        await service.update_list(session, org_id=key.org_id, list_id=list_id, changes=changes)
    )
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.LIST_UPDATE,
        target_id=list_id,
        changes=diff(before, audited_list(item)),
    )
    return item


@router.delete("/{list_id}", status_code=204, summary="Delete a list (its contacts stay)")
async def delete_list(
    org_id: Id, list_id: Id, key: ManageKey, session: WriteSessionDep
) -> Response:
    before = audited_list(
        list_out(await service.get_list(session, org_id=key.org_id, list_id=list_id))
    )
    await service.delete_list(session, org_id=key.org_id, list_id=list_id)
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.LIST_DELETE,
        target_id=list_id,
        changes=diff(before, None),
    )
    return Response(status_code=204)


@router.post("/{list_id}/members", summary="Add contacts to a list")
async def add_members(
    org_id: Id, list_id: Id, body: MembersChange, key: ManageKey, session: WriteSessionDep
) -> MembersChanged:
    changed = await contacts.join_list(
        session, org_id=key.org_id, list_id=list_id, contact_ids=body.contact_ids
    )
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.LIST_MEMBERS_ADD,
        target_id=list_id,
        changes={"requested": len(body.contact_ids), "added": changed},
    )
    return MembersChanged(changed=changed)


@router.post("/{list_id}/members/remove", summary="Remove contacts from a list")
async def remove_members(
    org_id: Id, list_id: Id, body: MembersChange, key: ManageKey, session: WriteSessionDep
) -> MembersChanged:
    changed = await service.remove_members(
        session, org_id=key.org_id, list_id=list_id, contact_ids=body.contact_ids
    )
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.LIST_MEMBERS_REMOVE,
        target_id=list_id,
        changes={"requested": len(body.contact_ids), "removed": changed},
    )
    return MembersChanged(changed=changed)
