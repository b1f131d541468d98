"""Cross-channel fallback end to end: an email campaign whose fallback is an SMS campaign.
A hard bounce (a DSN through the bounce webhook) sends the recipient the SMS instead,
once, through a real HTTP gateway on loopback; an email an SMTP server refuses with 550
does the same at outcome time. Both messages say so, and the broadcast counts it."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from aiosmtpd.smtp import SMTP as SmtpServer  # noqa: N811 (the library names its class SMTP)
from aiosmtpd.smtp import Envelope, Session

from tests.support.console import signed_in
from tests.support.controller import serving
from tests.support.factories import OrgWithKey, make_org, upsert
from tests.support.reports import dsn
from tests.support.sending import sent_ids
from tidings.broadcasts import report
from tidings.content.render import Renderer
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher
from tidings.members.roles import Role
from tidings.testing import Clock, Gateway, Recorded, Reply

TOKEN = "bounce-token-0123456789abcdef"
RFC822 = {"Content-Type": "message/rfc822"}
PEOPLE = 4


async def _post(http: httpx.AsyncClient, path: str, headers: dict[str, str], body: Any) -> Any:
    response = await http.post(path, json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


def _phone(i: int) -> str:
    return f"+4179302{i:04d}"


async def _setup(
    http: httpx.AsyncClient, org: OrgWithKey, gateway: Gateway, *, email: dict[str, Any]
) -> int:
    """PEOPLE contacts with an email and a phone; an SMS campaign through the gateway; an
    email campaign through `email` (a connection) falling back to it; a broadcast of the
    email campaign to all. Returns the broadcast's id."""
    base, h = f"/v1/orgs/{org.id}", org.bearer
    await upsert(http, org, [{"email": f"p{i}@example.com", "phone": _phone(i)}
                             for i in range(PEOPLE)])  # fmt: skip
    sms_gateway = await _post(http, f"{base}/connections", h, {
        "name": "gw", "channel": "sms", "kind": "http_sms",
        "settings": {"url": f"{gateway.url}/send", "body": {"to": "{to}", "text": "{text}"}},
    })  # fmt: skip
    mail = await _post(http, f"{base}/connections", h, {"name": "mail", "channel": "email",
                                                        **email})  # fmt: skip
    sms_template = await _post(
        http, f"{base}/templates", h, {"name": "s", "channel": "sms", "text": "Your survey"}
    )
    sms = await _post(http, f"{base}/campaigns", h, {
        "name": "sms", "channel": "sms", "template_id": sms_template["id"],
        "sms_sender": "Acme", "connection_id": sms_gateway["id"],
    })  # fmt: skip
    email_template = await _post(http, f"{base}/templates", h, {
        "name": "e", "channel": "email", "subject": "Your survey", "text": "Hello",
    })  # fmt: skip
    campaign = await _post(http, f"{base}/campaigns", h, {
        "name": "email", "channel": "email", "template_id": email_template["id"],
        "from_email": "research@acme.example", "connection_id": mail["id"],
        "fallback_campaign_id": sms["id"],
    })  # fmt: skip
    assert campaign["fallback_campaign_id"] == sms["id"]
    body = {"name": "b", "campaign_id": campaign["id"], "send_to_all": True}
    broadcast = await _post(http, f"{base}/broadcasts", h, body)
    broadcast_id: int = broadcast["id"]
    return broadcast_id


async def _drain(db: Database) -> None:
    dispatcher = Dispatcher(db, renderer=Renderer())
    try:
        await dispatcher.drain()
    finally:
        await dispatcher.close()


async def _message(http: httpx.AsyncClient, org: OrgWithKey, message_id: int) -> Any:
    answer = await http.get(f"/v1/orgs/{org.id}/messages/{message_id}", headers=org.bearer)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def _by_recipient(http: httpx.AsyncClient, org: OrgWithKey, broadcast_id: int) -> Any:
    url = f"/v1/orgs/{org.id}/messages?broadcast_id={broadcast_id}&limit=500"
    return {m["recipient"]: m for m in (await http.get(url, headers=org.bearer)).json()["data"]}


async def _fallback_count(http: httpx.AsyncClient, org: OrgWithKey, broadcast_id: int) -> int:
    url = f"/v1/orgs/{org.id}/broadcasts/{broadcast_id}"
    count: int = (await http.get(url, headers=org.bearer)).json()["fallback_count"]
    return count


def _sms_to(gateway: Gateway) -> list[str]:
    return sorted(request.json()["to"] for request in gateway.requests)


