"""Webhooks over HTTP: subscribing (SSRF: test_outbound.py), the secret shown once, test deliveries
and their attempts visible."""

from __future__ import annotations

import httpx
import pytest

from tests.support.factories import make_org
from tidings.db.engine import Database

# Which URLs are refused when saved: tests/acceptance/test_outbound.py, with the rule that
# every address a tenant gives follows.


@pytest.mark.parametrize(
    "types",
    [[], ["opened", "nope"], ["*", "opened"], None],
    ids=["empty", "unknown", "star+", "null"],
)
async def test_event_types_are_checked(
    client: httpx.AsyncClient, db: Database, types: list[str] | None
) -> None:
    org = await make_org(db)
    response = await client.post(
        f"/v1/orgs/{org.id}/webhooks",
        json={"url": "https://8.8.8.8/", "event_types": types},
        headers=org.bearer,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "event_types"


async def test_secret_is_shown_once_and_crud(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    base = f"/v1/orgs/{org.id}/webhooks"
    created = await client.post(
        base,
        json={"url": "https://8.8.8.8/hook", "event_types": ["clicked", "opened", "opened"]},
        headers=org.bearer,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    secret = body["secret"]
    assert secret.startswith("whsec_")
    assert body["event_types"] == ["opened", "clicked"]
    hook = f"{base}/{body['id']}"

    for answer in (
        await client.get(base, headers=org.bearer),
        await client.get(hook, headers=org.bearer),
        await client.patch(hook, json={"enabled": False, "event_types": ["*"]}, headers=org.bearer),
        await client.post(f"{hook}/test", headers=org.bearer),
        await client.get(f"{hook}/deliveries", headers=org.bearer),
    ):
        assert answer.status_code < 300, answer.text
        assert secret not in answer.text
        assert "secret" not in answer.text

    one = (await client.get(hook, headers=org.bearer)).json()
    assert (one["enabled"], one["event_types"]) == (False, ["*"])
    deliveries = (await client.get(f"{hook}/deliveries", headers=org.bearer)).json()
    (test,) = deliveries["data"]
    assert test["event_type"] == "test"
    assert (test["status"], test["attempts"], test["last_status_code"]) == ("pending", 0, None)
    assert test["webhook_id"] == f"msg_{test['id']}"

    assert (await client.delete(hook, headers=org.bearer)).status_code == 204
    assert (await client.get(hook, headers=org.bearer)).status_code == 404
    assert (await client.get(f"{hook}/deliveries", headers=org.bearer)).status_code == 404


async def test_reading_needs_a_key_and_managing_needs_manage(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    response = await client.get(f"/v1/orgs/{org.id}/webhooks")
    assert response.status_code == 401
