"""Factories for the sending side: a template, a campaign, a list of contacts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from tests.support.factories import OrgWithKey
from tidings.broadcasts import service as broadcasts
from tidings.broadcasts.schemas import BroadcastCreate
from tidings.campaigns import service as campaigns
from tidings.campaigns.schemas import CampaignCreate
from tidings.contacts import service as contacts
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher
from tidings.lists import service as lists
from tidings.outbox.models import Message
from tidings.templates import service as templates

SUBJECT = "Hello {{ first_name }}, your {{ plan | default('free') }} plan"
HTML = "<p>Dear {{ first_name }} {{ last_name }},</p><p>Code {{ code }}</p>"
TEXT = "Dear {{ first_name }}, code {{ code }}"


@dataclass(frozen=True)
class Audience:
    list_id: int
    contact_ids: list[int]


async def campaign(
    db: Database,
    org: OrgWithKey,
    *,
    channel: str,
    text: str | None,
    subject: str | None = None,
    html: str | None = None,
    template_name: str = "t",
    **fields: Any,
) -> int:
    """A template and a campaign sending it; `fields` are the campaign's own (name,
    from_email, sms_sender, purpose …)."""
    async with db.transaction() as session:
        template = await templates.create_template(
            session,
            org_id=org.id,
            renderer=Renderer(),
            name=template_name,
            channel=channel,
            subject=subject,
            html=html,
            text=text,
        )
    async with db.transaction() as session:
        made = await campaigns.create_campaign(
            session,
            org_id=org.id,
            body=CampaignCreate.model_validate(
                {"channel": channel, "template_id": template.id, **fields}
            ),
        )
    return made.id


async def email_campaign(
    db: Database, org: OrgWithKey, *, purpose: str = "transactional", name: str = "c"
) -> int:
    return await campaign(
        db,
        org,
        channel="email",
        subject=SUBJECT,
        html=HTML,
        text=TEXT,
        template_name=f"{name}-template",
        name=name,
        purpose=purpose,
        from_name="Acme Research",
        from_email="research@acme.example",
    )


async def audience(db: Database, org: OrgWithKey, rows: list[dict[str, Any]]) -> Audience:
    async with db.transaction() as session:
        made = await lists.create_list(session, org_id=org.id, name="audience", description=None)
    async with db.transaction() as session:
        report = await contacts.upsert_contacts(
            session, org_id=org.id, rows=rows, list_ids=[made.list.id]
        )
    assert report.failed == 0, report.errors
    ids = [o.contact_id for o in report.outcomes if o.contact_id is not None]
    return Audience(made.list.id, ids)


async def broadcast_now(db: Database, org: OrgWithKey, campaign_id: int, list_id: int) -> int:
    async with db.transaction() as session:
        created = await broadcasts.create_broadcast(
            session,
            org_id=org.id,
            body=BroadcastCreate(name="b", campaign_id=campaign_id, list_ids=[list_id]),
        )
    return created.broadcast.id


async def sent_ids(db: Database, broadcast_id: int) -> dict[str, str]:
    """recipient → the Message-ID (without brackets) it was sent with."""
    async with db.session() as session:
        rows = await session.execute(
            select(Message.email_message_id, Message.recipient).where(
                Message.broadcast_id == broadcast_id
            )
        )
        return {r.recipient: r.email_message_id for r in rows}


@dataclass(frozen=True)
class Emailed:
    people: Audience
    broadcast_id: int
    message_ids: dict[str, str]  # recipient → Message-ID, as sent_ids


async def emailed(db: Database, org: OrgWithKey, count: int) -> Emailed:
    """p0@example.com … p{count-1}@example.com on one list, and an email broadcast to them
    sent through the org's default connection by one dispatcher drain."""
    people = await audience(db, org, [{"email": f"p{n}@example.com"} for n in range(count)])
    broadcast_id = await broadcast_now(db, org, await email_campaign(db, org), people.list_id)
    await Dispatcher(db, renderer=Renderer()).drain()
    return Emailed(people, broadcast_id, await sent_ids(db, broadcast_id))
