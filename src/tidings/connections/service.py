"""Connections: an org's providers. Credentials are write-only; one default per channel."""

from __future__ import annotations

import hmac

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.connections.kinds import validated
from tidings.connections.models import Connection
from tidings.connections.schemas import ConnectionCreate
from tidings.db.names import require_free_name, unique_name
from tidings.db.owned import get_owned
from tidings.errors import InvalidInput, NotFound


async def create_connection(
    session: AsyncSession, *, org_id: int, body: ConnectionCreate
) -> Connection:
    settings, credentials = validated(body.kind, body.channel, body.settings, body.credentials)
    await require_free_name(session, Connection, org_id=org_id, name=body.name, what="connection")
    if body.email_service is not None and body.channel != "email":
        raise InvalidInput.field("email_service", "for email connections only")
    connection = Connection(
        org_id=org_id,
        name=body.name,
        channel=body.channel,
        kind=body.kind,
        settings=settings,
        credentials=credentials,
        max_per_second=body.max_per_second,
        max_concurrency=body.max_concurrency,
        is_default=body.is_default,
        email_service=body.email_service,
    )
    # The other connections give up the default and the service in the savepoint too, so
    # a name taken meanwhile leaves them as they were.
    async with unique_name(session, name=body.name, what="connection"):
        if body.is_default:
            await session.execute(
                update(Connection)
                .where(Connection.org_id == org_id, Connection.channel == body.channel)
                .values(is_default=False)
            )
        if body.email_service is not None:
            await session.execute(
                update(Connection)
                .where(Connection.org_id == org_id, Connection.email_service == body.email_service)
                .values(email_service=None)
            )
        session.add(connection)
    return connection


async def get_connection(session: AsyncSession, *, org_id: int, connection_id: int) -> Connection:
    return await get_owned(
        session, Connection, org_id=org_id, ident=connection_id, what="connection"
    )


async def list_connections(session: AsyncSession, *, org_id: int) -> list[Connection]:
    query = select(Connection).where(Connection.org_id == org_id).order_by(Connection.id)
    return list(await session.scalars(query))


async def default_connections(session: AsyncSession, *, org_id: int) -> dict[str, int]:
    """The org's default connection id by channel; a channel absent here uses the sink."""
    rows = await session.execute(
        select(Connection.channel, Connection.id).where(
            Connection.org_id == org_id, Connection.is_default.is_(True)
        )
    )
    return {channel: ident for channel, ident in rows}  # noqa: C416 — rows, not pairs


def token_matches(expected: object, given: str) -> bool:
    """A URL token of a public per-connection endpoint against the stored credential, in
    constant time; a missing credential matches nothing."""
    return isinstance(expected, str) and hmac.compare_digest(expected.encode(), given.encode())


async def connection_by_token(
    session: AsyncSession,
    *,
    connection_id: int,
    channel: str,
    credential: str,
    token: str,
    what: str,
) -> Connection:
    """The `channel` connection whose write-only `credential` is `token`, else NotFound
    naming `what` (an unknown connection and a wrong token look the same)."""
    connection = await session.get(Connection, connection_id)
    if (
        connection is None
        or connection.channel != channel
        or not token_matches(connection.credentials.get(credential), token)
    ):
        raise NotFound(what, connection_id)
    return connection
