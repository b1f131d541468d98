"""Provider faults end to end: a Dispatcher against real servers on loopback (aiosmtpd,
the local HTTP gateway) that refuse, throttle or fail, and what becomes of each message.

The dispatcher runs on a `Clock` the test moves by hand: a retry's `due_at` is written
from that clock and claims compare against it, so a test steps just short of a retry's
time (nothing happens) and just past it (the retry goes) without sleeping.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict, deque
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from aiosmtpd.smtp import SMTP as SmtpServer  # noqa: N811 (the library names its class SMTP)
from aiosmtpd.smtp import Envelope, Session

from tests.support.controller import serving
from tests.support.factories import OrgWithKey, make_org, upsert
from tidings.content.render import Renderer
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher, DispatcherConfig
from tidings.dispatcher.retry import RetryPolicy
from tidings.testing import Clock, Gateway, Recorded, Reply, infobip_ok

RECIPIENTS = 5
POLICY = RetryPolicy()  # the default: 30 s ± 20 % after a first failure


def _clock() -> Clock:
    """A clock an hour ahead of the wall clock (broadcasts created now are due on it): a
    retry time taken from the wall clock rather than this one would be due at once."""
    return Clock(utcnow() + timedelta(hours=1))


class Relay:
    """An aiosmtpd handler that accepts mail, except that `rcpt_replies[address]` and
    `data_replies[address]` hold replies to give, one per attempt, before accepting, and
    `rcpt_turns` replies to give to the next RCPTs whatever their address (None: as
    usual)."""

    def __init__(self) -> None:
        self.rcpt_replies: defaultdict[str, deque[str]] = defaultdict(deque)
        self.rcpt_turns: deque[str | None] = deque()
        self.data_replies: defaultdict[str, deque[str]] = defaultdict(deque)
        self.data_attempts: Counter[str] = Counter()
        self.delivered: list[tuple[str, bytes]] = []

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self,
        server: SmtpServer,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.rcpt_turns and (reply := self.rcpt_turns.popleft()) is not None:
            return reply
        if self.rcpt_replies[address]:
            return self.rcpt_replies[address].popleft()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SmtpServer, session: Session, envelope: Envelope
    ) -> str:
        (recipient,) = envelope.rcpt_tos
        self.data_attempts[recipient] += 1
        if self.data_replies[recipient]:
            return self.data_replies[recipient].popleft()
        self.delivered.append((recipient, envelope.original_content or b""))
        return f"250 2.0.0 Ok: queued as Q{len(self.delivered)}"


@pytest.fixture
def relay() -> Iterator[tuple[Relay, int]]:
    handler = Relay()
    with serving(handler) as port:
        yield handler, port


async def _post(http: httpx.AsyncClient, path: str, headers: dict[str, str], body: Any) -> Any:
    response = await http.post(path, json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def _broadcast(
    http: httpx.AsyncClient, org: OrgWithKey, *, channel: str, connection: dict[str, Any]
) -> int:
    """RECIPIENTS contacts (r0@example.com / +41793020000 …), a template and a campaign
    on `channel` sent through `connection` (the org's default), and a broadcast to all."""
    base, h = f"/v1/orgs/{org.id}", org.bearer
    rows = [
        {"email": f"r{i}@example.com", "phone": _phone(i), "first_name": f"R{i}"}
        for i in range(RECIPIENTS)
    ]
    await upsert(http, org, rows)
    await _post(
        http,
        f"{base}/connections",
        h,
        {"name": "provider", "channel": channel, "is_default": True, **connection},
    )
    parts = {"subject": "Hello {{ first_name }}"} if channel == "email" else {}
    template = await _post(
        http,
        f"{base}/templates",
        h,
        {"name": "t", "channel": channel, "text": "Hi {{ first_name }}", **parts},
    )
    sender = {"from_email": "news@acme.example"} if channel == "email" else {"sms_sender": "Acme"}
    campaign = await _post(
        http,
        f"{base}/campaigns",
        h,
        {"name": "c", "channel": channel, "template_id": template["id"], **sender},
    )
    broadcast = await _post(
        http,
        f"{base}/broadcasts",
        h,
        {"name": "b", "campaign_id": campaign["id"], "send_to_all": True},
    )
    broadcast_id: int = broadcast["id"]
    return broadcast_id


def _smtp(port: int) -> dict[str, Any]:
    return {"kind": "smtp", "settings": {"host": "127.0.0.1", "port": port, "security": "none"}}


def _phone(i: int) -> str:
    return f"+4179302{i:04d}"


async def _messages(
    http: httpx.AsyncClient, org: OrgWithKey, broadcast_id: int
) -> dict[str, dict[str, Any]]:
    """The broadcast's messages by recipient."""
    url = f"/v1/orgs/{org.id}/messages?broadcast_id={broadcast_id}&limit=500"
    page = (await http.get(url, headers=org.bearer)).json()
    assert page["next_cursor"] is None
    return {m["recipient"]: m for m in page["data"]}


async def _counters(http: httpx.AsyncClient, org: OrgWithKey, broadcast_id: int) -> tuple[Any, ...]:
    """(status, sent_count, failed_count) of the broadcast."""
    url = f"/v1/orgs/{org.id}/broadcasts/{broadcast_id}"
    done = (await http.get(url, headers=org.bearer)).json()
    return done["status"], done["sent_count"], done["failed_count"]


def _due(message: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(message["due_at"])


def _dispatcher(db: Database, clock: Clock, *, retry: RetryPolicy = POLICY) -> Dispatcher:
    config = DispatcherConfig(batch_size=2, retry=retry)  # several batches per broadcast
    return Dispatcher(db, renderer=Renderer(), config=config, clock=clock, rng=random.Random(7))


async def test_a_451_to_data_is_retried_after_the_backoff_and_delivered_once(
    client: httpx.AsyncClient, db: Database, relay: tuple[Relay, int]
) -> None:
    handler, port = relay
    flaky = "r2@example.com"
    handler.data_replies[flaky].append("451 4.3.0 Mailbox busy, try again")
    org = await make_org(db)
    broadcast_id = await _broadcast(client, org, channel="email", connection=_smtp(port))
    clock = _clock()
    start = clock.now
    dispatcher = _dispatcher(db, clock)
    try:
        await dispatcher.drain()

        waiting = (await _messages(client, org, broadcast_id))[flaky]
        assert (waiting["status"], waiting["attempts"]) == ("queued", 1)
        assert "451" in waiting["reason"]
        backoff, spread = POLICY.base_seconds, POLICY.base_seconds * POLICY.jitter
        assert (
            start + timedelta(seconds=backoff - spread)
            <= _due(waiting)
            <= start + timedelta(seconds=backoff + spread)
        )
        assert await _counters(client, org, broadcast_id) == ("SENDING", RECIPIENTS - 1, 0)

        clock.now = _due(waiting) - timedelta(seconds=1)
        await dispatcher.drain()
        assert handler.data_attempts[flaky] == 1  # not before its time
        assert (await _messages(client, org, broadcast_id))[flaky]["status"] == "queued"

        clock.now = _due(waiting) + timedelta(seconds=1)
        await dispatcher.drain()
    finally:
        await dispatcher.close()

    sent = (await _messages(client, org, broadcast_id))[flaky]
    assert (sent["status"], sent["attempts"], sent["reason"]) == ("sent", 2, None)
    assert sent["provider_id"].startswith("Q")
    assert handler.data_attempts[flaky] == 2
    delivered = Counter(recipient for recipient, _ in handler.delivered)
    assert delivered == Counter({f"r{i}@example.com": 1 for i in range(RECIPIENTS)})
    assert await _counters(client, org, broadcast_id) == ("SENT", RECIPIENTS, 0)


async def test_a_550_to_rcpt_fails_that_message_and_the_others_go(
    client: httpx.AsyncClient, db: Database, relay: tuple[Relay, int]
) -> None:
    handler, port = relay
    unknown = "r3@example.com"
    handler.rcpt_replies[unknown].append("550 5.1.1 No such user here")
    org = await make_org(db)
    broadcast_id = await _broadcast(client, org, channel="email", connection=_smtp(port))
    dispatcher = _dispatcher(db, _clock())
    try:
        await dispatcher.drain()
    finally:
        await dispatcher.close()

    messages = await _messages(client, org, broadcast_id)
    failed = messages.pop(unknown)
    assert (failed["status"], failed["attempts"], failed["provider_id"]) == ("failed", 1, None)
    assert "550" in failed["reason"]
    assert {m["status"] for m in messages.values()} == {"sent"}
    assert sorted(recipient for recipient, _ in handler.delivered) == sorted(messages)
    assert await _counters(client, org, broadcast_id) == ("SENT", RECIPIENTS - 1, 1)


async def test_a_421_holds_the_connection_back_for_pushback_seconds(
    client: httpx.AsyncClient, db: Database, relay: tuple[Relay, int]
) -> None:
    handler, port = relay
    handler.rcpt_turns.extend([None, "421 4.7.0 Too many messages, closing"])  # the 2nd
    org = await make_org(db)
    smtp = _smtp(port)
    smtp["settings"] |= {"pool_size": 1, "pushback_seconds": 90}
    smtp["max_concurrency"] = 1  # one message at a time: the batch goes in several sends
    broadcast_id = await _broadcast(client, org, channel="email", connection=smtp)
    clock = _clock()
    start = clock.now
    # The whole broadcast in one batch, so the rest of it is in this worker's hands.
    config = DispatcherConfig(batch_size=RECIPIENTS, retry=POLICY)
    dispatcher = Dispatcher(db, renderer=Renderer(), config=config, clock=clock)
    try:
        await dispatcher.drain()
        messages = await _messages(client, org, broadcast_id)
        ((first, _),) = handler.delivered
        assert messages.pop(first)["status"] == "sent"
        (busy,) = [r for r, m in messages.items() if m["attempts"] == 1]
        refused = messages.pop(busy)
        assert (refused["status"], refused["attempts"]) == ("queued", 1)
        assert refused["reason"] == "RCPT TO: 421 4.7.0 Too many messages, closing"
        assert _due(refused) == start + timedelta(seconds=90)  # longer than the backoff
        # Nothing else was tried, in that batch or since: the connection is blocked.
        for message in messages.values():
            assert (message["status"], message["attempts"]) == ("queued", 0)
            assert _due(message) >= start + timedelta(seconds=90)

        clock.now = start + timedelta(seconds=89)
        await dispatcher.drain()
        assert len(handler.delivered) == 1

        clock.now = max(_due(m) for m in [refused, *messages.values()]) + timedelta(seconds=1)
        await dispatcher.drain()
    finally:
        await dispatcher.close()

    final = await _messages(client, org, broadcast_id)
    assert {m["status"] for m in final.values()} == {"sent"}
    assert final[busy]["attempts"] == 2
    assert Counter(recipient for recipient, _ in handler.delivered) == Counter(set(final))
    assert await _counters(client, org, broadcast_id) == ("SENT", RECIPIENTS, 0)


def _message_ids(request: Recorded) -> set[str]:
    """Our message ids in an Infobip request."""
    return {d["messageId"] for m in request.json()["messages"] for d in m["destinations"]}


async def test_a_429_waits_for_retry_after_rather_than_the_shorter_backoff(
    client: httpx.AsyncClient, db: Database, gateway: Gateway
) -> None:
    throttled = {"requestError": {"serviceException": {"messageId": "TOO_MANY_REQUESTS"}}}

    def plan(request: Recorded) -> Reply:
        if len(gateway.requests) == 1:
            return Reply(429, throttled, {"Retry-After": "120"})
        return infobip_ok(request)

    gateway.plan = plan
    org = await make_org(db)
    infobip = {
        "kind": "infobip",
        "settings": {"base_url": gateway.url},
        "credentials": {"api_key": "ib-key"},
    }
    broadcast_id = await _broadcast(client, org, channel="sms", connection=infobip)
    clock = _clock()
    start = clock.now
    dispatcher = _dispatcher(db, clock)
    try:
        await dispatcher.drain()
        waiting = [
            m
            for m in (await _messages(client, org, broadcast_id)).values()
            if m["status"] == "queued"
        ]
        # The first batch was refused with Retry-After: 120. That blocks the connection
        # for every worker, so the rest of the broadcast waits too, no attempt spent.
        refused = _message_ids(gateway.requests[0])
        assert len(gateway.requests) == 1
        assert len(waiting) == RECIPIENTS
        for message in waiting:
            assert message["status"] == "queued"
            assert _due(message) >= start + timedelta(seconds=120)
            if str(message["id"]) in refused:
                assert message["attempts"] == 1
                assert "429" in message["reason"]
                assert _due(message) < start + timedelta(seconds=150)
            else:
                assert message["attempts"] == 0  # deferred, never tried
        requests = len(gateway.requests)

        # Well past the policy's 30 s (± 20 %), short of the gateway's 120 s.
        clock.now = start + timedelta(seconds=119)
        await dispatcher.drain()
        assert len(gateway.requests) == requests
        assert await _counters(client, org, broadcast_id) == ("SENDING", 0, 0)

        clock.now = max(_due(m) for m in waiting) + timedelta(seconds=1)
        await dispatcher.drain()
    finally:
        await dispatcher.close()

    assert len(gateway.requests) > requests
    messages = await _messages(client, org, broadcast_id)
    for message in waiting:
        final = messages[message["recipient"]]
        expected_attempts = 2 if str(message["id"]) in refused else 1
        assert (final["status"], final["attempts"]) == ("sent", expected_attempts)
        assert final["provider_id"] == str(final["id"])
    assert await _counters(client, org, broadcast_id) == ("SENT", RECIPIENTS, 0)


async def test_a_transient_failure_that_persists_fails_after_max_attempts(
    client: httpx.AsyncClient, db: Database, gateway: Gateway
) -> None:
    attempts: Counter[str] = Counter()

    def plan(request: Recorded) -> Reply:
        ref = request.json()["ref"]
        attempts[ref] += 1
        return Reply(503, f"overloaded, attempt {attempts[ref]}")

    gateway.plan = plan
    org = await make_org(db)
    http_sms = {
        "kind": "http_sms",
        "settings": {
            "url": f"{gateway.url}/send",
            "body": {"to": "{to}", "text": "{text}", "ref": "{message_id}"},
        },
    }
    broadcast_id = await _broadcast(client, org, channel="sms", connection=http_sms)
    clock = _clock()
    dispatcher = _dispatcher(db, clock, retry=RetryPolicy(max_attempts=3))
    try:
        for attempt in (1, 2):
            await dispatcher.drain()
            messages = (await _messages(client, org, broadcast_id)).values()
            assert {(m["status"], m["attempts"]) for m in messages} == {("queued", attempt)}
            assert {m["reason"] for m in messages} == {f"HTTP 503: overloaded, attempt {attempt}"}
            clock.now = max(_due(m) for m in messages) + timedelta(seconds=1)
        await dispatcher.drain()
        clock.now += timedelta(days=1)  # no fourth attempt, however long one waits
        await dispatcher.drain()
    finally:
        await dispatcher.close()

    assert attempts == Counter({str(m["id"]): 3 for m in messages})
    for message in (await _messages(client, org, broadcast_id)).values():
        assert (message["status"], message["attempts"]) == ("failed", 3)
        assert message["reason"] == "HTTP 503: overloaded, attempt 3"
    assert await _counters(client, org, broadcast_id) == ("SENT", 0, RECIPIENTS)
