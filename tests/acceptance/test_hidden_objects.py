"""Hidden stays hidden: the campaign a single send goes out under and the template holding
its inline content are Tidings' own. No route lists them, and every route that takes their
id answers exactly as it does for another org's campaign or template."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select

from tests.support.factories import OrgWithKey, make_org
from tests.support.sending import email_campaign
from tidings.campaigns.models import Campaign
from tidings.db.engine import Database
from tidings.templates.models import Template

ADA = {"email": "ada@example.com", "first_name": "Ada"}
INLINE: dict[str, Any] = {
    "content": {"subject": "Your code", "text": "Code {{ code }}"},
    "channel": "email",
    "from_email": "security@acme.example",
    "to": ADA,
    "variables": {"code": "493 201"},
}


@dataclass(frozen=True)
class Ids:
    campaign: int
    template: int


async def _hidden(client: httpx.AsyncClient, db: Database, org: OrgWithKey) -> Ids:
    """A single send of inline content: its hidden campaign and inline template."""
    sent = await client.post(f"/v1/orgs/{org.id}/messages", json=INLINE, headers=org.bearer)
    assert sent.status_code == 201, sent.text
    async with db.session() as session:
        campaign = await session.get_one(Campaign, sent.json()["campaign_id"])
        template = await session.get_one(Template, campaign.template_id)
    assert (campaign.is_single_send, template.is_inline) == (True, True)
    return Ids(campaign.id, template.id)


async def _foreign(db: Database) -> Ids:
    """A campaign and its template in another org: what the hidden ones must look like."""
    other = await make_org(db, "Other")
    campaign_id = await email_campaign(db, other)
    async with db.session() as session:
        campaign = await session.get_one(Campaign, campaign_id)
    return Ids(campaign.id, campaign.template_id)


def _shape(response: httpx.Response) -> tuple[int, list[str]]:
    """Status and the fields a problem names: equal for a hidden id and a foreign one."""
    body = response.json() if response.content else {}
    fields = [e["field"] for e in body.get("errors", [])] if isinstance(body, dict) else []
    return response.status_code, fields


async def test_every_native_route_answers_a_hidden_id_as_another_org_s(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    hidden, foreign = await _hidden(client, db, org), await _foreign(db)
    base, h = f"/v1/orgs/{org.id}", org.bearer
    own_template = await client.post(
        f"{base}/templates",
        headers=h,
        json={"name": "mine", "channel": "email", "subject": "Hi", "text": "Hello"},
    )
    assert own_template.status_code == 201, own_template.text

    def requests(ids: Ids) -> list[tuple[str, str, dict[str, Any] | None]]:
        c, t = ids.campaign, ids.template
        return [
            ("GET", f"{base}/campaigns/{c}", None),
            ("PATCH", f"{base}/campaigns/{c}", {"name": "mine now"}),
            ("DELETE", f"{base}/campaigns/{c}", None),
            ("GET", f"{base}/campaigns/{c}/stats", None),
            ("POST", f"{base}/campaigns/{c}/invites", {"recipients": [{"variables": ADA}]}),
            ("POST", f"{base}/broadcasts", {"campaign_id": c, "send_to_all": True}),
            ("POST", f"{base}/messages", {"campaign_id": c, "to": ADA}),
            ("GET", f"{base}/templates/{t}", None),
            ("PATCH", f"{base}/templates/{t}", {"text": "hijacked"}),
            ("DELETE", f"{base}/templates/{t}", None),
            ("GET", f"{base}/templates/{t}/versions", None),
            ("GET", f"{base}/templates/{t}/versions/1", None),
            ("POST", f"{base}/templates/{t}/versions/1/restore", None),
            ("POST", f"{base}/templates/{t}/preview", {"variables": {}}),
            (
                "POST",
                f"{base}/campaigns",
                {"name": "reuse", "channel": "email", "template_id": t, "from_email": "a@b.io"},
            ),
            (
                "POST",
                f"{base}/messages",
                {"template_id": t, "from_email": "a@b.io", "to": ADA},
            ),
        ]

    for (method, path, body), (_, foreign_path, foreign_body) in zip(
        requests(hidden), requests(foreign), strict=True
    ):
        answer = await client.request(method, path, json=body, headers=h)
        expected = await client.request(method, foreign_path, json=foreign_body, headers=h)
        assert _shape(answer) == _shape(expected), (method, path, answer.text)
        assert answer.status_code in (404, 422), (method, path, answer.text)

    listed = (await client.get(f"{base}/campaigns", headers=h)).json()["data"]
    assert listed == []
    templates = (await client.get(f"{base}/templates", headers=h)).json()["data"]
    assert [t["name"] for t in templates] == ["mine"]
    async with db.session() as session:  # nothing was changed, deleted or made from them
        campaign = await session.get_one(Campaign, hidden.campaign)
        template = await session.get_one(Template, hidden.template)
        campaigns = list(await session.scalars(select(Campaign.name)))
    assert (campaign.deleted_at, campaign.name.startswith("single send")) == (None, True)
    assert (template.deleted_at, template.text) == (None, "Code {{ code }}")
    assert "reuse" not in campaigns


async def test_the_dialects_do_not_find_hidden_objects(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    hidden = await _hidden(client, db, org)
    async with db.session() as session:
        inline_name = (await session.get_one(Template, hidden.template)).name

    invent = await client.post(
        f"/compat/invent/orgs/{org.id}/broadcasts",
        headers=org.bearer,
        json={"name": "b", "send_to_all": True, "templates": [{"campaign_id": hidden.campaign}]},
    )
    assert invent.status_code == 400, invent.text
    assert invent.json()["error"]["message"].startswith("campaign_id")

    octopush = await client.post(
        "/compat/octopush/email/campaign/send",
        headers=org.header_pair,
        json={
            "recipients": [{"email": "ada@example.com"}],
            "template_name": inline_name,
            "email_from": "news@acme.example",
        },
    )
    assert (octopush.status_code, octopush.json()["code"]) == (404, 902), octopush.text

    async with db.transaction() as session:  # even if it carried the path's refs
        campaign = await session.get_one(Campaign, hidden.campaign)
        campaign.project_ref, campaign.survey_ref = "p", "s"
    walr = await client.post(
        "/compat/walr/projects/p/surveys/s/invites",
        headers=org.bearer,
        json={"campaignId": str(hidden.campaign), "recipients": [{"variables": ADA}]},
    )
    assert walr.status_code == 404, walr.text
