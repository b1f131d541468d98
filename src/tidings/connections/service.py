"""Connections: an org's providers. Credentials are write-only; one default per channel.

A connection can be changed (its credentials replaced: workers build its channel again
when its `updated_at` moves) and deleted (hidden, kept as history for the sends that used
it; `retirement` checks that nothing in flight still does).
"""

from __future__ import annotations

import hmac

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.connections.kinds import as_written, validated
from tidings.connections.models import Connection
from tidings.connections.schemas import ConnectionChanges, ConnectionCreate
from tidings.db.base import utcnow
from tidings.db.names import require_free_name, unique_name
from tidings.db.owned import get_owned
from tidings.errors import InvalidInput, NotFound

LIVE = Connection.deleted_at.is_(None)


async def create_connection(
    session: AsyncSession, *, org_id: int, body: ConnectionCreate
) -> Connection:
    settings, credentials = validated(body.kind, body.channel, body.settings, body.credentials)
    await require_free_name(
        session, Connection, org_id=org_id, name=body.name, what="connection", where=LIVE
    )
    _check_email_service(body.channel, body.email_service)
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
        await _take_over(session, connection)
        session.add(connection)
    return connection


async def update_connection(
    session: AsyncSession, *, org_id: int, connection_id: int, changes: ConnectionChanges
) -> Connection:
    """Change what the request set, checked as a new connection's fields are."""
    connection = await get_connection(session, org_id=org_id, connection_id=connection_id)
    if "settings" in changes or "credentials" in changes:
        written = as_written(connection.kind, connection.settings, connection.credentials)
        settings, credentials = validated(
            connection.kind,
            connection.channel,
            changes.get("settings", written[0]),
            changes.get("credentials", written[1]),
            stored=connection.credentials,
        )
        connection.settings, connection.credentials = settings, credentials
    if "email_service" in changes:
        _check_email_service(connection.channel, changes["email_service"])
    name = changes.get("name", connection.name)
    if "name" in changes:
        await require_free_name(
            session,
            Connection,
            org_id=org_id,
            name=name,
            what="connection",
            except_id=connection_id,
            where=LIVE,
        )
    async with unique_name(session, name=name, what="connection"):
        for field, value in changes.items():
            if field not in ("settings", "credentials"):  # validated together above
                setattr(connection, field, value)
        await _take_over(session, connection)
    return connection


def _check_email_service(channel: str, email_service: str | None) -> None:
    if email_service is not None and channel != "email":
        raise InvalidInput.field("email_service", "for email connections only")


async def _take_over(session: AsyncSession, connection: Connection) -> None:
    """The org's other connections give up what this one now is: the channel's default,
    and the seed-001 service."""
    others = [Connection.org_id == connection.org_id, LIVE]
    if connection.id is not None:
        others.append(Connection.id != connection.id)
    if connection.is_default:
        await session.execute(
            update(Connection)
            .where(*others, Connection.channel == connection.channel)
            .values(is_default=False)
        )
    if connection.email_service is not None:
        await session.execute(
            update(Connection)
            .where(*others, Connection.email_service == connection.email_service)
            .values(email_service=None)
        )


def mark_deleted(connection: Connection) -> None:
    """Hide the connection (its name and seed-001 service free again; no longer the
    default), kept as history; the caller has checked nothing in flight uses it
    (`retirement`)."""
    connection.deleted_at = utcnow()
    connection.is_default = False


async def get_connection(session: AsyncSession, *, org_id: int, connection_id: int) -> Connection:
    """The org's connection, unless deleted (NotFound)."""
    return await get_owned(
        session, Connection, org_id=org_id, ident=connection_id, what="connection", where=LIVE
    )


async def list_connections(session: AsyncSession, *, org_id: int) -> list[Connection]:
    query = select(Connection).where(Connection.org_id == org_id, LIVE).order_by(Connection.id)
    return list(await session.scalars(query))


async def default_connections(session: AsyncSession, *, org_id: int) -> dict[str, int]:
    """The org's default connection id by channel; a channel absent here uses the sink."""
    rows = await session.execute(
        select(Connection.channel, Connection.id).where(
            Connection.org_id == org_id, Connection.is_default.is_(True), LIVE
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
