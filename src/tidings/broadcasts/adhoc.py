"""Ad-hoc email campaigns: one request that names its content, sender and recipients and
sends (seed 001's `POST /email/campaign/send`), on the same engine as everything else.

    request ──▶ content: the org's template by name, or a template made of the literal text
            ──▶ one campaign named after the ticket (external_id = the ticket)
            ──▶ one broadcast to the explicit recipients, now or at `send_at`;
                they join the list `list_name` (found by name, or created)
            ──▶ the ticket: contacts to be sent to, their cost, the org's balance left

All in the caller's one write transaction: a refused request (not enough credit, a bad
recipient list) leaves no half-made campaign or template behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.broadcasts.schemas import BroadcastCreate
from tidings.broadcasts.service import create_broadcast
from tidings.campaigns.schemas import CampaignCreate, Purpose
from tidings.campaigns.service import create_campaign
from tidings.connections.models import Connection
from tidings.content.literal import html_to_text, literal_source
from tidings.content.render import Renderer
from tidings.credits.models import CreditBalance
from tidings.db.base import utcnow
from tidings.errors import InvalidInput, NotFound
from tidings.lists.models import ContactList
from tidings.lists.service import create_list
from tidings.outbox.models import Message
from tidings.templates.models import Template
from tidings.templates.service import PUBLIC, create_template

DEFAULT_SUBJECT = "(no subject)"


@dataclass(frozen=True, slots=True)
class AdhocEmail:
    """A request, already cleaned by its dialect. `recipients` are contact rows with a
    valid `email`, each with its message's `variables`; `subject` and `text` are literal
    (with `{first_name}`-style placeholders); `email_service` is "mailbox", "gateway" or None."""

    recipients: list[dict[str, Any]]
    from_email: str
    purpose: Purpose
    language: str
    subject: str | None = None
    template_name: str | None = None
    text: str | None = None
    html: bool = False
    from_name: str | None = None
    send_at: datetime | None = None
    email_service: str | None = None
    list_name: str | None = None


@dataclass(frozen=True, slots=True)
class AdhocSent:
    """`contacts`: distinct contacts a message will be sent to (not skipped); `cost` and
    `balance` in micro-credits."""

    broadcast_id: int
    contacts: int
    cost: int
    balance: int


async def send_adhoc_email(
    session: AsyncSession,
    *,
    org_id: int,
    renderer: Renderer,
    request: AdhocEmail,
    ticket: str,
    is_test: bool = False,
    now: datetime | None = None,
) -> AdhocSent:
    """NotFound if `template_name` names no email template of the org; InvalidInput if
    there is no content or no recipient; InsufficientCredit from the broadcast."""
    now = now or utcnow()
    if not request.recipients:
        raise InvalidInput.field("recipients", "no contact with a valid email")
    template_id = await _content(
        session, org_id=org_id, renderer=renderer, request=request, ticket=ticket
    )
    connection_id = await _connection_for(session, org_id=org_id, service=request.email_service)
    list_id = await _list_named(session, org_id=org_id, name=request.list_name)
    campaign = await create_campaign(
        session,
        org_id=org_id,
        body=CampaignCreate(
            name=ticket,
            channel="email",
            template_id=template_id,
            purpose=request.purpose,
            from_name=request.from_name,
            from_email=request.from_email,
            connection_id=connection_id,
            external_id=ticket,
            language=request.language,
        ),
    )
    created = await create_broadcast(
        session,
        org_id=org_id,
        body=BroadcastCreate(
            name=ticket,
            campaign_id=campaign.id,
            recipients=request.recipients,
            scheduled_at=request.send_at if request.send_at and request.send_at > now else None,
        ),
        is_test=is_test,
        now=now,
        remember_in=list_id,
    )
    broadcast_id = created.broadcast.id
    contacts = int(created.broadcast.audience.get("recipients", 0)) - len(created.skipped)
    cost = await session.scalar(
        select(func.coalesce(func.sum(Message.cost), 0)).where(
            Message.org_id == org_id, Message.broadcast_id == broadcast_id
        )
    )
    balance = await session.scalar(
        select(CreditBalance.balance).where(CreditBalance.org_id == org_id)
    )
    return AdhocSent(broadcast_id, max(contacts, 0), int(cost or 0), int(balance or 0))


async def _content(
    session: AsyncSession, *, org_id: int, renderer: Renderer, request: AdhocEmail, ticket: str
) -> int:
    """The template to send: the org's, or one made of the literal text for this request."""
    subject = literal_source(request.subject) if request.subject else None
    if request.template_name:
        named = await session.scalar(
            select(Template).where(
                Template.org_id == org_id,
                Template.name == request.template_name,
                Template.channel == "email",
                PUBLIC,
            )
        )
        if named is None:
            raise NotFound("email template", repr(request.template_name))
        if subject is None:
            return named.id
        html, text = named.html, named.text  # the request's subject, the template's body
    elif request.text:
        source = literal_source(request.text)
        html, text = (source, literal_source(html_to_text(request.text))) if request.html else (
            None, source
        )  # fmt: skip
        if not text:
            text = None
    else:
        raise InvalidInput.field("text", "give template_name or text")
    made = await create_template(
        session,
        org_id=org_id,
        renderer=renderer,
        name=ticket,
        channel="email",
        subject=subject or literal_source(DEFAULT_SUBJECT),
        html=html,
        text=text,
    )
    return made.id


async def _connection_for(session: AsyncSession, *, org_id: int, service: str | None) -> int | None:
    """The connection marked for `service`; None (the org's default) if none is."""
    if service is None:
        return None
    found: int | None = await session.scalar(
        select(Connection.id).where(
            Connection.org_id == org_id,
            Connection.channel == "email",
            Connection.email_service == service,
            Connection.deleted_at.is_(None),
        )
    )
    return found


async def _list_named(session: AsyncSession, *, org_id: int, name: str | None) -> int | None:
    """The org's list called `name`, created if there is none."""
    if name is None:
        return None
    query = select(ContactList.id).where(ContactList.org_id == org_id, ContactList.name == name)
    found = await session.scalar(query)
    if found is not None:
        return int(found)
    try:  # a name taken meanwhile rolls back create_list's own savepoint only
        return (await create_list(session, org_id=org_id, name=name, description=None)).list.id
    except InvalidInput:  # created meanwhile by a concurrent request
        found = await session.scalar(query)
        if found is None:
            raise
        return int(found)
