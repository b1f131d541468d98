"""Connections: the org's provider connections, and "test this connection".

    GET  /connections                  kind, channel, settings, limits, breaker health: never
                                       credentials
    POST /connections                  add one                       (admin, owner)
    POST /connections/{id}/test        open its hosts now and say OK or the error (admin, owner)
    GET  /connections/{id}/edit        the form: settings, never credentials (admin, owner)
    POST /connections/{id}/edit        change it, as `PATCH …/connections/{id}`
    GET  /connections/{id}/delete      the confirmation step         (admin, owner)
    POST /connections/{id}/delete      delete it, as `DELETE …/connections/{id}` (409 while in use)

Credentials are write-only: the page shows which credential fields are set, never a
value (secret settings are stored with the credentials, so they are hidden too). The
test is `connections.probe.probe`, through the outbound policy of `net/ssrf.py`; it
changes nothing, so it is not audited.

A new connection's settings and credentials are JSON documents as the API takes them
(docs/providers.md), checked with the API's `ConnectionCreate` and the kind's schemas;
its hosts are vetted by the outbound policy before the write transaction opens, as the
API's route does. The credentials field is never filled back in: a refused form asks
for them again. The edit form shows the settings, never the credentials: left blank,
the stored credentials are kept; typed, they replace the whole document (the API's
PATCH). Settings left as shown are not sent, so a secret setting (stored with the
credentials, never shown) is kept; changed, they replace the whole document, as the
API's PATCH does. A channel and a kind stay what they are.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Form, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import DatabaseDep, SessionDep, SettingsDep
from tidings.api.fields import Id
from tidings.api.patch import changes_of
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.audit.diff import diff
from tidings.channels.registry import PROVIDERS
from tidings.connections import health, probe
from tidings.connections import service as connections
from tidings.connections.kinds import check_addresses
from tidings.connections.models import Connection
from tidings.connections.routes import audited_connection
from tidings.connections.schemas import ConnectionChanges, ConnectionCreate, ConnectionUpdate
from tidings.console.deps import ManageViewer, ReadViewer, Viewer
from tidings.console.forms import validated
from tidings.console.pages import fragment, redirect, render
from tidings.console.routing import page_router
from tidings.db.base import utcnow
from tidings.errors import Conflict, FieldError, InvalidInput
from tidings.retirement import service as retirement
from tidings.settings import Settings

router = page_router()


async def _page(request: Request, viewer: Viewer, session: AsyncSession, settings: Settings, *,
                status: int = 200, errors: list[FieldError] | None = None,
                form: dict[str, str] | None = None) -> Response:  # fmt: skip
    found = await connections.list_connections(session, org_id=viewer.org_id)
    credential_fields = {c.id: sorted((c.credentials or {}).keys()) for c in found}
    now, policy = utcnow(), health.breaker_policy(settings)
    breakers = {c.id: await health.get_health(session, org_id=viewer.org_id, connection_id=c.id,
                                              now=now, policy=policy)
                for c in found}  # fmt: skip
    return render(request, "connections/list.html", viewer, status_code=status,
                  connections=found, credential_fields=credential_fields, health=breakers,
                  kinds=sorted(PROVIDERS), errors=errors or [], form=form or {})  # fmt: skip


def _document(name: str, text: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidInput.field(name, f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidInput.field(name, 'a JSON object: {"field": value, …}')
    return value


@router.get("/connections")
async def connection_list(
    request: Request, viewer: ReadViewer, session: SessionDep, settings: SettingsDep
) -> Response:
    return await _page(request, viewer, session, settings)


@router.post("/connections")
async def create(
    request: Request,
    viewer: ManageViewer,
    db: DatabaseDep,
    settings: SettingsDep,
    name: Annotated[str, Form(max_length=1000)] = "",
    channel: Annotated[str, Form(max_length=10)] = "email",
    kind: Annotated[str, Form(max_length=40)] = "",
    settings_json: Annotated[str, Form(max_length=100_000)] = "",
    credentials_json: Annotated[str, Form(max_length=100_000)] = "",
    max_concurrency: Annotated[str, Form(max_length=10)] = "10",
    is_default: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    try:
        data = {"name": name.strip(), "channel": channel, "kind": kind,
                "settings": _document("settings", settings_json),
                "credentials": _document("credentials", credentials_json),
                "max_concurrency": max_concurrency.strip() or "10",
                "is_default": is_default == "on"}  # fmt: skip
        body = validated(ConnectionCreate, data)
        await check_addresses(body.kind, body.settings, policy=settings.outbound_policy)
        async with db.transaction() as session:
            created = await connections.create_connection(session, org_id=viewer.org_id, body=body)
            await audit.record(session, org_id=viewer.org_id, by=viewer,
                               action=Action.CONNECTION_CREATE, target_id=created.id,
                               changes=diff(None, audited_connection(created)))  # fmt: skip
    except InvalidInput as exc:
        form = {
            "name": name,
            "channel": channel,
            "kind": kind,
            "settings_json": settings_json,
            "max_concurrency": max_concurrency,
        }  # never the credentials
        async with db.transaction(write=False) as session:
            return await _page(request, viewer, session, settings, status=422, errors=exc.errors,
                               form=form)  # fmt: skip
    return redirect("/connections", viewer, flash=f"Connection {created.name!r} added")


@router.post("/connections/{connection_id}/test")
async def test_connection(
    request: Request,
    connection_id: int,
    viewer: ManageViewer,
    db: DatabaseDep,
    settings: SettingsDep,
) -> Response:
    async with db.transaction(write=False) as session:  # none held while hosts are opened
        found = await connections.get_connection(
            session, org_id=viewer.org_id, connection_id=connection_id
        )
    result = await probe.probe(found, policy=settings.outbound_policy)
    return fragment(request, "connections/_probe.html", viewer, result=result, item=found)


def _edit_page(request: Request, viewer: Viewer, found: Connection, *, status: int = 200,
               errors: list[FieldError] | None = None,
               form: dict[str, str] | None = None) -> Response:  # fmt: skip
    """The edit form: the stored settings (never a credential, nor a secret setting, which
    is stored with the credentials), or what was typed when it was refused."""
    filled = form or {
        "name": found.name,
        "settings_json": json.dumps(found.settings or {}, indent=1),
        "max_concurrency": str(found.max_concurrency),
        "max_per_second": "" if found.max_per_second is None else f"{found.max_per_second:g}",
        "is_default": "on" if found.is_default else "",
    }
    return render(request, "connections/edit.html", viewer, status_code=status, item=found,
                  credential_fields=sorted((found.credentials or {}).keys()),
                  errors=errors or [], form=filled)  # fmt: skip


@router.get("/connections/{connection_id}/edit")
async def edit_form(
    request: Request, connection_id: Id, viewer: ManageViewer, session: SessionDep
) -> Response:
    found = await connections.get_connection(
        session, org_id=viewer.org_id, connection_id=connection_id
    )
    return _edit_page(request, viewer, found)


@router.post("/connections/{connection_id}/edit")
async def edit(
    request: Request,
    connection_id: Id,
    viewer: ManageViewer,
    db: DatabaseDep,
    settings: SettingsDep,
    name: Annotated[str, Form(max_length=1000)] = "",
    settings_json: Annotated[str, Form(max_length=100_000)] = "",
    credentials_json: Annotated[str, Form(max_length=100_000)] = "",
    max_concurrency: Annotated[str, Form(max_length=10)] = "10",
    max_per_second: Annotated[str, Form(max_length=20)] = "",
    is_default: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    async with db.transaction(write=False) as session:  # the kind says which settings are hosts
        found = await connections.get_connection(
            session, org_id=viewer.org_id, connection_id=connection_id
        )
    try:
        data: dict[str, Any] = {"name": name.strip(),
                                "max_concurrency": max_concurrency.strip() or "10",
                                "max_per_second": max_per_second.strip() or None,
                                "is_default": is_default == "on"}  # fmt: skip
        typed = _document("settings", settings_json)
        if typed != (found.settings or {}):  # unchanged: kept, with the secret settings
            data["settings"] = typed
        if credentials_json.strip():  # blank: the stored credentials are kept
            data["credentials"] = _document("credentials", credentials_json)
        body = validated(ConnectionUpdate, data)
        await check_addresses(found.kind, body.settings or {}, policy=settings.outbound_policy)
        async with db.transaction() as session:
            before = audited_connection(await connections.get_connection(
                session, org_id=viewer.org_id, connection_id=connection_id))  # fmt: skip
            changed = await connections.update_connection(
                session, org_id=viewer.org_id, connection_id=connection_id,
                changes=changes_of(body, ConnectionChanges),
            )  # fmt: skip
            await audit.record(session, org_id=viewer.org_id, by=viewer,
                               action=Action.CONNECTION_UPDATE, target_id=connection_id,
                               changes=diff(before, audited_connection(changed)))  # fmt: skip
    except InvalidInput as exc:
        form = {
            "name": name,
            "settings_json": settings_json,
            "max_concurrency": max_concurrency,
            "max_per_second": max_per_second,
            "is_default": is_default,
        }  # never credentials
        return _edit_page(request, viewer, found, status=422, errors=exc.errors, form=form)
    return redirect("/connections", viewer, flash=f"Connection {changed.name!r} saved")


def _confirm(request: Request, viewer: Viewer, found: Connection, *, status: int = 200,
             refused: str | None = None) -> Response:  # fmt: skip
    return render(request, "confirm.html", viewer, status_code=status,
                  what=f"connection {found.name!r}", action=f"/connections/{found.id}/delete",
                  back="/connections", refused=refused,
                  note="It is hidden and kept as the history of the sends that used it; "
                  "refused while a send in flight or a campaign uses it.")  # fmt: skip


@router.get("/connections/{connection_id}/delete")
async def delete_form(
    request: Request, connection_id: Id, viewer: ManageViewer, session: SessionDep
) -> Response:
    found = await connections.get_connection(
        session, org_id=viewer.org_id, connection_id=connection_id
    )
    return _confirm(request, viewer, found)


@router.post("/connections/{connection_id}/delete")
async def delete(
    request: Request, connection_id: Id, viewer: ManageViewer, db: DatabaseDep
) -> Response:
    async with db.transaction(write=False) as session:
        found = await connections.get_connection(
            session, org_id=viewer.org_id, connection_id=connection_id
        )
    try:
        async with db.transaction() as session:
            before = audited_connection(await connections.get_connection(
                session, org_id=viewer.org_id, connection_id=connection_id))  # fmt: skip
            await retirement.delete_connection(
                session, org_id=viewer.org_id, connection_id=connection_id
            )
            await audit.record(session, org_id=viewer.org_id, by=viewer,
                               action=Action.CONNECTION_DELETE, target_id=connection_id,
                               changes=diff(before, None))  # fmt: skip
    except Conflict as exc:
        return _confirm(request, viewer, found, status=409, refused=exc.detail)
    return redirect("/connections", viewer, flash=f"Connection {found.name!r} deleted")
