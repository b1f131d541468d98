"""Factories for the sending side: a template, a campaign, a list of contacts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.support.factories import OrgWithKey
from tidings.broadcasts import service as broadcasts
from tidings.broadcasts.schemas import BroadcastCreate
from tidings.campaigns import service as campaigns
from tidings.campaigns.schemas import CampaignCreate
from tidings.contacts import service as contacts
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.lists import service as lists
from tidings.templates import service as templates

SUBJECT = "Hello {{ first_name }}, your {{ plan | default('free') }} plan"
HTML = "<p>Dear {{ first_name }} {{ last_name }},</p><p>Code {{ code }}</p>"
TEXT = "Dear {{ first_name }}, code {{ code }}"


@dataclass(frozen=True)
class Audience:
    list_id: int
    contact_ids: list[int]


async def email_campaign(
    db: Database, org: OrgWithKey, *, purpose: str = "transactional", name: str = "c"
) -> int:
    async with db.session() as session:
        template = await templates.create_template(
            session,
            org_id=org.id,
            renderer=Renderer(),
            name=f"{name}-template",
            channel="email",
            subject=SUBJECT,
            html=HTML,
            text=TEXT,
        )
    async with db.session() as session:
        campaign = await campaigns.create_campaign(
            session,
            org_id=org.id,
            body=CampaignCreate.model_validate(
                {
                    "name": name,
                    "channel": "email",
                    "template_id": template.id,
                    "purpose": purpose,
                    "from_name": "Acme Research",
                    "from_email": "research@acme.example",
                }
            ),
        )
    return campaign.id


async def audience(db: Database, org: OrgWithKey, rows: list[dict[str, Any]]) -> Audience:
    async with db.session() as session:
        made = await lists.create_list(session, org_id=org.id, name="audience", description=None)
    async with db.session() as session:
        report = await contacts.upsert_contacts(
            session, org_id=org.id, rows=rows, list_ids=[made.list.id]
        )
    assert report.failed == 0, report.errors
    ids = [o.contact_id for o in report.outcomes if o.contact_id is not None]
    return Audience(made.list.id, ids)


async def broadcast_now(db: Database, org: OrgWithKey, campaign_id: int, list_id: int) -> int:
    async with db.session() as session:
        created = await broadcasts.create_broadcast(
            session,
            org_id=org.id,
            body=BroadcastCreate(name="b", campaign_id=campaign_id, list_ids=[list_id]),
        )
    return created.broadcast.id
