"""Messages: single sends, reading the outbox, and what the sink recorded.

A single send names what it sends in one of three ways: a campaign; a template; or
inline content, which is stored as an inline template. Without a campaign the message
goes out under the hidden campaign for its template, sender and purpose
(`campaigns.service.single_send_campaign`), so every message is rendered and routed by
the dispatcher the same way. The message is made with that campaign frozen as it is when
the send is accepted (`campaigns.versions`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.campaigns.models import Campaign
from tidings.campaigns.schemas import Purpose
from tidings.campaigns.service import get_campaign, single_send_campaign
from tidings.campaigns.versions import freeze
from tidings.channels.models import SinkMessage
from tidings.connections.models import Connection
from tidings.contacts.models import Contact
from tidings.contacts.normalize import normalize_email, normalize_phone
from tidings.contacts.service import get_contact, upsert_contacts
from tidings.content.render import Renderer
from tidings.credits.service import charge_messages
from tidings.db.base import utcnow
from tidings.db.owned import get_owned, owned_page
from tidings.errors import FieldError, InvalidInput
from tidings.messages.schemas import SingleSend
from tidings.orgs.service import get_org
from tidings.outbox import create as outbox
from tidings.outbox.models import Message, MessageAttempt
from tidings.outbox.status import HANDED_OVER, MessageStatus
from tidings.templates.schemas import Channel
from tidings.templates.service import check_inline, get_template, inline_template

MAX_VARIABLES_BYTES = 16_384
SOURCES = ("campaign_id", "template_id", "content")
SENDER_FIELDS = (
    "channel",
    "purpose",
    "from_name",
    "from_email",
    "reply_to",
    "sms_sender",
    "connection_id",
    "connection_ids",
)


async def get_message(session: AsyncSession, *, org_id: int, message_id: int) -> Message:
    return await get_owned(session, Message, org_id=org_id, ident=message_id, what="message")


@dataclass(frozen=True, slots=True)
class Attempt:
    """One attempt at sending a message: its number, the connection it went through
    (None: the sink, or never handed to one) and that connection's name, when it
    ended, and how (`retried` or `failed over` for one kept in `message_attempts`; the
    message's status for the last one, which is the message row itself)."""

    attempt: int
    connection_id: int | None
    connection_name: str | None
    at: datetime | None
    outcome: str
    reason: str | None


_ENDED_BY_ATTEMPT = HANDED_OVER | {MessageStatus.FAILED}


async def attempts(session: AsyncSession, *, message: Message) -> list[Attempt]:
    """The attempts of the org's message, oldest first (read only): those kept in
    `message_attempts` (through its message_id index), then, once the message ended on
    an attempt (sent, or failed), that last one, read from the message row. A message
    sent at its first attempt has one, and none is kept for it."""
    kept = await session.execute(
        select(MessageAttempt, Connection.name)
        .outerjoin(
            Connection,
            (Connection.id == MessageAttempt.connection_id)
            & (Connection.org_id == MessageAttempt.org_id),
        )
        .where(MessageAttempt.org_id == message.org_id, MessageAttempt.message_id == message.id)
        .order_by(MessageAttempt.attempt, MessageAttempt.id)
    )
    found = [
        Attempt(a.attempt, a.connection_id, name, a.at, a.outcome, a.reason) for a, name in kept
    ]
    last = found[-1].attempt if found else 0
    if MessageStatus(message.status) in _ENDED_BY_ATTEMPT and message.attempts > last:
        name = None
        if message.connection_id is not None:
            name = await session.scalar(
                select(Connection.name).where(
                    Connection.id == message.connection_id, Connection.org_id == message.org_id
                )
            )
        at = message.sent_at or message.finished_at
        ended = "sent" if message.sent_at is not None else MessageStatus(message.status).value
        reason = None if ended == "sent" else message.reason
        found.append(Attempt(message.attempts, message.connection_id, name, at, ended, reason))
    return found


async def list_messages(
    session: AsyncSession,
    *,
    org_id: int,
    after_id: int | None,
    limit: int,
    broadcast_id: int | None = None,
    status: str | None = None,
    contact_id: int | None = None,
    address: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    newest_first: bool = False,
) -> list[Message]:
    """A page of the org's messages in id order (newest first when asked). `address`: an
    email or phone as stored (`recipient_of` reads one as typed), matched through the org's
    contact with it (indexed, and still found once the message's own copy of it is erased);
    `since` inclusive, `until` exclusive, on `created_at`."""
    query = owned_page(
        Message, org_id=org_id, after_id=after_id, limit=limit, newest_first=newest_first
    )
    if address is not None:
        wanted = address.strip()
        named = select(Contact.id).where(
            Contact.org_id == org_id,
            (Contact.email == wanted.lower()) | (Contact.phone == wanted),
        )
        query = query.where(Message.contact_id.in_(named))
    if since is not None:
        query = query.where(Message.created_at >= since)
    if until is not None:
        query = query.where(Message.created_at < until)
    if broadcast_id is not None:
        query = query.where(Message.broadcast_id == broadcast_id)
    if status is not None:
        query = query.where(Message.status == status)
    if contact_id is not None:
        query = query.where(Message.contact_id == contact_id)
    return list(await session.scalars(query))


async def recipient_of(session: AsyncSession, *, org_id: int, raw: str) -> str:
    """An email address or phone number as typed, as messages store it (lower-cased
    address; E.164, national numbers read in the org's phone region). InvalidInput
    naming `to` when it is neither."""
    try:
        if "@" in raw:
            return normalize_email(raw)
        org = await get_org(session, org_id=org_id)
        return normalize_phone(raw, org.phone_region)
    except ValueError as exc:
        raise InvalidInput.field("to", str(exc)) from None


async def list_sink_messages(
    session: AsyncSession,
    *,
    org_id: int,
    after_id: int | None,
    limit: int,
    message_id: int | None = None,
    newest_first: bool = False,
) -> list[SinkMessage]:
    query = owned_page(
        SinkMessage, org_id=org_id, after_id=after_id, limit=limit, newest_first=newest_first
    )
    if message_id is not None:
        query = query.where(SinkMessage.message_id == message_id)
    return list(await session.scalars(query))


async def get_sink_message(session: AsyncSession, *, org_id: int, sink_id: int) -> SinkMessage:
    """One message the sink recorded for the org, by its id in the sink (NotFound)."""
    return await get_owned(session, SinkMessage, org_id=org_id, ident=sink_id, what="sink message")


async def check_source(body: SingleSend, *, renderer: Renderer) -> None:
    """What to send, checked without I/O: exactly one of campaign_id, template_id and
    content; sender fields only without a campaign; inline content that fits its channel
    and compiles. InvalidInput names each field."""
    given = [name for name in SOURCES if getattr(body, name) is not None]
    if not given:
        raise InvalidInput.field("campaign_id", f"give one of {', '.join(SOURCES)}")
    if len(given) > 1:
        raise InvalidInput(
            [
                FieldError(name, f"give one of {', '.join(SOURCES)}, not {given[0]} too")
                for name in given[1:]
            ]
        )
    errors: list[FieldError] = []
    if body.campaign_id is not None:
        errors += [
            FieldError(name, "the campaign sets it; give template_id or content to set it here")
            for name in SENDER_FIELDS
            if getattr(body, name) is not None
        ]
    content = body.content
    if content is not None:
        if body.channel is None:
            errors.append(FieldError("channel", "required with content: email or sms"))
        elif body.channel is Channel.EMAIL:
            if not content.subject:
                errors.append(FieldError("content.subject", "an email needs a subject"))
            if not (content.html or content.text):
                errors.append(FieldError("content", "an email needs html or text"))
        else:
            if not content.text:
                errors.append(FieldError("content.text", "an SMS needs text"))
            errors += [
                FieldError(f"content.{part}", "an SMS has text only")
                for part in ("subject", "html")
                if getattr(content, part) is not None
            ]
    if errors:
        raise InvalidInput(errors)
    if content is not None and body.channel is not None:
        await check_inline(renderer, channel=body.channel, **content.model_dump())


async def _campaign_for(session: AsyncSession, *, org_id: int, body: SingleSend) -> Campaign:
    """The campaign the message goes out under (query helper, in the caller's write
    transaction): the one named, else the hidden one for the template or inline content
    and the sender. A template of another org is a 404."""
    if body.campaign_id is not None:
        return await get_campaign(session, org_id=org_id, campaign_id=body.campaign_id)
    if body.template_id is not None:
        template = await get_template(session, org_id=org_id, template_id=body.template_id)
        if body.channel is not None and body.channel != template.channel:
            raise InvalidInput.field(
                "channel", f"template {template.id} is a {template.channel} template"
            )
    else:
        assert body.content is not None  # check_source
        assert body.channel is not None
        template = await inline_template(
            session, org_id=org_id, channel=body.channel.value, **body.content.model_dump()
        )
    return await single_send_campaign(
        session,
        org_id=org_id,
        channel=template.channel,
        template_id=template.id,
        purpose=(body.purpose or Purpose.TRANSACTIONAL).value,
        from_name=body.from_name,
        from_email=body.from_email,
        reply_to=body.reply_to,
        sms_sender=body.sms_sender,
        connection_id=body.connection_id,
        connection_ids=body.connection_ids,
    )


async def send_single(
    session: AsyncSession,
    *,
    org_id: int,
    body: SingleSend,
    renderer: Renderer,
    is_test: bool = False,
) -> Message:
    """Queue one message (query helper: the caller's write transaction). Its cost is
    reserved in it as well: InsufficientCredit (402) queues nothing."""
    now = utcnow()
    await check_source(body, renderer=renderer)
    if len(json.dumps(body.variables, ensure_ascii=False).encode()) > MAX_VARIABLES_BYTES:
        raise InvalidInput.field("variables", f"larger than {MAX_VARIABLES_BYTES} bytes as JSON")
    # The campaign frozen before any contact is written, as a broadcast does: two sends
    # that wrote them in opposite orders would wait on each other (a deadlock on
    # PostgreSQL) when both freeze the same new version and name the same new contact.
    frozen = await freeze(session, campaign=await _campaign_for(session, org_id=org_id, body=body))
    contact_id = body.contact_id
    if body.to is not None:
        report = await upsert_contacts(session, org_id=org_id, rows=[body.to])
        if report.errors:
            raise InvalidInput([FieldError(f"to.{e.field}", e.reason) for e in report.errors])
        contact_id = report.outcomes[0].contact_id
    assert contact_id is not None
    contact = await get_contact(session, org_id=org_id, contact_id=contact_id)
    org = await get_org(session, org_id=org_id)
    message = await outbox.add_one(
        session,
        batch=outbox.Batch(org_id, None, frozen, is_test, now),
        contact=contact,
        variables=body.variables,
        sms_countries=org.sms_countries,
        send_at=body.send_at,
    )
    if message.status == MessageStatus.QUEUED and await charge_messages(
        session,
        org_id=org_id,
        channel=frozen.channel,
        where=Message.id == message.id,
        reference=f"message:{message.id}",
    ):
        await session.refresh(message, ["cost"])
    return message
