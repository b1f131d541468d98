"""Credits over HTTP and the CLI: prices, top-ups, 402 when the balance cannot cover a
send, and a balance that never goes below zero under concurrent sends."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from tests.support.factories import OrgWithKey, make_org
from tests.support.sending import email_campaign
from tidings.cli import app
from tidings.credits.models import CreditEntry
from tidings.db.engine import Database
from tidings.outbox.models import Message

runner = CliRunner()


async def _setup_billing(client: httpx.AsyncClient, org: OrgWithKey, credits: float) -> None:
    prices = await client.put(
        f"/v1/orgs/{org.id}/prices",
        json={"prices": [{"channel": "email", "amount": 1}]},
        headers=org.bearer,
    )
    assert prices.status_code == 200, prices.text
    assert prices.json() == {"prices": [{"channel": "email", "country": "*", "amount": 1.0}]}
    top_up = await client.post(
        f"/v1/orgs/{org.id}/credits/top-ups",
        json={"amount": credits, "note": "first invoice"},
        headers=org.bearer,
    )
    assert top_up.status_code == 201, top_up.text
    assert top_up.json()["balance_after"] == credits


async def _send(client: httpx.AsyncClient, org: OrgWithKey, campaign_id: int, n: int) -> int:
    response = await client.post(
        f"/v1/orgs/{org.id}/messages",
        json={"campaign_id": campaign_id, "to": {"email": f"p{n}@example.com"}},
        headers=org.bearer,
    )
    if response.status_code == 402:
        problem = response.json()
        assert problem["type"] == "urn:tidings:problem:insufficient-credit"
        assert response.headers["content-type"].startswith("application/problem+json")
    return response.status_code


async def test_sends_until_the_credit_runs_out_never_below_zero(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    campaign_id = await email_campaign(db, org)
    await _setup_billing(client, org, 5)
    statuses = await asyncio.gather(*(_send(client, org, campaign_id, n) for n in range(20)))
    assert sorted(statuses) == [201] * 5 + [402] * 15

    credits = (await client.get(f"/v1/orgs/{org.id}/credits", headers=org.bearer)).json()
    assert credits["balance"] == 0
    assert all(e["balance_after"] >= 0 for e in credits["entries"]["data"])
    async with db.session() as session:
        ledger = await session.scalar(
            select(func.sum(CreditEntry.amount)).where(CreditEntry.org_id == org.id)
        )
        queued = await session.scalar(
            select(func.count()).where(Message.org_id == org.id, Message.status == "queued")
        )
    assert ledger == 0  # the sum of the entries is the balance
    assert queued == 5  # a refused send queued nothing


async def test_a_new_org_without_prices_sends_freely(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    campaign_id = await email_campaign(db, org)
    assert await _send(client, org, campaign_id, 1) == 201
    credits = (await client.get(f"/v1/orgs/{org.id}/credits", headers=org.bearer)).json()
    assert credits == {"balance": 0, "entries": {"data": [], "next_cursor": None}}
    prices = (await client.get(f"/v1/orgs/{org.id}/prices", headers=org.bearer)).json()
    assert prices == {"prices": []}


async def test_the_ledger_pages_newest_first(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    path = f"/v1/orgs/{org.id}/credits"
    for amount in (1, 2.5, 0.000001):
        response = await client.post(f"{path}/top-ups", json={"amount": amount}, headers=org.bearer)
        assert response.status_code == 201
    first = (await client.get(path, params={"limit": 2}, headers=org.bearer)).json()
    assert first["balance"] == 3.500001
    assert [e["amount"] for e in first["entries"]["data"]] == [0.000001, 2.5]
    rest = await client.get(
        path, params={"limit": 2, "cursor": first["entries"]["next_cursor"]}, headers=org.bearer
    )
    assert [e["amount"] for e in rest.json()["entries"]["data"]] == [1]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("credits/top-ups", {"amount": 0}),
        ("credits/top-ups", {"amount": -1}),
        ("credits/top-ups", {"amount": 0.0000001}),
    ],
)
async def test_bad_top_ups_are_422(
    client: httpx.AsyncClient, db: Database, path: str, body: dict[str, object]
) -> None:
    org = await make_org(db)
    response = await client.post(f"/v1/orgs/{org.id}/{path}", json=body, headers=org.bearer)
    assert response.status_code == 422, response.text


async def test_bad_price_tables_are_422(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    path = f"/v1/orgs/{org.id}/prices"
    for prices in (
        [{"channel": "email", "country": "CH", "amount": 1}],
        [{"channel": "sms", "country": "ch", "amount": 1}],
        [{"channel": "sms", "amount": 1}, {"channel": "sms", "country": "*", "amount": 2}],
        [{"channel": "fax", "amount": 1}],
    ):
        response = await client.put(path, json={"prices": prices}, headers=org.bearer)
        assert response.status_code == 422, prices
    ok = await client.put(
        path,
        json={"prices": [{"channel": "sms", "country": "CH", "amount": 0.05}]},
        headers=org.bearer,
    )
    assert ok.json() == {"prices": [{"channel": "sms", "country": "CH", "amount": 0.05}]}


@pytest.mark.usefixtures("cli_env")
def test_cli_tops_up_and_shows() -> None:
    created = runner.invoke(app, ["orgs", "create", "Acme", "--json"])
    org = json.loads(created.stdout)
    result = runner.invoke(
        app, ["credits", "top-up", "--org", org["login"], "12.5", "--note", "invoice 7", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["balance_after"] == 12.5
    shown = runner.invoke(app, ["credits", "show", "--org", str(org["org_id"]), "--json"])
    assert shown.exit_code == 0, shown.output
    document = json.loads(shown.stdout)
    assert document["balance"] == 12.5
    assert [(e["kind"], e["note"]) for e in document["entries"]] == [("top-up", "invoice 7")]
    refused = runner.invoke(app, ["credits", "top-up", "--org", org["login"], "--", "-3"])
    assert refused.exit_code == 2
