from __future__ import annotations

import httpx

from tests.support.factories import make_org
from tidings.db.engine import Database

SECRET = "s3cret-value-never-returned"


async def test_credentials_are_write_only(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}/connections", org.bearer
    created = await client.post(
        base,
        json={
            "name": "relay",
            "channel": "email",
            "kind": "smtp",
            "settings": {"host": "smtp.example.com"},
            "credentials": {"username": "u", "password": SECRET},
        },
        headers=h,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["credentials_set"] == ["password", "username"]
    assert body["settings"]["port"] == 587  # documented default applied
    for response in (
        created,
        await client.get(base, headers=h),
        await client.get(f"{base}/{body['id']}", headers=h),
        await client.get("/openapi.json"),
    ):
        assert SECRET not in response.text


async def test_settings_are_validated_per_kind(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}/connections", org.bearer
    wrong_channel = await client.post(
        base, json={"name": "x", "channel": "email", "kind": "infobip"}, headers=h
    )
    assert wrong_channel.json()["errors"][0]["field"] == "channel"
    bad = await client.post(
        base,
        json={
            "name": "x",
            "channel": "sms",
            "kind": "twilio",
            "settings": {"account_sid": "nope"},
            "credentials": {"auth_token": SECRET, "x": 1},
        },
        headers=h,
    )
    assert bad.status_code == 422
    fields = {e["field"] for e in bad.json()["errors"]}
    assert {"settings.account_sid", "credentials.x"} <= fields
    assert SECRET not in bad.text


async def test_one_default_per_channel(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}/connections", org.bearer
    for name in ("first", "second"):
        response = await client.post(
            base,
            json={
                "name": name,
                "channel": "email",
                "kind": "smtp",
                "settings": {"host": f"{name}.example"},
                "is_default": True,
            },
            headers=h,
        )
        assert response.status_code == 201
    await client.post(
        base,
        json={"name": "texts", "channel": "sms", "kind": "sink", "is_default": True},
        headers=h,
    )
    listed = {c["name"]: c["is_default"] for c in (await client.get(base, headers=h)).json()}
    assert listed == {"first": False, "second": True, "texts": True}


async def test_an_smtp_connection_takes_a_helo_name_that_receivers_accept(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}/connections", org.bearer

    def body(helo: object) -> dict[str, object]:
        return {"name": f"relay {helo!r}", "channel": "email", "kind": "smtp",
                "settings": {"host": "smtp.example.com", "helo_name": helo}}  # fmt: skip

    created = await client.post(base, json=body("mail.acme.example"), headers=h)
    assert created.status_code == 201, created.text
    assert created.json()["settings"]["helo_name"] == "mail.acme.example"
    literal = await client.post(base, json=body("[192.0.2.1]"), headers=h)
    assert literal.status_code == 201, literal.text
    for bad in ("localhost", "relay", "mail.acme.example\r\nRSET", "", 7):
        refused = await client.post(base, json=body(bad), headers=h)
        assert refused.status_code == 422, (bad, refused.text)
        assert [e["field"] for e in refused.json()["errors"]] == ["settings.helo_name"]
