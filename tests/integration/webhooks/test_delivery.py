"""The delivery loop against a real HTTP server on loopback: signed requests, retries with
backoff on an injected clock, refusals at send time (rebinding, redirects)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from datetime import timedelta

import httpcore
import pytest
from sqlalchemy import select

from tests.support.factories import make_org
from tests.support.outbound import LOOPBACK
from tests.unit.webhooks.test_signing import verify
from tidings.db.engine import Database
from tidings.events import service as events
from tidings.events.models import Event
from tidings.net.ssrf import UnsafeURL, guarded_client
from tidings.outbox.models import Message
from tidings.testing import Clock, Gateway, Reply
from tidings.webhooks import service
from tidings.webhooks.delivery import SenderConfig, WebhookSender
from tidings.webhooks.models import WebhookDelivery, WebhookEndpoint
from tidings.webhooks.schemas import WebhookCreate

PUBLIC = "93.184.216.34"


async def _endpoint(
    db: Database, org_id: int, url: str, types: list[str], **check: object
) -> WebhookEndpoint:
    await service.checked_url(url, **check)  # type: ignore[arg-type]
    async with db.transaction() as session:
        return await service.create_endpoint(
            session, org_id=org_id, body=WebhookCreate(url=url, event_types=types)
        )


async def _events(db: Database, org_id: int, types: Iterable[str]) -> int:
    async with db.session() as session:
        events = [Event(org_id=org_id, type=t, source="test", data={"n": i}) for i, t in
                  enumerate(types)]  # fmt: skip
        session.add_all(events)
        await session.flush()
        queued = await service.enqueue_deliveries(session, events=events)
        await session.commit()
    return queued


async def _deliveries(db: Database) -> Sequence[WebhookDelivery]:
    async with db.session() as session:
        return (await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))).all()


async def _public(host: str, port: int) -> Sequence[str]:
    """Names resolve to a public address; address literals to themselves."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        return [PUBLIC]


async def _loopback(host: str, port: int) -> Sequence[str]:
    return ["127.0.0.1"]


async def test_enqueue_one_delivery_per_subscribed_endpoint(db: Database) -> None:
    a = await make_org(db, "Alpha")
    b = await make_org(db, "Bravo")
    check = {"resolver": _public}
    delivered = await _endpoint(db, a.id, "https://a.example/1", ["delivered"], **check)
    everything = await _endpoint(db, a.id, "https://a.example/2", ["*"], **check)
    off = await _endpoint(db, a.id, "https://a.example/3", ["*"], **check)
    await _endpoint(db, b.id, "https://b.example/1", ["*"], **check)
    async with db.transaction() as session:
        await service.update_endpoint(
            session, org_id=a.id, endpoint_id=off.id, changes={"enabled": False}
        )

    assert await _events(db, a.id, ["delivered", "opened", "clicked"]) == 4
    rows = await _deliveries(db)
    assert sorted((r.endpoint_id, r.event_type) for r in rows) == sorted(
        [
            (delivered.id, "delivered"),
            (everything.id, "delivered"),
            (everything.id, "opened"),
            (everything.id, "clicked"),
        ]
    )
    assert {r.org_id for r in rows} == {a.id}
    first = next(r for r in rows if r.event_type == "opened")
    assert first.payload["type"] == "opened"
    assert first.payload["data"]["event_id"] == first.event_id
    assert first.payload["data"]["details"] == {"n": 1}
    assert await _events(db, b.id, []) == 0


async def test_retried_with_backoff_then_delivered_signed(db: Database, gateway: Gateway) -> None:
    org = await make_org(db)
    endpoint = await _endpoint(db, org.id, f"{gateway.url}/hook", ["*"], policy=LOOPBACK)
    answers = iter([Reply(500, "boom"), Reply(503), Reply(204)])
    gateway.plan = lambda _: next(answers)
    await _events(db, org.id, ["delivered"])
    clock = Clock()
    sender = WebhookSender(db, config=SenderConfig(policy=LOOPBACK), clock=clock)
    try:
        assert await sender.tick() == 1
        assert await sender.tick() == 0  # not due yet: backing off
        (row,) = await _deliveries(db)
        assert (row.status, row.attempts, row.last_status_code) == ("pending", 1, 500)
        assert row.last_error == "HTTP 500"
        assert 4.5 <= (row.next_attempt_at - clock.now).total_seconds() <= 5.5
        clock.advance(6)
        assert await sender.drain() == 1
        (row,) = await _deliveries(db)
        assert 27 <= (row.next_attempt_at - clock.now).total_seconds() <= 33
        clock.advance(40)
        assert await sender.drain() == 1
    finally:
        await sender.close()

    async with db.session() as session:
        (seen,) = await service.list_deliveries(
            session, org_id=org.id, endpoint_id=endpoint.id, after_id=None, limit=10
        )
    assert (seen.status, seen.attempts, seen.last_status_code) == ("delivered", 3, 204)
    assert seen.last_error is None
    assert seen.delivered_at == clock.now
    assert len(gateway.requests) == 3
    ids = {r.headers["webhook-id"] for r in gateway.requests}
    assert ids == {f"msg_{seen.id}"}  # stable across retries
    for request in gateway.requests:
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/json"
        assert verify(endpoint.secret, request.headers, request.body)
    assert gateway.requests[-1].json()["type"] == "delivered"
    assert gateway.connections == 1  # one kept-alive connection for all three attempts