async def test_each_hard_bounce_sends_one_sms_instead(
    client: httpx.AsyncClient, db: Database, gateway: Gateway
) -> None:
    gateway.plan = lambda _: Reply(200, {"id": "ok"})
    org = await make_org(db)
    # The email goes to the sink; the SMTP connection only receives the bounces.
    broadcast_id = await _setup(client, org, gateway, email={"kind": "sink"})
    relay = await _post(client, f"/v1/orgs/{org.id}/connections", org.bearer, {
        "name": "relay", "channel": "email", "kind": "smtp",
        "settings": {"host": "smtp.example.com"}, "credentials": {"bounce_token": TOKEN},
    })  # fmt: skip
    await _drain(db)
    assert not gateway.requests  # every email went
    ids = await sent_ids(db, broadcast_id)
    url = f"/bounces/{relay['id']}/{TOKEN}"

    async def bounce(address: str, **fields: str) -> Any:
        raw = dsn(message_id=ids[address], recipient=address, **fields)
        answer = await client.post(url, content=raw, headers=RFC822)
        assert answer.status_code == 200, answer.text
        return answer.json()["reports"]

    assert await bounce("p0@example.com") == ["bounced"]
    assert await bounce("p1@example.com") == ["bounced"]
    assert await bounce("p1@example.com") == ["duplicate"]  # read again: no second SMS
    soft = {"action": "delayed", "status": "4.2.2", "diagnostic": "smtp; 452 mailbox full"}
    assert await bounce("p2@example.com", **soft) == ["deferred"]  # not a hard bounce
    await _drain(db)

    assert _sms_to(gateway) == sorted(_phone(i) for i in (0, 1))
    emails = await _by_recipient(client, org, broadcast_id)
    for i in (0, 1):
        email = emails[f"p{i}@example.com"]
        sms = await _message(client, org, email["fell_back_to"])
        assert (sms["channel"], sms["recipient"], sms["status"]) == ("sms", _phone(i), "sent")
        assert sms["fallback_of"] == email["id"]
    for i in (2, 3):
        assert emails[f"p{i}@example.com"]["fell_back_to"] is None
    assert await _fallback_count(client, org, broadcast_id) == 2


class Refusing:
    """An aiosmtpd handler that refuses every recipient with 550."""

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self,
        server: SmtpServer,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        return "550 5.1.1 No such user here"


@pytest.fixture
def refusing() -> Iterator[int]:
    with serving(Refusing()) as port:
        yield port


async def test_an_email_refused_for_good_sends_the_sms_once(
    client: httpx.AsyncClient, db: Database, gateway: Gateway, refusing: int
) -> None:
    texts: list[str] = []

    def plan(request: Recorded) -> Reply:
        texts.append(request.json()["text"])
        return Reply(200, {"id": "ok"})

    gateway.plan = plan
    org = await make_org(db)
    smtp = {"kind": "smtp", "settings": {"host": "127.0.0.1", "port": refusing,
                                         "security": "none"}}  # fmt: skip
    broadcast_id = await _setup(client, org, gateway, email=smtp)
    await _drain(db)
    await _drain(db)  # nothing more: a message falls back once, and SMS do not fall back

    assert _sms_to(gateway) == sorted(_phone(i) for i in range(PEOPLE))
    assert texts == ["Your survey"] * PEOPLE
    emails = await _by_recipient(client, org, broadcast_id)
    assert {(m["status"], m["fell_back_to"] is not None) for m in emails.values()} == {
        ("failed", True)
    }
    assert await _fallback_count(client, org, broadcast_id) == PEOPLE


async def test_a_fallback_is_a_campaign_of_the_other_channel_and_stays_while_named(
    client: httpx.AsyncClient, db: Database, gateway: Gateway
) -> None:
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}", org.bearer
    broadcast_id = await _setup(client, org, gateway, email={"kind": "sink"})
    broadcast = (await client.get(f"{base}/broadcasts/{broadcast_id}", headers=h)).json()
    email = (await client.get(f"{base}/campaigns/{broadcast['campaign_id']}", headers=h)).json()
    sms_id = email["fallback_campaign_id"]

    async def refused(fields: dict[str, Any]) -> Any:
        answer = await client.patch(f"{base}/campaigns/{email['id']}", json=fields, headers=h)
        assert answer.status_code == 422, answer.text
        return answer.json()["errors"]

    assert await refused({"fallback_campaign_id": email["id"]}) == [
        {"field": "fallback_campaign_id", "reason": "does not exist"}
    ]
    other = await _post(client, f"{base}/campaigns", h, {
        "name": "other", "channel": "email", "template_id": email["template_id"],
        "from_email": "x@acme.example",
    })  # fmt: skip
    assert await refused({"fallback_campaign_id": other["id"]}) == [
        {"field": "fallback_campaign_id", "reason": "is on the email channel too"}
    ]
    deleted = await client.delete(f"{base}/campaigns/{sms_id}", headers=h)
    assert deleted.status_code == 409
    assert f"campaign {email['id']} uses this campaign as its fallback" in deleted.json()["detail"]


