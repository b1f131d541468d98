"""API keys: the list (never a secret), create (the secret shown once), revoke.

    GET  /keys                     the org's keys            (admin, owner: `manage`)
    POST /keys                     issue one: the answer shows its secret, once
    POST /keys/{id}/revoke         revoke one (it stops working at once)

The whole page needs `manage`, as the nav says: a key's secret grants API access. The
secret is in the answer to the POST only (not a redirect: a flash would put it in a
cookie); it is never stored, logged or audited (`keys.schemas.audited`). A member
issues keys as the API's `manage` key does: admin and owner hold every scope, so the
rule that an issuer grants no more than it holds is met by any choice.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request, Response

from tidings.api.deps import SessionDep, WriteSessionDep, roll_back_now
from tidings.api.principal import KeyKind, Scope
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.audit.diff import diff
from tidings.console.deps import ManageViewer
from tidings.console.forms import validated
from tidings.console.pages import redirect, render
from tidings.console.routing import page_router
from tidings.errors import InvalidInput
from tidings.keys import service as keys
from tidings.keys.schemas import ApiKeyCreate, audited

router = page_router()


async def _page(request: Request, viewer: ManageViewer, session: SessionDep, *,
                status: int = 200, **context: object) -> Response:  # fmt: skip
    found = await keys.list_keys(session, org_id=viewer.org_id)
    context.setdefault("errors", [])
    context.setdefault("form", {})
    return render(request, "keys/list.html", viewer, status_code=status, keys=found,
                  scopes=list(Scope), kinds=list(KeyKind), **context)  # fmt: skip


@router.get("/keys")
async def key_list(request: Request, viewer: ManageViewer, session: SessionDep) -> Response:
    return await _page(request, viewer, session)


@router.post("/keys")
async def create(
    request: Request,
    viewer: ManageViewer,
    session: WriteSessionDep,
    name: Annotated[str, Form(max_length=1000)] = "",
    kind: Annotated[str, Form(max_length=20)] = "live",
    scope: Annotated[list[str], Form(max_length=10)] = [],  # noqa: B006
) -> Response:
    try:
        body = validated(ApiKeyCreate, {"name": name.strip(), "kind": kind, "scopes": scope})
    except InvalidInput as exc:
        await roll_back_now(request)
        return await _page(request, viewer, session, status=422, errors=exc.errors,
                           form={"name": name, "kind": kind, "scopes": scope})  # fmt: skip
    issued = await keys.create_key(session, org_id=viewer.org_id, name=body.name, kind=body.kind,
                                   scopes=body.scopes)  # fmt: skip
    changes = diff(None, audited(issued.key))
    await audit.record(session, org_id=viewer.org_id, by=viewer, action=Action.KEY_CREATE,
                       target_id=issued.key.id, changes=changes)  # fmt: skip
    return await _page(request, viewer, session, status=201, issued=issued)


@router.post("/keys/{key_id}/revoke")
async def revoke(key_id: int, viewer: ManageViewer, session: WriteSessionDep) -> Response:
    revoked = await keys.revoke_key(session, org_id=viewer.org_id, key_id=key_id)
    # `to` only, as the API's: revoking twice keeps the first time.
    changes = diff({}, {"revoked_at": audited(revoked)["revoked_at"]})
    await audit.record(session, org_id=viewer.org_id, by=viewer, action=Action.KEY_REVOKE,
                       target_id=key_id, changes=changes)  # fmt: skip
    return redirect("/keys", viewer, flash=f"Key {revoked.name!r} revoked")
