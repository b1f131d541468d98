"""Connections: the org's provider connections, and "test this connection".

    GET  /connections                  kind, channel, settings, limits: never credentials
    POST /connections/{id}/test        open its hosts now and say OK or the error (admin, owner)

Credentials are write-only: the page shows which credential fields are set, never a
value (secret settings are stored with the credentials, so they are hidden too). The
test is `connections.probe.probe`, through the outbound policy of `net/ssrf.py`; it
changes nothing, so it is not audited. Creating and changing connections stay with
the API and the CLI for now.
"""

from __future__ import annotations

from fastapi import Request, Response

from tidings.api.deps import DatabaseDep, SessionDep, SettingsDep
from tidings.connections import probe
from tidings.connections import service as connections
from tidings.console.deps import ManageViewer, ReadViewer
from tidings.console.pages import fragment, render
from tidings.console.routing import page_router

router = page_router()


@router.get("/connections")
async def connection_list(request: Request, viewer: ReadViewer, session: SessionDep) -> Response:
    found = await connections.list_connections(session, org_id=viewer.org_id)
    credential_fields = {c.id: sorted((c.credentials or {}).keys()) for c in found}
    return render(request, "connections/list.html", viewer, connections=found,
                  credential_fields=credential_fields)  # fmt: skip


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