async def test_a_broadcast_is_sent_only_once_its_fallbacks_are(
    client: httpx.AsyncClient, db: Database, gateway: Gateway, refusing: int
) -> None:
    """Every email is refused for good and falls back to SMS; the gateway answers 503 at
    first, so the SMS wait for a retry: the broadcast's own messages are all final, and it
    stays SENDING until its fallbacks are too, then turns SENT. Its report counts them."""
    up = False
    gateway.plan = lambda _: Reply(200, {"id": "ok"}) if up else Reply(503, "busy")
    org = await make_org(db)
    smtp = {"kind": "smtp", "settings": {"host": "127.0.0.1", "port": refusing,
                                         "security": "none"}}  # fmt: skip
    broadcast_id = await _setup(client, org, gateway, email=smtp)
    url = f"/v1/orgs/{org.id}/broadcasts/{broadcast_id}"
    clock = Clock(utcnow() + timedelta(hours=1))
    dispatcher = Dispatcher(db, renderer=Renderer(), clock=clock, rng=random.Random(3))
    try:
        await dispatcher.drain()  # emails failed, SMS made, tried once, waiting to retry
        emails = await _by_recipient(client, org, broadcast_id)
        assert {m["status"] for m in emails.values()} == {"failed"}
        waiting = (await client.get(url, headers=org.bearer)).json()
        assert (waiting["status"], waiting["failed_count"], waiting["fallback_count"]) == (
            "SENDING", PEOPLE, PEOPLE,
        )  # fmt: skip
        assert waiting["completed_at"] is None
        async with db.session() as session:
            counted = await report.fallbacks(session, org_id=org.id, broadcast_id=broadcast_id)
        assert counted == report.Fallbacks(waiting=PEOPLE)

        up = True
        clock.advance(3_600)
        await dispatcher.drain()
    finally:
        await dispatcher.close()
    done = (await client.get(url, headers=org.bearer)).json()
    assert (done["status"], done["sent_count"], done["failed_count"]) == ("SENT", 0, PEOPLE)
    assert done["completed_at"] is not None
    async with db.session() as session:
        counted = await report.fallbacks(session, org_id=org.id, broadcast_id=broadcast_id)
    assert counted == report.Fallbacks(sent=PEOPLE)
    assert len(gateway.requests) == 2 * PEOPLE
    await signed_in(client, db, role=Role.VIEWER, org=org)  # the console's report says so
    page = await client.get(f"/broadcasts/{broadcast_id}")
    assert page.status_code == 200, page.text
    assert f'data-fallback="sent">{PEOPLE}<' in page.text
    assert 'data-fallback="waiting">0<' in page.text


class Deferring:
    """An aiosmtpd handler that takes every recipient but the last, which it asks to
    try again later (451): that one email waits for its retry, keeping the broadcast
    SENDING."""

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self,
        server: SmtpServer,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address == f"p{PEOPLE - 1}@example.com":
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SmtpServer, session: Session, envelope: Envelope
    ) -> str:
        return "250 2.0.0 OK"


@pytest.fixture
def deferring() -> Iterator[int]:
    with serving(Deferring()) as port:
        yield port


async def test_cancelling_reaches_a_fallback_made_after_a_hard_bounce(
    client: httpx.AsyncClient, db: Database, gateway: Gateway, deferring: int
) -> None:
    """A bounce of an email already sent makes its SMS while the broadcast still sends
    (one email waits for a retry); cancelling the broadcast cancels that SMS too, and
    gives back its credit reservation with the rest."""
    gateway.plan = lambda _: Reply(200, {"id": "ok"})
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}", org.bearer
    smtp = {"kind": "smtp", "settings": {"host": "127.0.0.1", "port": deferring,
                                         "security": "none"}}  # fmt: skip
    broadcast_id = await _setup(client, org, gateway, email=smtp)
    relay = await _post(client, f"{base}/connections", h, {
        "name": "relay", "channel": "email", "kind": "smtp",
        "settings": {"host": "smtp.example.com"}, "credentials": {"bounce_token": TOKEN},
    })  # fmt: skip
    await _drain(db)  # three sent; the last waits for its retry
    ids = await sent_ids(db, broadcast_id)
    raw = dsn(message_id=ids["p0@example.com"], recipient="p0@example.com")
    answer = await client.post(f"/bounces/{relay['id']}/{TOKEN}", content=raw, headers=RFC822)
    assert answer.json()["reports"] == ["bounced"]
    emails = await _by_recipient(client, org, broadcast_id)
    fallback = await _message(client, org, emails["p0@example.com"]["fell_back_to"])
    assert (fallback["channel"], fallback["status"]) == ("sms", "queued")

    cancelled = await client.post(f"{base}/broadcasts/{broadcast_id}/cancel", headers=h)
    assert cancelled.status_code == 200, cancelled.text
    assert (await _message(client, org, fallback["id"]))["status"] == "cancelled"
    emails = await _by_recipient(client, org, broadcast_id)
    assert emails[f"p{PEOPLE - 1}@example.com"]["status"] == "cancelled"
    await _drain(db)
    assert not gateway.requests  # the SMS never went
