"""Members: the people who sign in to the org's console, for its admins and owners.

    GET  /members                      members, role, last sign-in   (admin, owner)
    POST /members                      add one: a one-time password, shown once
    POST /members/{id}/role            change a member's role
    GET  /members/{id}/remove          the confirmation step
    POST /members/{id}/remove          remove a member (their sessions end)

The rules are the members service's (`members.service`): an admin neither makes,
promotes to, demotes from nor removes an owner (403); the org's last owner can be neither
demoted nor removed (409), themselves included. A refusal is shown on the page, beside
the form. The new member's password is generated (`members.service.generate_password`,
as the first owner's) and shown in the answer to the POST only, never in a flash cookie,
never audited; they sign in with it and an owner resets it with `tidings users
reset-password` (there is no page to choose one yet). Each change is audited as the
member, as `tidings users create` audits (`member.create`, `member.update`,
`member.delete`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import SessionDep, WriteSessionDep, roll_back_now
from tidings.api.fields import Id
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.audit.diff import diff
from tidings.console.deps import OwnerViewer, Viewer
from tidings.console.pages import redirect, render
from tidings.console.routing import page_router
from tidings.errors import Conflict, FieldError, Forbidden, InvalidInput
from tidings.members import service as members
from tidings.members.roles import Role, may_manage

router = page_router()


async def _page(request: Request, viewer: Viewer, session: AsyncSession, *, status: int = 200,
                **context: Any) -> Response:  # fmt: skip
    found = await members.list_members(session, org_id=viewer.org_id)
    context.setdefault("errors", [])
    context.setdefault("form", {})
    grantable = [r for r in Role if may_manage(viewer.role, r)]
    return render(request, "members/list.html", viewer, status_code=status, members=found,
                  roles=grantable, may_manage=may_manage, **context)  # fmt: skip


def _role(value: str, field: str = "role") -> Role:
    try:
        return Role(value)
    except ValueError:
        raise InvalidInput.field(field, f"one of {', '.join(Role)}") from None


@router.get("/members")
async def member_list(request: Request, viewer: OwnerViewer, session: SessionDep) -> Response:
    return await _page(request, viewer, session)


@router.post("/members")
async def add(
    request: Request,
    viewer: OwnerViewer,
    session: WriteSessionDep,
    email: Annotated[str, Form(max_length=320)] = "",
    role: Annotated[str, Form(max_length=16)] = Role.VIEWER.value,
) -> Response:
    password = members.generate_password()
    try:
        chosen = _role(role)
        members.require_may_manage(by=viewer.role, role=chosen)
        member = await members.add_member(session, org_id=viewer.org_id, email=email,
                                          password=password, role=chosen)  # fmt: skip
    except (InvalidInput, Forbidden, Conflict) as exc:
        await roll_back_now(request)
        errors = exc.errors if isinstance(exc, InvalidInput) else [FieldError("email", exc.detail)]
        if isinstance(exc, Forbidden):
            errors = [FieldError("role", exc.detail)]
        return await _page(request, viewer, session, status=exc.status, errors=errors,
                           form={"email": email, "role": role})  # fmt: skip
    await members.record_creation(session, member, viewer)
    return await _page(request, viewer, session, status=201, added=member, password=password)


def _refused(exc: Forbidden | Conflict, member_id: int) -> list[FieldError]:
    return [FieldError(f"member-{member_id}", exc.detail)]


@router.post("/members/{member_id}/role")
async def change_role(
    request: Request,
    member_id: Id,
    viewer: OwnerViewer,
    session: WriteSessionDep,
    role: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    before = await members.get_member(session, org_id=viewer.org_id, member_id=member_id)
    was = before.role
    try:
        changed = await members.change_role(session, org_id=viewer.org_id, member_id=member_id,
                                            role=_role(role), by=viewer.role)  # fmt: skip
    except (Forbidden, Conflict) as exc:
        await roll_back_now(request)
        return await _page(request, viewer, session, status=exc.status,
                           errors=_refused(exc, member_id))  # fmt: skip
    if changed.role != was:
        await audit.record(session, org_id=viewer.org_id, by=viewer, action=Action.MEMBER_UPDATE,
                           target_id=member_id,
                           changes=diff({"role": was}, {"role": changed.role}))  # fmt: skip
    return redirect("/members", viewer, flash=f"{changed.email} is now {changed.role}")


@router.get("/members/{member_id}/remove")
async def remove_form(
    request: Request, member_id: Id, viewer: OwnerViewer, session: SessionDep
) -> Response:
    found = await members.get_member(session, org_id=viewer.org_id, member_id=member_id)
    return render(request, "confirm.html", viewer, what=f"member {found.email}",
                  action=f"/members/{found.id}/remove", back="/members", refused=None,
                  note="They can no longer sign in, and their sessions end; what they did "
                  "stays in the audit log.")  # fmt: skip


@router.post("/members/{member_id}/remove")
async def remove(
    request: Request, member_id: Id, viewer: OwnerViewer, session: WriteSessionDep
) -> Response:
    try:
        gone = await members.remove_member(session, org_id=viewer.org_id, member_id=member_id,
                                           by=viewer.role)  # fmt: skip
    except (Forbidden, Conflict) as exc:
        await roll_back_now(request)
        return await _page(request, viewer, session, status=exc.status,
                           errors=_refused(exc, member_id))  # fmt: skip
    before = {"email": gone.email, "role": gone.role, "is_operator": gone.is_operator}
    await audit.record(session, org_id=viewer.org_id, by=viewer, action=Action.MEMBER_DELETE,
                       target_id=member_id, changes=diff(before, None))  # fmt: skip
    if member_id == viewer.member_id:  # their own session has just ended
        return redirect("/login")
    return redirect("/members", viewer, flash=f"{gone.email} removed")
