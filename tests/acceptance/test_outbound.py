"""Where a tenant can make Tidings connect (SSRF), end to end over HTTP and through the
dispatcher: every address field of every connection kind and the webhook URL, every
internal spelling refused with a 422 naming the field and the operator's setting; the
setting opening loopback for a real send; the setting taken away after the save refused
at connect time, with nothing sent; and what a provider says shown only as an excerpt.

No traffic leaves loopback: refusals happen before any packet, and the servers that do
answer are the tests' own (the HTTP gateway, aiosmtpd).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import _Apps
from tests.support.factories import OrgWithKey, make_org
from tests.support.imap_server import PASSWORD, USER, dovecot_server
from tidings.bounces.imap import poll_once
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher
from tidings.net.ssrf import SETTING, UnsafeURL
from tidings.outbox.models import Message
from tidings.settings import Settings
from tidings.testing import Gateway, Reply

URL_SPELLINGS = [
    "http://127.0.0.1/",
    "http://localhost:8080/",  # a name that resolves to loopback
    "http://LOCALHOST./",
    "http://10.0.0.1/",
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[fd00:ec2::254]/",
    "http://[fe80::1]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://0x7f.1/",
    "http://0177.0.0.1/",
    "http://127.1/",
    "http://0.0.0.0/",
    "http://224.0.0.1/",
]
HOST_SPELLINGS = [
    "127.0.0.1",
    "localhost",
    "10.0.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "metadata.google.internal",
    "::1",
    "[::1]",
    "::ffff:127.0.0.1",
    "fe80::1",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "127.1",
    "0.0.0.0",  # noqa: S104 (a host refused, not bound)
]

SMTP_BASE: dict[str, Any] = {"name": "relay", "channel": "email", "kind": "smtp"}


def _url_connection(kind: str, field: str, **settings: Any) -> Callable[[str], dict[str, Any]]:
    def body(url: str) -> dict[str, Any]:
        credentials = {
            "kannel": {"username": "u", "password": "p"},
            "infobip": {"api_key": "k"},
            "twilio": {"auth_token": "t"},
        }.get(kind, {})
        return {
            "name": kind,
            "channel": "sms",
            "kind": kind,
            "settings": {**settings, field: url},
            "credentials": credentials,
        }

    return body


# (the field a refusal names, the connection for an address, the spellings)
FIELDS: dict[str, tuple[str, Callable[[str], dict[str, Any]], list[str]]] = {
    "http_sms": (
        "settings.url",
        _url_connection("http_sms", "url", body={"to": "{to}"}, id_path="result.id"),
        URL_SPELLINGS,
    ),
    "kannel": ("settings.base_url", _url_connection("kannel", "base_url"), URL_SPELLINGS),
    "infobip": ("settings.base_url", _url_connection("infobip", "base_url"), URL_SPELLINGS),
    "twilio": (
        "settings.base_url",
        _url_connection("twilio", "base_url", account_sid="AC" + "0" * 32),
        URL_SPELLINGS,
    ),
    "smtp": (
        "settings.host",
        lambda host: SMTP_BASE | {"settings": {"host": host}},
        HOST_SPELLINGS,
    ),
    "smtp bounce_imap": (
        "settings.bounce_imap.host",
        lambda host: (
            SMTP_BASE
            | {"settings": {"host": "8.8.8.8", "bounce_imap": {"host": host, "username": "b"}}}
        ),
        HOST_SPELLINGS,
    ),
}


async def _client_for(settings: Settings, apps: _Apps) -> AsyncIterator[httpx.AsyncClient]:
    app = apps.for_settings(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tidings.test") as http:
            yield http


@pytest.fixture
def strict_settings(settings: Settings) -> Settings:
    """The default: the operator opened nothing."""
    return settings.model_copy(update={"outbound_allow": ""})


@pytest.fixture
async def strict(
    strict_settings: Settings, db: Database, apps: _Apps
) -> AsyncIterator[httpx.AsyncClient]:
    async for http in _client_for(strict_settings, apps):
        yield http


def _refusal(response: httpx.Response) -> tuple[str, str]:
    assert response.status_code == 422, response.text
    ((field, reason),) = [(e["field"], e["reason"]) for e in response.json()["errors"]]
    return field, reason


@pytest.mark.parametrize("kind", list(FIELDS))
async def test_every_address_field_refuses_every_internal_spelling(
    strict: httpx.AsyncClient, db: Database, kind: str
) -> None:
    org = await make_org(db)
    field, connection, spellings = FIELDS[kind]
    for address in spellings:
        response = await strict.post(
            f"/v1/orgs/{org.id}/connections", json=connection(address), headers=org.bearer
        )
        where, reason = _refusal(response)
        assert where == field, (address, reason)
        assert reason.startswith("refused: "), (address, reason)
        assert SETTING in reason or "unspecified" in reason or "multicast" in reason, reason
    listed = await strict.get(f"/v1/orgs/{org.id}/connections", headers=org.bearer)
    assert listed.json() == []
    public = await strict.post(
        f"/v1/orgs/{org.id}/connections", json=connection(_public(spellings)), headers=org.bearer
    )
    assert public.status_code == 201, public.text


def _public(spellings: list[str]) -> str:
    return "https://8.8.8.8/" if spellings is URL_SPELLINGS else "8.8.8.8"


async def test_a_change_to_an_internal_host_is_refused_and_changes_nothing(
    strict: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    base = f"/v1/orgs/{org.id}/connections"
    created = await strict.post(
        base, json=SMTP_BASE | {"settings": {"host": "8.8.8.8"}}, headers=org.bearer
    )
    assert created.status_code == 201, created.text
    url = f"{base}/{created.json()['id']}"

    patched = await strict.patch(url, json={"settings": {"host": "10.1.2.3"}}, headers=org.bearer)

    field, reason = _refusal(patched)
    assert (field, reason) == (
        "settings.host",
        f"refused: 10.1.2.3 is private; the operator may allow it in {SETTING}",
    )
    assert (await strict.get(url, headers=org.bearer)).json()["settings"]["host"] == "8.8.8.8"
    other = await make_org(db, "Other")  # another org's connection is not found, not vetted
    assert (await strict.patch(url, json={"settings": {}}, headers=other.bearer)).status_code == 403


async def test_webhook_urls_follow_the_same_rule(strict: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    base = f"/v1/orgs/{org.id}/webhooks"
    for url in [*URL_SPELLINGS, "ftp://8.8.8.8/", "https://user:pw@8.8.8.8/"]:
        response = await strict.post(
            base, json={"url": url, "event_types": ["*"]}, headers=org.bearer
        )
        assert _refusal(response)[0] == "url", url
    ok = await strict.post(
        base, json={"url": "https://8.8.8.8/h", "event_types": ["*"]}, headers=org.bearer
    )
    patched = await strict.patch(
        f"{base}/{ok.json()['id']}", json={"url": "http://[::1]:9/"}, headers=org.bearer
    )
    assert _refusal(patched) == (
        "url",
        f"refused: ::1 is loopback; the operator may allow it in {SETTING}",
    )
    listed = await strict.get(base, headers=org.bearer)
    assert [w["url"] for w in listed.json()["data"]] == ["https://8.8.8.8/h"]


async def test_the_operator_opens_a_network_and_metadata_stays_closed(
    settings: Settings, db: Database, apps: _Apps
) -> None:
    lan = settings.model_copy(update={"outbound_allow": "10.0.0.0/8, relay.lan"})
    org = await make_org(db)
    async for http in _client_for(lan, apps):
        base = f"/v1/orgs/{org.id}/connections"
        relay = await http.post(
            base, json=SMTP_BASE | {"settings": {"host": "10.0.0.25"}}, headers=org.bearer
        )
        assert relay.status_code == 201, relay.text
        for host in ("192.168.1.1", "169.254.169.254", "metadata.google.internal"):
            refused = await http.post(
                base,
                json=SMTP_BASE | {"name": host, "settings": {"host": host}},
                headers=org.bearer,
            )
            assert _refusal(refused)[0] == "settings.host", host


# --- through the dispatcher ----------------------------------------------------------------


SMS: dict[str, Any] = {
    "content": {"text": "Your code is 493201"},
    "channel": "sms",
    "sms_sender": "Acme",
    "to": {"phone": "+33612345678"},
}


async def _gateway_connection(
    http: httpx.AsyncClient, org: OrgWithKey, gateway: Gateway, **settings: Any
) -> int:
    response = await http.post(
        f"/v1/orgs/{org.id}/connections",
        json={
            "name": "gateway",
            "channel": "sms",
            "kind": "http_sms",
            "is_default": True,
            "settings": {
                "url": f"{gateway.url}/send",
                "body": {"to": "{to}", "text": "{text}"},
                "id_path": "result.id",
            }
            | settings,
        },
        headers=org.bearer,
    )
    assert response.status_code == 201, response.text
    ident: int = response.json()["id"]
    return ident


async def _send_and_drain(http: httpx.AsyncClient, org: OrgWithKey, db: Database) -> Message:
    sent = await http.post(f"/v1/orgs/{org.id}/messages", json=SMS, headers=org.bearer)
    assert sent.status_code == 201, sent.text
    dispatcher = Dispatcher(db, renderer=Renderer())
    try:
        await dispatcher.drain()
    finally:
        await dispatcher.close()
    async with db.session() as session:
        message = await session.scalar(select(Message).where(Message.id == sent.json()["id"]))
    assert message is not None
    return message


async def test_a_loopback_gateway_the_operator_opened_sends(
    client: httpx.AsyncClient, db: Database, gateway: Gateway
) -> None:
    """The suite's settings open 127.0.0.0/8 (tests/support/outbound.py)."""
    gateway.plan = lambda _: Reply(200, {"result": {"id": "gw-77"}})
    org = await make_org(db)
    await _gateway_connection(client, org, gateway)

    message = await _send_and_drain(client, org, db)

    assert (message.status, message.provider_id) == ("sent", "gw-77")
    assert [r.path for r in gateway.requests] == ["/send"]


