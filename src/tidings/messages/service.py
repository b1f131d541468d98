"""Messages: single sends, reading the outbox, and what the sink recorded."""

from __future__ import annotations

import json

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.campaigns.recipients import address_or_skip
from tidings.campaigns.service import get_campaign
from tidings.channels.models import SinkMessage
from tidings.contacts.service import get_contact, upsert_contacts
from tidings.credits.service import charge_messages
from tidings.db.base import utcnow
from tidings.db.engine import begin_write
from tidings.db.owned import get_owned, owned_page
from tidings.errors import FieldError, InvalidInput
from tidings.idempotency import service as idempotency
from tidings.messages.models import Message
from tidings.messages.schemas import MessageOut, SingleSend
from tidings.orgs.service import get_org

MAX_VARIABLES_BYTES = 16_384


async def get_message(session: AsyncSession, *, org_id: int, message_id: int) -> Message:
    return await get_owned(session, Message, org_id=org_id, ident=message_id, what="message")


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
    query = owned_page(Message, org_id=org_id, after_id=after_id, limit=limit)
    if broadcast_id is not None:
        query = query.where(Message.broadcast_id == broadcast_id)
    if status is not None:
        query = query.where(Message.status == status)
    if contact_id is not None:
        query = query.where(Message.contact_id == contact_id)
    return list(await session.scalars(query))


async def list_sink_messages(
    session: AsyncSession,
    *,
    org_id: int,
    after_id: int | None,
    limit: int,
    message_id: int | None = None,
) -> list[SinkMessage]:
    query = owned_page(SinkMessage, org_id=org_id, after_id=after_id, limit=limit)
    if message_id is not None:
        query = query.where(SinkMessage.message_id == message_id)
    return list(await session.scalars(query))


async def send_single(
    session: AsyncSession,
    *,
    org_id: int,
    body: SingleSend,
    claim: idempotency.Claim | None = None,
    is_test: bool = False,
) -> Message:
    """Queue one message; with an idempotency `claim`, its answer is stored in the same
    transaction as the message, so a retry replays it or, after a crash, sends once.
    Its cost is reserved in that transaction too: InsufficientCredit (402) queues nothing."""
    now = utcnow()
    contact_id = body.contact_id
    if body.to is not None:
        report = await upsert_contacts(session, org_id=org_id, rows=[body.to])
        if report.errors:
            raise InvalidInput([FieldError(f"to.{e.field}", e.reason) for e in report.errors])
        contact_id = report.outcomes[0].contact_id
    if len(json.dumps(body.variables, ensure_ascii=False).encode()) > MAX_VARIABLES_BYTES:
        raise InvalidInput.field("variables", f"larger than {MAX_VARIABLES_BYTES} bytes as JSON")
    await begin_write(session)
    campaign = await get_campaign(session, org_id=org_id, campaign_id=body.campaign_id)
    assert contact_id is not None
    contact = await get_contact(session, org_id=org_id, contact_id=contact_id)
    org = await get_org(session, org_id=org_id)
    address, reason = address_or_skip(campaign, contact, sms_countries=org.sms_countries)
    status = "skipped" if reason else "queued"
    message = Message(
        org_id=org_id,
        campaign_id=campaign.id,
        contact_id=contact.id,
        channel=campaign.channel,
        recipient=address,
        variables=body.variables or None,
        status=status,
        is_test=is_test,
        reason=reason,
        attempts=0,
        due_at=body.send_at or now,
        created_at=now,
        finished_at=now if status == "skipped" else None,
    )
    session.add(message)
    await session.flush()
    if status == "queued" and await charge_messages(
        session,
        org_id=org_id,
        channel=campaign.channel,
        where=Message.id == message.id,
        reference=f"message:{message.id}",
    ):
        await session.refresh(message, ["cost"])
    if claim is not None:
        answer = MessageOut.model_validate(message).model_dump(mode="json")
        await idempotency.finish(session, claim=claim, status_code=201, body=answer)
    await session.commit()
    return message
