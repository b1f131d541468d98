"""Lists: their members counted, create one, a list's members, add and remove.

    GET  /lists                                  the org's lists with their counts
    POST /lists                                  create one                (admin, owner)
    GET  /lists/{id}                             its members, paged
    POST /lists/{id}/members                     add a contact, by address (admin, owner)
    POST /lists/{id}/members/{contact}/remove    take one off              (admin, owner)
    POST /lists/{id}/delete                      delete it (contacts stay) (admin, owner)

Adding and removing call what `POST …/lists/{id}/members[/remove]` call and audit the
same counts. A contact is named by its address (email, or a number starting with +):
one that the org does not have is an error beside the field.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import SessionDep, WriteSessionDep, roll_back_now
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.audit.diff import diff
from tidings.console.deps import ManageViewer, ReadViewer, Viewer
from tidings.console.forms import validated
from tidings.console.pages import redirect, render
from tidings.console.routing import page_router
from tidings.contacts import service as contacts
from tidings.errors import FieldError, InvalidInput
from tidings.lists import service as lists
from tidings.lists.routes import audited_list, list_out
from tidings.lists.schemas import ListCreate

router = page_router()
PAGE = 50


async def _index(request: Request, viewer: Viewer, session: AsyncSession, *, status: int = 200,
                 errors: list[FieldError] | None = None, name: str = "") -> Response:  # fmt: skip
    found = await lists.list_lists(session, org_id=viewer.org_id, after_id=None, limit=500)
    return render(request, "lists/list.html", viewer, status_code=status, lists=found,
                  errors=errors or [], name=name)  # fmt: skip


async def _members(
    request: Request,
    viewer: Viewer,
    session: AsyncSession,
    list_id: int,
    *,
    after: int | None = None,
    status: int = 200,
    errors: list[FieldError] | None = None,
    address: str = "",
) -> Response:
    item = await lists.get_list(session, org_id=viewer.org_id, list_id=list_id)
    found = await contacts.list_contacts(
        session, org_id=viewer.org_id, after_id=after, limit=PAGE + 1, list_id=list_id
    )
    more = len(found) > PAGE
    found = found[:PAGE]
    return render(request, "lists/members.html", viewer, status_code=status, item=item,
                  members=found, errors=errors or [], address=address,
                  next_after=found[-1].id if more and found else None)  # fmt: skip


@router.get("/lists")
async def list_index(request: Request, viewer: ReadViewer, session: SessionDep) -> Response:
    return await _index(request, viewer, session)


@router.post("/lists")
async def create(
    request: Request,
    viewer: ManageViewer,
    session: WriteSessionDep,
    name: Annotated[str, Form(max_length=1000)] = "",
    description: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    try:
        body = validated(ListCreate, {"name": name.strip(),
                                      "description": description.strip() or None})  # fmt: skip
        item = list_out(await lists.create_list(session, org_id=viewer.org_id, name=body.name,
                                                description=body.description))  # fmt: skip
    except InvalidInput as exc:
        await roll_back_now(request)
        return await _index(request, viewer, session, status=422, errors=exc.errors, name=name)
    await audit.record(session, org_id=viewer.org_id, by=viewer, action=Action.LIST_CREATE,
                       target_id=item.id, changes=diff(None, audited_list(item)))  # fmt: skip
    return redirect(f"/lists/{item.id}", viewer, flash=f"List {item.name!r} created")


@router.get("/lists/{list_id}")
async def members(
    request: Request,
    list_id: int,
    viewer: ReadViewer,
    session: SessionDep,
    after: Annotated[int | None, Query(ge=0, lt=2**63)] = None,
) -> Response:
    return await _members(request, viewer, session, list_id, after=after)


@router.post("/lists/{list_id}/members")
async def add_member(
    request: Request,
    list_id: int,
    viewer: ManageViewer,
    session: WriteSessionDep,
    address: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    await lists.get_list(session, org_id=viewer.org_id, list_id=list_id)  # 404 first
    wanted = address.strip()
    found = await contacts.list_contacts(
        session, org_id=viewer.org_id, after_id=None, limit=1,
        phone=wanted if wanted.startswith("+") else None,
        email=None if wanted.startswith("+") else wanted,
    ) if wanted else []  # fmt: skip
    if not found:
        await roll_back_now(request)
        errors = [FieldError("address", "no contact has this address")]
        return await _members(request, viewer, session, list_id, status=422, errors=errors,
                              address=address)  # fmt: skip
    added = await contacts.join_list(
        session, org_id=viewer.org_id, list_id=list_id, contact_ids=[found[0].id]
    )
    await audit.record(session, org_id=viewer.org_id, by=viewer, action=Action.LIST_MEMBERS_ADD,
                       target_id=list_id, changes={"requested": 1, "added": added})  # fmt: skip
    said = "Added" if added else "Already a member:"
    return redirect(f"/lists/{list_id}", viewer, flash=f"{said} {wanted}")


@router.post("/lists/{list_id}/members/{contact_id}/remove")
async def remove_member(
    list_id: int, contact_id: int, viewer: ManageViewer, session: WriteSessionDep
) -> Response:
    removed = await lists.remove_members(
        session, org_id=viewer.org_id, list_id=list_id, contact_ids=[contact_id]
    )
    await audit.record(session, org_id=viewer.org_id, by=viewer,
                       action=Action.LIST_MEMBERS_REMOVE, target_id=list_id,
                       changes={"requested": 1, "removed": removed})  # fmt: skip
    return redirect(f"/lists/{list_id}", viewer, flash=f"Contact {contact_id} removed")


@router.post("/lists/{list_id}/delete")
async def delete(list_id: int, viewer: ManageViewer, session: WriteSessionDep) -> Response:
    """Delete the list; its contacts stay (as `DELETE …/lists/{id}`)."""
    before = audited_list(
        list_out(await lists.get_list(session, org_id=viewer.org_id, list_id=list_id))
    )
    await lists.delete_list(session, org_id=viewer.org_id, list_id=list_id)
    await audit.record(session, org_id=viewer.org_id, by=viewer, action=Action.LIST_DELETE,
                       target_id=list_id, changes=diff(before, None))  # fmt: skip
    return redirect("/lists", viewer, flash=f"List {list_id} deleted; its contacts stay")
