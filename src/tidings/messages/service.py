"""Reading messages (the outbox) and what the sink recorded."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.channels.models import SinkMessage
from tidings.errors import NotFound
from tidings.messages.models import Message


async def get_message(session: AsyncSession, *, org_id: int, message_id: int) -> Message:
    message = await session.scalar(
        select(Message).where(Message.org_id == org_id, Message.id == message_id)
    )
    if message is None:
        raise NotFound("message", message_id)
    return message


async def list_messages(
    session: AsyncSession,
    *,
    org_id: int,
    after_id: int | None,
    limit: int,
    broadcast_id: int | None = None,
    status: str | None = None,
    contact_id: int | None = None,
) -> list[Message]:
    query = select(Message).where(Message.org_id == org_id)
    if after_id is not None:
        query = query.where(Message.id > after_id)
    if broadcast_id is not None:
        query = query.where(Message.broadcast_id == broadcast_id)
    if status is not None:
        query = query.where(Message.status == status)
    if contact_id is not None:
        query = query.where(Message.contact_id == contact_id)
    return list(await session.scalars(query.order_by(Message.id).limit(limit)))


async def list_sink_messages(
    session: AsyncSession,
    *,
    org_id: int,
    after_id: int | None,
    limit: int,
    message_id: int | None = None,
) -> list[SinkMessage]:
    query = select(SinkMessage).where(SinkMessage.org_id == org_id)
    if after_id is not None:
        query = query.where(SinkMessage.id > after_id)
    if message_id is not None:
        query = query.where(SinkMessage.message_id == message_id)
    return list(await session.scalars(query.order_by(SinkMessage.id).limit(limit)))