async def test_gives_up_a_day_after_creation(db: Database, gateway: Gateway) -> None:
    org = await make_org(db)
    await _endpoint(db, org.id, f"{gateway.url}/hook", ["*"], policy=LOOPBACK)
    gateway.plan = lambda _: Reply(500)
    await _events(db, org.id, ["bounced"])
    clock = Clock()
    sender = WebhookSender(db, config=SenderConfig(policy=LOOPBACK), clock=clock)
    try:
        clock.advance(timedelta(hours=23, minutes=59, seconds=57).total_seconds())
        assert await sender.drain() == 1
    finally:
        await sender.close()
    (row,) = await _deliveries(db)
    assert (row.status, row.attempts, row.last_error) == ("failed", 1, "HTTP 500")


async def test_a_name_rebound_to_loopback_after_saving_is_refused_without_connecting(
    db: Database, gateway: Gateway
) -> None:
    org = await make_org(db)
    port = gateway.url.rsplit(":", 1)[1]
    url = f"http://hooks.example.test:{port}/hook"
    await _endpoint(db, org.id, url, ["*"], resolver=_public)  # public when saved
    await _events(db, org.id, ["clicked"])
    client = guarded_client(resolver=_loopback)  # 127.0.0.1 when sent
    sender = WebhookSender(db, client=client, clock=Clock())
    try:
        assert await sender.tick() == 1
    finally:
        await sender.close()
    (row,) = await _deliveries(db)
    assert row.status == "pending"
    assert row.last_status_code is None
    assert row.last_error == (
        "refused: hooks.example.test resolves to 127.0.0.1 is loopback;"
        " the operator may allow it in TIDINGS_OUTBOUND_ALLOW"
    )
    assert gateway.connections == 0


class _Rewire(httpcore.AsyncNetworkBackend):
    """Stands in for the Internet: connections to PUBLIC reach the loopback gateway."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        assert host == PUBLIC, host  # the guard only ever hands on vetted addresses
        return await self.inner.connect_tcp(
            "127.0.0.1", self.port, timeout, local_address, socket_options
        )

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


async def test_a_redirect_to_loopback_is_not_followed(db: Database, gateway: Gateway) -> None:
    org = await make_org(db)
    port = int(gateway.url.rsplit(":", 1)[1])
    internal = f"http://127.0.0.1:{port}/admin"
    gateway.plan = lambda _: Reply(302, headers={"Location": internal})
    await _endpoint(db, org.id, f"http://hooks.example.test:{port}/hook", ["*"], resolver=_public)
    await _events(db, org.id, ["opened"])
    client = guarded_client(resolver=_public, inner=_Rewire(port))
    sender = WebhookSender(db, client=client, clock=Clock())
    try:
        assert await sender.tick() == 1
        with pytest.raises(UnsafeURL, match=r"127\.0\.0\.1 is loopback"):
            await client.get(internal)  # had it been followed, the guard refuses it
    finally:
        await sender.close()
    (row,) = await _deliveries(db)
    assert (row.status, row.last_status_code) == ("pending", 302)
    assert row.last_error == f"HTTP 302: redirect to {internal!r} not followed"
    assert [r.path for r in gateway.requests] == ["/hook"]


async def test_an_event_of_a_test_keys_message_is_marked_test(db: Database) -> None:
    org = await make_org(db)
    await _endpoint(db, org.id, "https://a.example/1", ["*"], resolver=_public)
    async with db.transaction() as session:
        sent = [
            Message(org_id=org.id, channel="sms", recipient="+41793026701", status="sent",
                    is_test=is_test, attempts=1)
            for is_test in (True, False)
        ]  # fmt: skip
        session.add_all(sent)
        await session.flush()
        await events.record_events(
            session,
            events=[
                events.NewEvent(org.id, "delivered", "test", f"d{m.id}", message_id=m.id)
                for m in sent
            ],
        )
    payloads = {d.payload["data"]["message_id"]: d.payload for d in await _deliveries(db)}
    assert {mid: p["data"]["is_test"] for mid, p in payloads.items()} == {
        sent[0].id: True,
        sent[1].id: False,
    }