async def test_a_setting_taken_away_after_the_save_refuses_at_connect_time(
    client: httpx.AsyncClient, db: Database, gateway: Gateway, strict_settings: Settings
) -> None:
    org = await make_org(db)
    await _gateway_connection(client, org, gateway)  # saved while loopback was open
    strict_db = Database(strict_settings)  # the operator closed it since; workers restarted
    try:
        message = await _send_and_drain(client, org, strict_db)
    finally:
        await strict_db.dispose()

    assert message.status == "failed"
    assert message.reason == (
        f"refused: 127.0.0.1 is loopback; the operator may allow it in {SETTING}"
    )
    assert (gateway.connections, gateway.requests) == (0, [])


async def test_a_provider_answer_comes_back_only_as_a_bounded_printable_excerpt(
    client: httpx.AsyncClient, db: Database, gateway: Gateway
) -> None:
    internal = "root:x:0:0:root\r\n\x1b[31m" + "secret-config-line " * 500
    gateway.plan = lambda _: Reply(403, internal)
    org = await make_org(db)
    await _gateway_connection(client, org, gateway)

    failed = await _send_and_drain(client, org, db)

    assert failed.status == "failed"
    assert failed.reason is not None
    assert failed.reason.startswith("HTTP 403: root:x:0:0:root ?[31msecret-config-line")
    assert len(failed.reason) <= len("HTTP 403: ") + 200
    assert failed.reason.isprintable()

    gateway.plan = lambda _: Reply(200, {"result": {"id": "id\n" + "x" * 1000}})
    sent = await _send_and_drain(client, org, db)
    assert sent.status == "sent"
    assert sent.provider_id is not None
    assert sent.provider_id.isprintable()
    assert len(sent.provider_id) <= 128


