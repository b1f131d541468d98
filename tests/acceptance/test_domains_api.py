"""Sending domains over HTTP: registering one makes a key and shows the records to
publish (never the private key), the DNS check (unreachable, and with given answers),
rotation, deletion, bad input, another org's domain; and a broadcast sent through the
dispatcher to a real SMTP server on loopback arrives signed, verified by dkimpy."""

from __future__ import annotations

import email
from collections.abc import Iterator
from email import policy
from typing import Any

import dkim as dkimpy
import httpx
import pytest
from sqlalchemy import text

from tests.acceptance.test_smtp_broadcast import Recorder
from tests.conftest import _Apps
from tests.support.controller import serving
from tests.support.factories import OrgWithKey, make_org, upsert
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher
from tidings.domains.dns import StaticResolver
from tidings.domains.routes import get_resolver
from tidings.settings import Settings


async def _create(client: httpx.AsyncClient, org: OrgWithKey, **body: Any) -> dict[str, Any]:
    response = await client.post(
        f"/v1/orgs/{org.id}/domains", json={"name": "example.com", **body}, headers=org.bearer
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def _resolve_with(apps: _Apps, settings: Settings, resolver: StaticResolver) -> None:
    apps.for_settings(settings).dependency_overrides[get_resolver] = lambda: resolver


@pytest.mark.parametrize("algorithm", ["rsa", "ed25519"])
async def test_a_domain_shows_its_records_and_never_its_private_key(
    client: httpx.AsyncClient, db: Database, algorithm: str
) -> None:
    org = await make_org(db)
    domain = await _create(client, org, name="Mail.Example.COM.", algorithm=algorithm)
    assert domain["name"] == "mail.example.com"
    [key] = domain["keys"]
    assert (key["algorithm"], key["status"]) == (algorithm, "active")
    dkim, spf, dmarc = domain["records"]
    assert dkim == key["record"]
    assert dkim["name"] == f"{key['selector']}._domainkey.mail.example.com"
    assert dkim["value"].startswith(f"v=DKIM1; k={algorithm}; p=")
    assert "".join(dkim["strings"]) == dkim["value"]
    assert all(len(s) <= 255 for s in dkim["strings"])
    assert (spf["name"], spf["value"]) == ("mail.example.com", "v=spf1 mx ~all")
    assert dmarc["name"] == "_dmarc.mail.example.com"
    assert dmarc["value"].startswith("v=DMARC1; p=none")

    base = f"/v1/orgs/{org.id}/domains"
    async with db.session() as session:
        stored = await session.scalar(text("SELECT private_key FROM dkim_keys"))
    assert stored.startswith("enc:")  # sealed at rest
    answers = [
        await client.get(base, headers=org.bearer),
        await client.get(f"{base}/{domain['id']}", headers=org.bearer),
        await client.get(f"/v1/orgs/{org.id}/audit", headers=org.bearer),
    ]
    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert "PRIVATE KEY" not in answer.text
        assert stored not in answer.text
    assert answers[0].json()["data"][0]["keys"] == domain["keys"]
    entry = answers[2].json()["data"][0]
    assert entry["action"] == "domain.create"
    assert entry["changes"][f"keys.{key['id']}.private_key"] == {"secret": "set"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "localhost"}, "name"),
        ({"name": "-bad-.example"}, "name"),
        ({"name": "192.168.1.1"}, "name"),
        ({"name": "a b.example"}, "name"),
        ({"name": "example.com", "algorithm": "dsa"}, "algorithm"),
        ({"name": "example.com", "selector": "no/slash"}, "selector"),
        ({"name": "example.com", "private_key": "x"}, "private_key"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(
    client: httpx.AsyncClient, db: Database, body: dict[str, Any], field: str
) -> None:
    org = await make_org(db)
    response = await client.post(f"/v1/orgs/{org.id}/domains", json=body, headers=org.bearer)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == field


async def test_a_domain_is_registered_once_and_posts_are_idempotent(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    base = f"/v1/orgs/{org.id}/domains"
    keyed = {**org.bearer, "Idempotency-Key": "dom-1"}
    first = await client.post(base, json={"name": "example.com"}, headers=keyed)
    again = await client.post(base, json={"name": "example.com"}, headers=keyed)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    twice = await client.post(base, json={"name": "EXAMPLE.com"}, headers=org.bearer)
    assert twice.status_code == 422
    assert twice.json()["errors"][0]["field"] == "name"
    assert len((await client.get(base, headers=org.bearer)).json()["data"]) == 1


async def test_check_says_plainly_when_dns_is_unreachable(
    client: httpx.AsyncClient, db: Database, apps: _Apps, settings: Settings
) -> None:
    org = await make_org(db)
    domain = await _create(client, org)
    _resolve_with(apps, settings, StaticResolver(unreachable="no DNS answer within 3 s"))
    response = await client.get(
        f"/v1/orgs/{org.id}/domains/{domain['id']}/check", headers=org.bearer
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["dns"], body["detail"]) == ("unreachable", "no DNS answer within 3 s")
    assert {c["status"] for c in body["checks"]} == {"unknown"}


async def test_the_default_resolver_here_reports_dns_unreachable(
    client: httpx.AsyncClient, db: Database
) -> None:
    """This machine has no internet DNS: the real resolver must say so, not "missing"."""
    org = await make_org(db)
    domain = await _create(client, org)
    response = await client.get(
        f"/v1/orgs/{org.id}/domains/{domain['id']}/check", headers=org.bearer
    )
    assert response.status_code == 200, response.text
    assert response.json()["dns"] == "unreachable"
    assert response.json()["detail"]


async def test_check_with_dns_answers(
    client: httpx.AsyncClient, db: Database, apps: _Apps, settings: Settings
) -> None:
    org = await make_org(db)
    domain = await _create(client, org)
    dkim = domain["records"][0]
    resolver = StaticResolver(
        {
            dkim["name"]: ["".join(dkim["strings"])],
            "example.com": ["google-site-verification=x", "v=spf1 include:relay.example ~all"],
        }
    )
    _resolve_with(apps, settings, resolver)
    url = f"/v1/orgs/{org.id}/domains/{domain['id']}/check"
    body = (await client.get(url, headers=org.bearer)).json()
    assert body["dns"] == "reachable"
    statuses = {c["record"]["purpose"]: c["status"] for c in body["checks"]}
    assert statuses == {"dkim": "ok", "spf": "ok", "dmarc": "missing"}

    resolver.records[dkim["name"]] = ["v=DKIM1; k=rsa; p=SOMETHINGELSE"]
    body = (await client.get(url, headers=org.bearer)).json()
    assert body["checks"][0]["status"] == "different"
    assert body["checks"][0]["found"] == ["v=DKIM1; k=rsa; p=SOMETHINGELSE"]


async def test_rotation_add_publish_activate_retire_delete(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    domain = await _create(client, org, selector="one")
    base = f"/v1/orgs/{org.id}/domains/{domain['id']}"
    old = domain["keys"][0]
    taken = await client.post(f"{base}/keys", json={"selector": "one"}, headers=org.bearer)
    assert taken.status_code == 422
    assert taken.json()["errors"][0]["field"] == "selector"
    new = await client.post(f"{base}/keys", json={"selector": "two"}, headers=org.bearer)
    assert new.status_code == 201, new.text
    assert new.json()["status"] == "pending"
    both = (await client.get(base, headers=org.bearer)).json()
    assert [r["name"] for r in both["records"][:2]] == [
        "one._domainkey.example.com",
        "two._domainkey.example.com",
    ]
    activated = await client.post(f"{base}/keys/{new.json()['id']}/activate", headers=org.bearer)
    assert activated.status_code == 200, activated.text
    keys = {k["selector"]: k for k in (await client.get(base, headers=org.bearer)).json()["keys"]}
    assert (keys["one"]["status"], keys["two"]["status"]) == ("retired", "active")
    assert keys["one"]["retired_at"] is not None
    gone = await client.delete(f"{base}/keys/{old['id']}", headers=org.bearer)
    assert gone.status_code == 204
    left = (await client.get(base, headers=org.bearer)).json()["keys"]
    assert [k["selector"] for k in left] == ["two"]
    assert (await client.delete(base, headers=org.bearer)).status_code == 204
    assert (await client.get(base, headers=org.bearer)).status_code == 404
    async with db.session() as session:
        assert await session.scalar(text("SELECT count(*) FROM dkim_keys")) == 0


async def test_another_orgs_domain_is_not_found(client: httpx.AsyncClient, db: Database) -> None:
    a, b = await make_org(db, "A"), await make_org(db, "B")
    domain = await _create(client, a)
    key_id = domain["keys"][0]["id"]
    own = f"/v1/orgs/{b.id}/domains/{domain['id']}"
    for method, path in [
        ("GET", own),
        ("GET", f"{own}/check"),
        ("DELETE", own),
        ("POST", f"{own}/keys"),
        ("POST", f"{own}/keys/{key_id}/activate"),
        ("DELETE", f"{own}/keys/{key_id}"),
    ]:
        response = await client.request(method, path, headers=b.bearer, json={})
        assert response.status_code == 404, (method, path, response.text)
    assert (await client.get(f"/v1/orgs/{b.id}/domains", headers=b.bearer)).json()["data"] == []
    # A key of one domain is not found under another domain of the same org.
    other = await _create(client, a, name="other.example")
    wrong = f"/v1/orgs/{a.id}/domains/{other['id']}/keys/{key_id}/activate"
    assert (await client.post(wrong, headers=a.bearer)).status_code == 404
    still = await client.get(f"/v1/orgs/{a.id}/domains/{domain['id']}", headers=a.bearer)
    assert still.json()["keys"][0]["status"] == "active"


# --- signed mail through a real SMTP server --------------------------------------------------


@pytest.fixture
def smtp_server() -> Iterator[tuple[Recorder, int]]:
    recorder = Recorder()
    with serving(recorder) as port:
        yield recorder, port


async def _post(http: httpx.AsyncClient, path: str, org: OrgWithKey, body: Any) -> Any:
    response = await http.post(path, json=body, headers=org.bearer)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def _broadcast(
    client: httpx.AsyncClient, db: Database, org: OrgWithKey, campaign_id: int
) -> None:
    await _post(
        client,
        f"/v1/orgs/{org.id}/broadcasts",
        org,
        {"name": "b", "campaign_id": campaign_id, "send_to_all": True},
    )
    dispatcher = Dispatcher(db, renderer=Renderer())
    try:
        await dispatcher.drain()
    finally:
        await dispatcher.close()


def _dns(records: dict[str, str]):  # type: ignore[no-untyped-def]
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        found = records.get(name.decode().rstrip("."))
        return found.encode() if found is not None else None

    return lookup


async def test_a_broadcast_arrives_signed_through_smtp_and_verifies(
    client: httpx.AsyncClient, db: Database, smtp_server: tuple[Recorder, int]
) -> None:
    recorder, port = smtp_server
    org = await make_org(db)
    base = f"/v1/orgs/{org.id}"
    domain = await _create(client, org, name="acme.example", include_subdomains=True)
    ed = await _post(client, f"{base}/domains/{domain['id']}/keys", org, {"algorithm": "ed25519"})
    await _post(client, f"{base}/domains/{domain['id']}/keys/{ed['id']}/activate", org, None)
    published = {
        r["name"]: "".join(r["strings"])
        for r in (await client.get(f"{base}/domains/{domain['id']}", headers=org.bearer)).json()[
            "records"
        ]
        if r["purpose"] == "dkim"
    }
    await upsert(
        client, org, [{"email": f"r{i}@example.org", "first_name": f"R{i}"} for i in range(3)]
    )
    await _post(
        client,
        f"{base}/connections",
        org,
        {"name": "relay", "channel": "email", "kind": "smtp", "is_default": True,
         "settings": {"host": "127.0.0.1", "port": port, "security": "none"}},
    )  # fmt: skip
    template = await _post(
        client,
        f"{base}/templates",
        org,
        {"name": "t", "channel": "email", "subject": "Hello {{ first_name }}",
         "html": "<p>Hi {{ first_name }}</p>", "text": "Hi {{ first_name }}\n.\nend"},
    )  # fmt: skip
    campaign = await _post(
        client,
        f"{base}/campaigns",
        org,
        {"name": "c", "channel": "email", "template_id": template["id"], "purpose": "marketing",
         "from_email": "news@mail.acme.example", "from_name": "Acme"},
    )  # fmt: skip
    await _broadcast(client, db, org, campaign["id"])

    assert len(recorder.received) == 3
    for _, _, content in recorder.received:
        verifier = dkimpy.DKIM(content)
        assert content.count(b"DKIM-Signature:") == 2  # RSA and Ed25519
        assert verifier.verify(idx=0, dnsfunc=_dns(published))
        assert verifier.verify(idx=1, dnsfunc=_dns(published))
        parsed = email.message_from_bytes(content, policy=policy.default)
        algorithms = sorted(
            s.split("a=")[1].split(";")[0] for s in parsed.get_all("DKIM-Signature")
        )
        assert algorithms == ["ed25519-sha256", "rsa-sha256"]
        signed = parsed["DKIM-Signature"].replace("\r\n", "").replace(" ", "")
        assert "d=acme.example;" in signed
        assert "list-unsubscribe:list-unsubscribe-post" in signed  # marketing mail

    # Deleting the keys applies to the next messages built: they go out unsigned.
    recorder.received.clear()
    assert (
        await client.delete(f"{base}/domains/{domain['id']}", headers=org.bearer)
    ).status_code == 204
    await _broadcast(client, db, org, campaign["id"])
    assert len(recorder.received) == 3
    assert all(b"DKIM-Signature" not in content for _, _, content in recorder.received)


async def test_mail_from_a_domain_without_a_key_is_not_signed(
    client: httpx.AsyncClient, db: Database, smtp_server: tuple[Recorder, int]
) -> None:
    recorder, port = smtp_server
    org = await make_org(db)
    base = f"/v1/orgs/{org.id}"
    await _create(client, org, name="acme.example")  # subdomains not included
    await upsert(client, org, [{"email": "r@example.org"}])
    await _post(
        client,
        f"{base}/connections",
        org,
        {"name": "relay", "channel": "email", "kind": "smtp", "is_default": True,
         "settings": {"host": "127.0.0.1", "port": port, "security": "none"}},
    )  # fmt: skip
    template = await _post(
        client,
        f"{base}/templates",
        org,
        {"name": "t", "channel": "email", "subject": "s", "text": "x"},
    )
    campaign = await _post(
        client,
        f"{base}/campaigns",
        org,
        {"name": "c", "channel": "email", "template_id": template["id"],
         "from_email": "news@mail.acme.example"},
    )  # fmt: skip
    await _broadcast(client, db, org, campaign["id"])
    [(_, _, content)] = recorder.received
    assert b"DKIM-Signature" not in content
