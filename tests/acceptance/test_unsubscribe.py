"""Unsubscribe links on marketing mail: headers (RFC 8058), a visible line, the page."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage

import httpx

from tests.support.factories import OrgWithKey, make_org
from tests.support.sending import audience, broadcast_now, email_campaign
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher, DispatcherConfig
from tidings.links.secret import load_secret
from tidings.links.tokens import TokenSigner
from tidings.settings import Settings

PUBLIC = "http://tidings.test"


async def _send(db: Database, settings: Settings) -> None:
    dispatcher = Dispatcher(
        db,
        renderer=Renderer(),
        signer=TokenSigner(load_secret(settings)),
        config=DispatcherConfig(public_url=PUBLIC),
    )
    await dispatcher.drain()


async def _sunk(client: httpx.AsyncClient, org: OrgWithKey) -> dict[str, EmailMessage]:
    data = (
        await client.get(f"/v1/orgs/{org.id}/sink/messages?limit=100", headers=org.bearer)
    ).json()
    return {
        item["recipient"]: email.message_from_bytes(item["content"].encode(), policy=policy.default)
        for item in data["data"]
    }


async def test_one_click_unsubscribe_counts_once_and_sticks(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    org = await make_org(db)
    campaign_id = await email_campaign(db, org, purpose="marketing", name="news")
    target = await audience(
        db,
        org,
        [
            {"email": "ann@example.com", "first_name": "Ann"},
            {"email": "bob@example.com", "first_name": "Bob"},
        ],
    )
    broadcast_id = await broadcast_now(db, org, campaign_id, target.list_id)
    await _send(db, settings)

    ann = (await _sunk(client, org))["ann@example.com"]
    header = ann["List-Unsubscribe"]
    assert header.startswith(f"<{PUBLIC}/u/")
    assert ann["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = ann.get_body(("plain",))
    assert text is not None
    url = header.strip("<>")
    assert url in text.get_content()
    path = url.removeprefix(PUBLIC)

    page = await client.get(path)
    assert page.status_code == 200
    assert "Unsubscribe" in page.text
    contact = (
        await client.get(f"/v1/orgs/{org.id}/contacts/{target.contact_ids[0]}", headers=org.bearer)
    ).json()
    assert contact["subscriptions"]["email"] == "subscribed"  # a GET changes nothing

    for _ in range(2):  # RFC 8058 one-click, twice: counted once
        done = await client.post(
            path,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert done.status_code == 200
    contact = (
        await client.get(f"/v1/orgs/{org.id}/contacts/{target.contact_ids[0]}", headers=org.bearer)
    ).json()
    assert contact["subscriptions"]["email"] == "unsubscribed"
    broadcast = (
        await client.get(f"/v1/orgs/{org.id}/broadcasts/{broadcast_id}", headers=org.bearer)
    ).json()
    assert broadcast["unsubscribed_count"] == 1

    second = await broadcast_now(db, org, campaign_id, target.list_id)
    await _send(db, settings)
    again = (await client.get(f"/v1/orgs/{org.id}/broadcasts/{second}", headers=org.bearer)).json()
    assert (again["recipients_count"], again["skipped_count"]) == (1, 1)


async def test_tampered_and_foreign_tokens_are_404(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    signer = TokenSigner(load_secret(settings))
    good = signer.sign("unsubscribe", 1)
    tampered = good[:-1] + ("A" if good[-1] != "A" else "B")
    click = signer.sign("click", 1, 0)
    other_key = TokenSigner(b"k" * 32).sign("unsubscribe", 1)
    for token in (tampered, click, other_key, "nonsense"):
        assert (await client.get(f"/u/{token}")).status_code == 404
        assert (await client.post(f"/u/{token}")).status_code == 404
    assert (await client.post(f"/u/{good}")).status_code == 404  # a valid token, no such message


async def test_transactional_mail_has_no_unsubscribe(
    client: httpx.AsyncClient, db: Database, settings: Settings
) -> None:
    org = await make_org(db)
    campaign_id = await email_campaign(db, org, purpose="transactional")
    target = await audience(db, org, [{"email": "ann@example.com"}])
    await broadcast_now(db, org, campaign_id, target.list_id)
    await _send(db, settings)
    ann = (await _sunk(client, org))["ann@example.com"]
    assert ann["List-Unsubscribe"] is None
    body = ann.get_body(("plain",))
    assert body is not None
    assert "/u/" not in body.get_content()