async def test_a_bounce_mailbox_refused_at_connect_time_is_not_read(
    client: httpx.AsyncClient, db: Database, strict_settings: Settings
) -> None:
    org = await make_org(db)
    with dovecot_server() as server:
        created = await client.post(
            f"/v1/orgs/{org.id}/connections",
            json=SMTP_BASE
            | {
                "settings": {
                    "host": "127.0.0.1",
                    "bounce_imap": {"host": "127.0.0.1", "port": server.port,
                                    "security": "none", "username": USER},
                },
                "credentials": {"bounce_imap_password": PASSWORD},
            },
            headers=org.bearer,
        )  # fmt: skip
        assert created.status_code == 201, created.text
        server.deliver(b"Subject: out of office\r\n\r\nAway.\r\n", "vacation")
        strict_db = Database(strict_settings)
        try:
            with pytest.raises(UnsafeURL, match=r"127\.0\.0\.1 is loopback"):
                await poll_once(strict_db, connection_id=created.json()["id"], soft_bounce_limit=3)
        finally:
            await strict_db.dispose()
        assert server.seen() == 0
        # Open (the suite's settings), the same mailbox is read.
        assert await poll_once(db, connection_id=created.json()["id"], soft_bounce_limit=3) == []
        assert server.seen() == 1
