"""Authentication styles and the 401 / 403 / 404 contract, over HTTP."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.support.factories import OrgWithKey, make_org
from tidings.db.engine import Database
from tidings.keys.schemas import Scope
from tidings.keys.service import create_key

PROBLEM = "application/problem+json"


@pytest.mark.parametrize("style", ["bearer", "header_pair", "basic"])
async def test_each_style_resolves_to_the_same_key(
    client: httpx.AsyncClient, db: Database, style: str
) -> None:
    org = await make_org(db)
    headers = getattr(org, style)
    response = await client.get(f"/v1/orgs/{org.id}", headers=headers)
    assert response.status_code == 200
    assert response.json()["login"] == org.login


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer tdg_live_" + "x" * 43},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Basic " + base64.b64encode(b"no-colon").decode()},
        {"api-key": "tdg_live_" + "x" * 43},
    ],
    ids=[
        "none",
        "unknown key",
        "garbage",
        "bad base64",
        "basic without colon",
        "key without login",
    ],
)
async def test_missing_or_invalid_credentials_are_401(
    client: httpx.AsyncClient, db: Database, headers: dict[str, str]
) -> None:
    org = await make_org(db)
    response = await client.get(f"/v1/orgs/{org.id}/contacts", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM
    assert "Bearer" in response.headers["www-authenticate"]
    assert response.json()["status"] == 401


async def test_a_login_that_is_not_the_keys_org_is_401(
    client: httpx.AsyncClient, db: Database
) -> None:
    a = await make_org(db, "A")
    b = await make_org(db, "B")
    wrong = OrgWithKey(a.id, b.login, a.key)
    for headers in (wrong.header_pair, wrong.basic):
        response = await client.get(f"/v1/orgs/{a.id}", headers=headers)
        assert response.status_code == 401


async def test_another_orgs_path_is_403_and_leaks_nothing(
    client: httpx.AsyncClient, db: Database
) -> None:
    a = await make_org(db, "Alpha Secret Labs")
    b = await make_org(db, "Bravo")
    response = await client.get(f"/v1/orgs/{a.id}", headers=b.bearer)
    assert response.status_code == 403
    assert a.login not in response.text


async def test_a_missing_scope_is_403_naming_it(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    async with db.transaction() as session:
        reader = await create_key(session, org_id=org.id, name="reader", scopes=[Scope.READ])
    headers = {"Authorization": f"Bearer {reader.secret}"}
    assert (await client.get(f"/v1/orgs/{org.id}/contacts", headers=headers)).status_code == 200
    response = await client.post(
        f"/v1/orgs/{org.id}/contacts",
        json={"contacts": [{"email": "a@example.com"}]},
        headers=headers,
    )
    assert response.status_code == 403
    assert "manage" in response.json()["detail"]


async def test_an_object_of_the_keys_org_that_does_not_exist_is_404(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    response = await client.get(f"/v1/orgs/{org.id}/contacts/424242", headers=org.bearer)
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM


async def test_keys_issued_through_the_api_work_and_revoke(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    created = await client.post(
        f"/v1/orgs/{org.id}/keys", json={"name": "survey", "scopes": ["read"]}, headers=org.bearer
    )
    assert created.status_code == 201
    body = created.json()
    secret = body["api_key"]
    assert body["scopes"] == ["read"]
    assert secret.startswith(body["prefix"])
    headers = {"Authorization": f"Bearer {secret}"}
    assert (await client.get(f"/v1/orgs/{org.id}", headers=headers)).status_code == 200

    listed = (await client.get(f"/v1/orgs/{org.id}/keys", headers=org.bearer)).json()
    assert all("api_key" not in k and secret not in str(k) for k in listed)

    revoked = await client.delete(f"/v1/orgs/{org.id}/keys/{body['id']}", headers=org.bearer)
    assert revoked.json()["revoked_at"] is not None
    assert (await client.get(f"/v1/orgs/{org.id}", headers=headers)).status_code == 401
