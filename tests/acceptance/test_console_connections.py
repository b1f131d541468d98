"""The console's connections: credentials never shown, and "test this connection"
opening the connection's host through the outbound policy; roles; another org's 404."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from tests.support.console import signed_in
from tests.support.factories import OrgWithKey, make_org
from tidings.audit.models import AuditEntry
from tidings.connections.models import ConnectionHealth
from tidings.db.engine import Database
from tidings.members.roles import Role

SECRET = "s3cret-value-never-shown"


@pytest.fixture
async def greeter() -> AsyncIterator[int]:
    """A loopback server that greets as an SMTP server does; its port."""

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 test.example ESMTP ready\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    port: int = server.sockets[0].getsockname()[1]
    async with server:
        yield port


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def _smtp(client: httpx.AsyncClient, org: OrgWithKey, port: int) -> int:
    created = await client.post(
        f"/v1/orgs/{org.id}/connections",
        json={"name": f"relay {port}", "channel": "email", "kind": "smtp",
              "settings": {"host": "127.0.0.1", "port": port},
              "credentials": {"username": "u", "password": SECRET}},
        headers=org.bearer,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    ident: int = created.json()["id"]
    return ident


async def test_the_list_hides_credentials_and_the_test_reaches_the_host(
    client: httpx.AsyncClient, db: Database, greeter: int
) -> None:
    me = await signed_in(client, db, role=Role.ADMIN)
    good = await _smtp(client, me.org, greeter)
    bad = await _smtp(client, me.org, _closed_port())
    page = await client.get("/connections")
    assert page.status_code == 200
    assert SECRET not in page.text
    assert "<code>password</code> set" in page.text
    assert f'hx-post="/connections/{good}/test"' in page.text
    headers = {"X-CSRF-Token": me.csrf, "HX-Request": "true"}
    ok = await client.post(f"/connections/{good}/test", headers=headers)
    assert ok.status_code == 200
    assert 'data-ok="true"' in ok.text
    assert "220 test.example ESMTP ready" in ok.text
    failed = await client.post(f"/connections/{bad}/test", headers=headers)
    assert 'data-ok="false"' in failed.text
    assert "unreachable" in failed.text
    assert SECRET not in ok.text + failed.text


async def test_only_a_manager_tests_and_only_their_org_s_connection(
    client: httpx.AsyncClient, db: Database, greeter: int
) -> None:
    owner = await signed_in(client, db, role=Role.OWNER)
    ident = await _smtp(client, owner.org, greeter)
    client.cookies.clear()
    editor = await signed_in(client, db, role=Role.EDITOR, org=owner.org)
    page = await client.get("/connections")
    assert "Test this connection" not in page.text
    denied = await client.post(f"/connections/{ident}/test", headers={"X-CSRF-Token": editor.csrf})
    assert denied.status_code == 403
    client.cookies.clear()
    other = await signed_in(client, db, role=Role.OWNER, org=await make_org(db, "Other"))
    assert f"relay {greeter}" not in (await client.get("/connections")).text
    gone = await client.post(f"/connections/{ident}/test", headers={"X-CSRF-Token": other.csrf})
    assert gone.status_code == 404
    no_csrf = await client.post(f"/connections/{ident}/test")
    assert no_csrf.status_code == 403


async def test_add_a_connection_whose_credentials_are_never_shown(
    client: httpx.AsyncClient, db: Database, greeter: int
) -> None:
    me = await signed_in(client, db, role=Role.OWNER)
    form = {"name": "relay", "channel": "email", "kind": "smtp", "max_concurrency": "4",
            "settings_json": f'{{"host": "127.0.0.1", "port": {greeter}}}',
            "credentials_json": f'{{"username": "u", "password": "{SECRET}"}}',
            "csrf_token": me.csrf}  # fmt: skip
    bad_port = await client.post(
        "/connections", data={**form, "settings_json": '{"host": "127.0.0.1", "port": "x"}'}
    )
    assert bad_port.status_code == 422
    assert "<code>settings.port</code>" in bad_port.text
    assert SECRET not in bad_port.text  # not filled back in
    private = await client.post(
        "/connections", data={**form, "settings_json": '{"host": "10.0.0.1"}'}
    )
    assert private.status_code == 422
    assert "refused" in private.text
    not_json = await client.post("/connections", data={**form, "credentials_json": "{oops"})
    assert not_json.status_code == 422
    assert "not JSON" in not_json.text

    added = await client.post("/connections", data=form)
    assert added.status_code == 303, added.text
    page = await client.get("/connections")
    assert "relay" in page.text
    assert SECRET not in page.text
    assert "<code>password</code> set" in page.text
    async with db.transaction(write=False) as session:
        entries = list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "connection.create")
            )
        )
    assert [e.actor for e in entries] == [f"member {me.member.id}"]
    assert SECRET not in str(entries[0].changes)
    client.cookies.clear()
    editor = await signed_in(client, db, role=Role.EDITOR, org=me.org)
    denied = await client.post("/connections", data={**form, "csrf_token": editor.csrf})
    assert denied.status_code == 403


async def test_each_connection_shows_its_breaker_as_the_health_api_does(
    client: httpx.AsyncClient, db: Database, greeter: int
) -> None:
    me = await signed_in(client, db, role=Role.VIEWER)
    quiet = await _smtp(client, me.org, greeter)
    tripped = await _smtp(client, me.org, _closed_port())
    now = datetime.now(UTC).replace(microsecond=0)
    async with db.transaction() as session:
        session.add(ConnectionHealth(connection_id=tripped, org_id=me.org.id, state="open",
                                     opened_until=now + timedelta(minutes=5),
                                     window_started_at=now, attempts=40, errors=30))  # fmt: skip
    page = await client.get("/connections")
    assert page.status_code == 200
    api = await client.get(f"/v1/orgs/{me.org.id}/connections/{tripped}/health",
                           headers=me.org.bearer)  # fmt: skip
    assert api.json()["state"] == "open"
    reopens = datetime.fromisoformat(api.json()["opened_until"]).strftime("%Y-%m-%d %H:%M:%S")
    assert f"open, 75% errors of 40 in the window; reopens {reopens} UTC" in page.text
    assert "closed, no attempts in the window" in page.text
    assert f'hx-post="/connections/{quiet}/test"' not in page.text  # a viewer tests nothing
