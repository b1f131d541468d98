"""Failover between providers end to end: a campaign with two connections, the first a
real server on loopback that fails transiently (an HTTP gateway answering 503, an SMTP
server answering 451 at RCPT), the second one that works. Messages move to the second
for their next attempt; the first's circuit breaker opens (every worker skips it), turns
half-open after its cool-down, and closes on a probe that goes through.

The dispatcher runs on a `Clock` the test moves by hand (see test_provider_faults.py).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from aiosmtpd.smtp import SMTP as SmtpServer  # noqa: N811 (the library names its class SMTP)
from aiosmtpd.smtp import Envelope, Session
from pydantic import SecretStr
from sqlalchemy import select

from tests.support.controller import serving
from tests.support.factories import OrgWithKey, make_org, upsert
from tidings.app import create_app
from tidings.connections.health import BreakerPolicy
from tidings.content.render import Renderer
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher, DispatcherConfig
from tidings.dispatcher.retry import RetryPolicy
from tidings.messages.timeline import timeline
from tidings.outbox.models import MessageAttempt
from tidings.settings import Settings
from tidings.testing import Clock, Gateway, Recorded, Reply

RECIPIENTS = 5
BREAKER = BreakerPolicy(error_rate=0.5, min_attempts=3, window_seconds=60, open_seconds=30)
RETRY = RetryPolicy()  # 30 s ± 20 % after a first failure: past the breaker's cool-down
TOKEN = "metrics-token-for-failover"


@pytest.fixture
async def second() -> AsyncIterator[Gateway]:
    server = Gateway()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def watched(settings: Settings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """The API with /metrics on."""
    app = create_app(settings.model_copy(update={"metrics_token": SecretStr(TOKEN)}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield http


async def _post(http: httpx.AsyncClient, path: str, headers: dict[str, str], body: Any) -> Any:
    response = await http.post(path, json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


def _http_sms(name: str, gateway: Gateway) -> dict[str, Any]:
    return {
        "name": name,
        "channel": "sms",
        "kind": "http_sms",
        "settings": {
            "url": f"{gateway.url}/send",
            "body": {"to": "{to}", "text": "{text}", "ref": "{message_id}"},
            "id_path": "id",
        },
    }


def _smtp(name: str, port: int) -> dict[str, Any]:
    return {
        "name": name,
        "channel": "email",
        "kind": "smtp",
        "settings": {"host": "127.0.0.1", "port": port, "security": "none"},
    }


async def _campaign(
    http: httpx.AsyncClient, org: OrgWithKey, *, channel: str, connections: list[dict[str, Any]]
) -> tuple[int, list[int]]:
    """RECIPIENTS contacts, the connections, a template and a campaign that fails over
    from the first connection to the next. Returns the campaign's id and the connections'."""
    base, h = f"/v1/orgs/{org.id}", org.bearer
    rows = [
        {"email": f"r{i}@example.com", "phone": f"+4179302{i:04d}", "first_name": f"R{i}"}
        for i in range(RECIPIENTS)
    ]
    await upsert(http, org, rows)
    ids = [(await _post(http, f"{base}/connections", h, c))["id"] for c in connections]
    parts = {"subject": "Hello {{ first_name }}"} if channel == "email" else {}
    template = await _post(
        http, f"{base}/templates", h,
        {"name": "t", "channel": channel, "text": "Hi {{ first_name }}", **parts},
    )  # fmt: skip
    sender = {"from_email": "news@acme.example"} if channel == "email" else {"sms_sender": "Acme"}
    campaign = await _post(
        http, f"{base}/campaigns", h,
        {"name": "c", "channel": channel, "template_id": template["id"], "connection_ids": ids,
         **sender},
    )  # fmt: skip
    assert (campaign["connection_id"], campaign["connection_ids"]) == (ids[0], ids)
    return campaign["id"], ids


async def _broadcast(http: httpx.AsyncClient, org: OrgWithKey, campaign_id: int, name: str) -> int:
    broadcast = await _post(
        http, f"/v1/orgs/{org.id}/broadcasts", org.bearer,
        {"name": name, "campaign_id": campaign_id, "send_to_all": True},
    )  # fmt: skip
    broadcast_id: int = broadcast["id"]
    return broadcast_id


async def _messages(
    http: httpx.AsyncClient, org: OrgWithKey, broadcast_id: int
) -> list[dict[str, Any]]:
    url = f"/v1/orgs/{org.id}/messages?broadcast_id={broadcast_id}&limit=500"
    page = (await http.get(url, headers=org.bearer)).json()
    found: list[dict[str, Any]] = page["data"]
    assert len(found) == RECIPIENTS
    return found


async def _health(http: httpx.AsyncClient, org: OrgWithKey, connection_id: int) -> Any:
    answer = await http.get(
        f"/v1/orgs/{org.id}/connections/{connection_id}/health", headers=org.bearer
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def _dispatcher(db: Database, clock: Clock) -> Dispatcher:
    config = DispatcherConfig(batch_size=RECIPIENTS, retry=RETRY, breaker=BREAKER)
    return Dispatcher(db, renderer=Renderer(), config=config, clock=clock, rng=random.Random(7))


def _refs(gateway: Gateway) -> list[str]:
    return [request.json()["ref"] for request in gateway.requests]


async def test_a_failing_gateway_hands_its_messages_to_the_next_and_its_breaker_cycles(
    watched: httpx.AsyncClient, db: Database, gateway: Gateway, second: Gateway
) -> None:
    failing = True

    def first_plan(request: Recorded) -> Reply:
        if failing:
            return Reply(503, "overloaded")
        return Reply(200, {"id": f"A-{request.json()['ref']}"})

    gateway.plan = first_plan
    second.plan = lambda request: Reply(200, {"id": f"B-{request.json()['ref']}"})
    http = watched
    org = await make_org(db)
    campaign_id, (first, backup) = await _campaign(
        http, org, channel="sms",
        connections=[_http_sms("first", gateway), _http_sms("backup", second)],
    )  # fmt: skip
    clock = Clock(utcnow() + timedelta(hours=1))
    start = clock.now
    dispatcher = _dispatcher(db, clock)
    try:
        # 1. Every message tries the first connection, which answers 503, and goes to the
        #    next for its second attempt at once (the backoff is for the same provider);
        #    the first's breaker opens (5 errors in 5 attempts ≥ 50 % of ≥ 3).
        one = await _broadcast(http, org, campaign_id, "one")
        await dispatcher.drain()
        moved = await _messages(http, org, one)
        assert {(m["status"], m["attempts"], m["connection_id"]) for m in moved} == {
            ("sent", 2, backup)
        }
        assert {m["provider_id"] for m in moved} == {f"B-{m['id']}" for m in moved}
        assert sorted(_refs(gateway)) == sorted(str(m["id"]) for m in moved)
        assert sorted(_refs(second)) == sorted(str(m["id"]) for m in moved)
        opened = await _health(http, org, first)
        assert (opened["state"], opened["window_attempts"], opened["window_errors"]) == (
            "open", RECIPIENTS, RECIPIENTS,
        )  # fmt: skip
        assert opened["error_rate"] == 1.0
        metrics = (await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})).text
        assert f'tidings_connection_state{{connection="{first}",state="open"}} 1.0' in metrics
        assert f'tidings_connection_state{{connection="{first}",state="closed"}} 0.0' in metrics

        # 2. While it is open, a new broadcast's first attempts skip it.
        clock.now = start + timedelta(seconds=1)
        two = await _broadcast(http, org, campaign_id, "two")
        await dispatcher.drain()
        assert len(gateway.requests) == RECIPIENTS  # nothing more reached the first
        sent = await _messages(http, org, two)
        assert {(m["status"], m["attempts"], m["connection_id"]) for m in sent} == {
            ("sent", 1, backup)
        }

        # 3. Past its cool-down the first is half-open: one probe goes through it (the
        #    gateway works again), which closes it; the rest of the batch went to the next.
        #    (The API reads the wall clock, an hour behind the dispatcher's: it says open.)
        reopens = datetime.fromisoformat((await _health(http, org, first))["opened_until"])
        assert reopens == start + timedelta(seconds=BREAKER.open_seconds)
        clock.now = reopens + timedelta(seconds=1)
        failing = False
        three = await _broadcast(http, org, campaign_id, "three")
        await dispatcher.drain()
        probed = await _messages(http, org, three)
        assert Counter(m["connection_id"] for m in probed) == Counter(
            {first: 1, backup: RECIPIENTS - 1}
        )
        assert {m["status"] for m in probed} == {"sent"}
        closed = await _health(http, org, first)
        assert (closed["state"], closed["opened_until"], closed["window_attempts"]) == (
            "closed", None, 0,
        )  # fmt: skip
    finally:
        await dispatcher.close()

    # Each message reached a working gateway exactly once: the second, or the probe.
    assert len(gateway.requests) == RECIPIENTS + 1
    assert len(second.requests) == len(set(_refs(second))) == 3 * RECIPIENTS - 1
    backup_health = await _health(http, org, backup)
    assert (backup_health["state"], backup_health["window_errors"]) == ("closed", 0)


def _due(message: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(message["due_at"])


class Refusing:
    """An aiosmtpd handler: `reply` to every RCPT while set (a 451, say), else accept."""

    def __init__(self, reply: str | None) -> None:
        self.reply = reply
        self.rcpts = 0
        self.delivered: list[str] = []

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self,
        server: SmtpServer,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        self.rcpts += 1
        if self.reply is not None:
            return self.reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SmtpServer, session: Session, envelope: Envelope
    ) -> str:
        self.delivered.extend(envelope.rcpt_tos)
        return f"250 2.0.0 Ok: queued as Q{len(self.delivered)}"


@pytest.fixture
def relays() -> Iterator[tuple[tuple[Refusing, int], tuple[Refusing, int]]]:
    """Two SMTP servers on loopback: the first answers 451 at RCPT, the second accepts."""
    a, b = Refusing("451 4.3.0 Temporary local problem, try again"), Refusing(None)
    with serving(a) as a_port, serving(b) as b_port:
        yield (a, a_port), (b, b_port)


async def test_mail_refused_with_451_goes_out_through_the_next_smtp_server(
    client: httpx.AsyncClient,
    db: Database,
    relays: tuple[tuple[Refusing, int], tuple[Refusing, int]],
) -> None:
    (refusing, refusing_port), (accepting, accepting_port) = relays
    org = await make_org(db)
    campaign_id, (first, backup) = await _campaign(
        client, org, channel="email",
        connections=[_smtp("refusing", refusing_port), _smtp("accepting", accepting_port)],
    )  # fmt: skip
    clock = Clock(utcnow() + timedelta(hours=1))
    dispatcher = _dispatcher(db, clock)
    try:
        one = await _broadcast(client, org, campaign_id, "one")
        await dispatcher.drain()
        assert (await _health(client, org, first))["state"] == "open"
    finally:
        await dispatcher.close()
    sent = await _messages(client, org, one)
    assert {(m["status"], m["attempts"], m["connection_id"]) for m in sent} == {("sent", 2, backup)}
    assert refusing.rcpts == RECIPIENTS
    assert not refusing.delivered
    assert sorted(accepting.delivered) == sorted(m["recipient"] for m in sent)


async def test_connection_ids_are_checked_field_by_field(
    client: httpx.AsyncClient, db: Database, gateway: Gateway
) -> None:
    org, other = await make_org(db), await make_org(db, "Other")
    base, h = f"/v1/orgs/{org.id}", org.bearer
    sms = [(await _post(client, f"{base}/connections", h, _http_sms(f"g{i}", gateway)))["id"]
           for i in range(2)]  # fmt: skip
    mail = (await _post(client, f"{base}/connections", h, _smtp("mail", 2525)))["id"]
    theirs = (
        await _post(
            client, f"/v1/orgs/{other.id}/connections", other.bearer, _http_sms("x", gateway)
        )
    )["id"]
    template = await _post(
        client, f"{base}/templates", h, {"name": "t", "channel": "sms", "text": "Hi"}
    )
    body = {"name": "c", "channel": "sms", "template_id": template["id"]}

    async def refused(fields: dict[str, Any]) -> set[str]:
        answer = await client.post(f"{base}/campaigns", json=body | fields, headers=h)
        assert answer.status_code == 422, answer.text
        return {error["field"] for error in answer.json()["errors"]}

    assert await refused({"connection_ids": [sms[0], mail, theirs, sms[0]]}) == {
        "connection_ids[1]", "connection_ids[2]", "connection_ids[3]",
    }  # fmt: skip
    assert await refused({"connection_id": sms[1], "connection_ids": sms}) == {"connection_id"}
    made = await _post(client, f"{base}/campaigns", h, body | {"connection_ids": sms})
    assert (made["connection_id"], made["connection_ids"]) == (sms[0], sms)
    # A connection a campaign fails over to is in use, like its first one.
    deleted = await client.delete(f"{base}/connections/{sms[1]}", headers=h)
    assert deleted.status_code == 409
    assert f"campaign {made['id']} uses this connection" in deleted.json()["detail"]
    # Changing the one connection replaces the list, and a list of one is that connection.
    patched = await client.patch(
        f"{base}/campaigns/{made['id']}", json={"connection_id": sms[1]}, headers=h
    )
    assert (patched.json()["connection_id"], patched.json()["connection_ids"]) == (sms[1], None)
    patched = await client.patch(
        f"{base}/campaigns/{made['id']}", json={"connection_ids": [sms[0]]}, headers=h
    )
    assert (patched.json()["connection_id"], patched.json()["connection_ids"]) == (sms[0], None)
    # Another org's connection's health is a 404, as the connection is.
    answer = await client.get(f"{base}/connections/{theirs}/health", headers=h)
    assert answer.status_code == 404
    fresh = await _health(client, org, sms[0])
    assert (fresh["state"], fresh["window_attempts"], fresh["error_rate"]) == ("closed", 0, None)


async def test_a_single_send_goes_round_its_list_then_waits_the_backoff(
    client: httpx.AsyncClient, db: Database, gateway: Gateway, second: Gateway
) -> None:
    first_up = False

    def first_plan(request: Recorded) -> Reply:
        return Reply(200, {"id": "A"}) if first_up else Reply(503, "overloaded")

    gateway.plan = first_plan
    second.plan = lambda _: Reply(503, "overloaded too")
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}", org.bearer
    ids = [
        (await _post(client, f"{base}/connections", h, _http_sms(n, g)))["id"]
        for n, g in (("first", gateway), ("backup", second))
    ]
    message = await _post(
        client, f"{base}/messages", h,
        {"content": {"text": "Your code is 1234"}, "channel": "sms", "sms_sender": "Acme",
         "to": {"phone": "+41793020001"}, "connection_ids": ids},
    )  # fmt: skip
    url = f"{base}/messages/{message['id']}"
    clock = Clock(utcnow() + timedelta(hours=1))
    start = clock.now
    dispatcher = _dispatcher(db, clock)
    try:
        await dispatcher.drain()
        # The first refused, the second at once, then the backoff of a second attempt.
        queued = (await client.get(url, headers=h)).json()
        assert (queued["status"], queued["attempts"], queued["connection_id"]) == (
            "queued", 2, ids[1],
        )  # fmt: skip
        assert queued["reason"] == "HTTP 503: overloaded too"
        backoff = RETRY.base_seconds * 2 * (1 - RETRY.jitter)
        assert _due(queued) >= start + timedelta(seconds=backoff)
        assert (len(gateway.requests), len(second.requests)) == (1, 1)
        first_up = True
        clock.now = _due(queued) + timedelta(seconds=1)
        await dispatcher.drain()
    finally:
        await dispatcher.close()
    sent = (await client.get(url, headers=h)).json()
    assert (sent["status"], sent["attempts"], sent["connection_id"], sent["provider_id"]) == (
        "sent", 3, ids[0], "A",
    )  # fmt: skip
    assert [(a["attempt"], a["connection_id"], a["outcome"]) for a in sent["attempt_history"]] == [
        (1, ids[0], "failed over"), (2, ids[1], "retried"), (3, ids[0], "sent"),
    ]  # fmt: skip


async def test_each_attempt_keeps_the_connection_it_went_through_and_is_charged_once(
    client: httpx.AsyncClient, db: Database, gateway: Gateway, second: Gateway
) -> None:
    """Attempt 1 fails transiently on the first connection, attempt 2 goes out through
    the second: the message's read and its timeline show both, each with its connection;
    it is charged once, at its price. A message sent at its first attempt keeps no
    attempt row: its attempt is the message itself."""
    first_up = False

    def first_plan(request: Recorded) -> Reply:
        if first_up:
            return Reply(200, {"id": f"A-{request.json()['ref']}"})
        return Reply(503, "overloaded")

    gateway.plan = first_plan
    second.plan = lambda request: Reply(200, {"id": f"B-{request.json()['ref']}"})
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}", org.bearer
    priced = await client.put(
        f"{base}/prices", json={"prices": [{"channel": "sms", "amount": 0.01}]}, headers=h
    )
    assert priced.status_code == 200, priced.text
    await _post(client, f"{base}/credits/top-ups", h, {"amount": 1})
    ids = [
        (await _post(client, f"{base}/connections", h, _http_sms(n, g)))["id"]
        for n, g in (("first", gateway), ("backup", second))
    ]
    send = {"content": {"text": "Your code is 1234"}, "channel": "sms", "sms_sender": "Acme",
            "to": {"phone": "+41793020001"}, "connection_ids": ids}  # fmt: skip
    moved = await _post(client, f"{base}/messages", h, send)
    dispatcher = _dispatcher(db, Clock(utcnow() + timedelta(hours=1)))
    try:
        await dispatcher.drain()
        first_up = True
        straight = await _post(client, f"{base}/messages", h, send)
        await dispatcher.drain()
    finally:
        await dispatcher.close()

    read = (await client.get(f"{base}/messages/{moved['id']}", headers=h)).json()
    assert (read["status"], read["attempts"], read["connection_id"]) == ("sent", 2, ids[1])
    history = [
        (a["attempt"], a["connection_id"], a["connection_name"], a["outcome"], a["reason"])
        for a in read["attempt_history"]
    ]
    assert history == [
        (1, ids[0], "first", "failed over", "HTTP 503: overloaded"),
        (2, ids[1], "backup", "sent", None),
    ]
    async with db.session() as session:
        story = await timeline(session, org_id=org.id, message_id=moved["id"])
    assert [s.detail for s in story.steps if s.what == "attempt"] == [
        f"1 through first (connection {ids[0]}): failed over; HTTP 503: overloaded",
        f"2 through backup (connection {ids[1]}): sent",
    ]

    once = (await client.get(f"{base}/messages/{straight['id']}", headers=h)).json()
    assert (once["status"], once["attempts"], once["connection_id"]) == ("sent", 1, ids[0])
    assert [
        (a["attempt"], a["connection_name"], a["outcome"]) for a in once["attempt_history"]
    ] == [(1, "first", "sent")]
    async with db.session() as session:
        kept = (await session.execute(select(MessageAttempt.message_id))).scalars().all()
    assert kept == [moved["id"]]  # the first attempt of the moved one only

    # Each charged once at the SMS price, whichever connection sent it and however often.
    balance = (await client.get(f"{base}/credits", headers=h)).json()["balance"]
    assert balance == pytest.approx(1 - 2 * 0.01)
