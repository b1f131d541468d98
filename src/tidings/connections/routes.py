from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from tidings.api.deps import (
    DatabaseDep,
    ManageKey,
    ReadKey,
    SessionDep,
    SettingsDep,
    WriteSessionDep,
)
from tidings.api.fields import Id
from tidings.api.patch import changes_of
from tidings.api.problems import answers
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.audit.diff import diff, secrets, view
from tidings.connections import health, service
from tidings.connections.kinds import check_addresses
from tidings.connections.models import Connection
from tidings.connections.schemas import (
    ConnectionChanges,
    ConnectionCreate,
    ConnectionHealthOut,
    ConnectionOut,
    ConnectionUpdate,
    connection_out,
)
from tidings.db.base import utcnow
from tidings.idempotency.http import IDEMPOTENT, IdempotentRoute
from tidings.retirement import service as retirement

router = APIRouter(
    prefix="/orgs/{org_id}/connections", tags=["connections"], route_class=IdempotentRoute
)


def audited_connection(c: Connection) -> dict[str, object]:
    """What the audit shows of a connection: its settings, and of its credentials only
    whether each was set, changed or removed."""
    return view(connection_out(c), drop=frozenset({"credentials_set"})) | secrets(
        "credentials", c.credentials
    )


# The hosts a connection's settings name are vetted by a dependency declared after the key
# and before the write session: vetting resolves names, and a tenant's slow DNS must not
# hold the write transaction (on SQLite, the process's write turn).


async def _checked_create(
    body: ConnectionCreate, key: ManageKey, settings: SettingsDep
) -> ConnectionCreate:
    await check_addresses(body.kind, body.settings, policy=settings.outbound_policy)
    return body


async def _checked_update(
    connection_id: Id,
    body: ConnectionUpdate,
    key: ManageKey,
    db: DatabaseDep,
    settings: SettingsDep,
) -> ConnectionUpdate:
    if body.settings is not None:
        async with db.session() as session:  # the kind says which settings are hosts
            connection = await service.get_connection(
                session, org_id=key.org_id, connection_id=connection_id
            )
        await check_addresses(connection.kind, body.settings, policy=settings.outbound_policy)
    return body


CheckedCreate = Annotated[ConnectionCreate, Depends(_checked_create)]
CheckedUpdate = Annotated[ConnectionUpdate, Depends(_checked_update)]


@router.post(
    "",
    status_code=201,
    summary="Add a provider connection (credentials write-only; its hosts vetted)",
    responses=answers(422),
    dependencies=[IDEMPOTENT],
)
async def create_connection(
    org_id: Id, key: ManageKey, body: CheckedCreate, session: WriteSessionDep
) -> ConnectionOut:
    connection = await service.create_connection(session, org_id=key.org_id, body=body)
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.CONNECTION_CREATE,
        target_id=connection.id,
        changes=diff(None, audited_connection(connection)),
    )
    return connection_out(connection)


@router.get("", summary="List connections (never their credentials)")
async def list_connections(org_id: Id, key: ReadKey, session: SessionDep) -> list[ConnectionOut]:
    return [connection_out(c) for c in await service.list_connections(session, org_id=key.org_id)]


@router.get(
    "/{connection_id}",
    summary="Read a connection (never its credentials)",
    responses=answers(404),
)
async def get_connection(
    org_id: Id, connection_id: Id, key: ReadKey, session: SessionDep
) -> ConnectionOut:
    connection = await service.get_connection(
        session, org_id=key.org_id, connection_id=connection_id
    )
    return connection_out(connection)


@router.get(
    "/{connection_id}/health",
    summary="Read a connection's circuit breaker: state, error rate in the window",
    responses=answers(404),
)
async def get_connection_health(
    org_id: Id, connection_id: Id, key: ReadKey, session: SessionDep, settings: SettingsDep
) -> ConnectionHealthOut:
    found = await health.get_health(
        session,
        org_id=key.org_id,
        connection_id=connection_id,
        now=utcnow(),
        policy=health.breaker_policy(settings),
    )
    return ConnectionHealthOut.model_validate(found)


@router.patch(
    "/{connection_id}",
    summary="Change a connection; new credentials apply to what is not handed over yet",
    responses=answers(404, 422),
)
async def update_connection(
    org_id: Id,
    connection_id: Id,
    key: ManageKey,
    body: CheckedUpdate,
    session: WriteSessionDep,
) -> ConnectionOut:
    before = audited_connection(
        await service.get_connection(session, org_id=key.org_id, connection_id=connection_id)
    )
    connection = await service.update_connection(
        session,
        org_id=key.org_id,
        connection_id=connection_id,
        changes=changes_of(body, ConnectionChanges),
    )
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.CONNECTION_UPDATE,
        target_id=connection_id,
        changes=diff(before, audited_connection(connection)),
    )
    return connection_out(connection)


@router.delete(
    "/{connection_id}",
    status_code=204,
    summary="Delete a connection: hidden, kept for the sends that used it",
    responses=answers(404, 409),
)
async def delete_connection(
    org_id: Id, connection_id: Id, key: ManageKey, session: WriteSessionDep
) -> None:
    before = audited_connection(
        await service.get_connection(session, org_id=key.org_id, connection_id=connection_id)
    )
    await retirement.delete_connection(session, org_id=key.org_id, connection_id=connection_id)
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.CONNECTION_DELETE,
        target_id=connection_id,
        changes=diff(before, None),
    )
