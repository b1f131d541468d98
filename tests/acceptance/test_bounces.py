"""Bounces and complaints for SMTP through the webhook: a DSN or ARF report moves the
message and the broadcast's counters, suppresses the address, and is applied once."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from tests.support.factories import OrgWithKey, make_org
from tests.support.imap_server import PASSWORD, USER, dovecot_server
from tests.support.reports import arf, dsn
from tests.support.sending import broadcast_now, email_campaign, emailed
from tidings.bounces.imap import BouncePoller, poll_once
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher
from tidings.outbox.models import Message
from tidings.suppressions import service as suppressions

TOKEN = "bounce-token-0123456789abcdef"
RFC822 = {"Content-Type": "message/rfc822"}


async def smtp_connection(
    client: httpx.AsyncClient, org: OrgWithKey, *, settings: dict[str, Any] | None = None,
    credentials: dict[str, Any] | None = None,
) -> int:  # fmt: skip
    response = await client.post(
        f"/v1/orgs/{org.id}/connections",
        json={"name": "relay", "channel": "email", "kind": "smtp",
              "settings": {"host": "smtp.example.com", **(settings or {})},
              "credentials": {"bounce_token": TOKEN, **(credentials or {})}},
        headers=org.bearer,
    )  # fmt: skip
    assert response.status_code == 201, response.text
    assert TOKEN not in response.text
    return int(response.json()["id"])


async def _state(db: Database, broadcast_id: int) -> dict[str, tuple[str, str | None]]:
    async with db.session() as session:
        rows = await session.execute(
            select(Message.recipient, Message.status, Message.reason).where(
                Message.broadcast_id == broadcast_id
            )
        )
        return {r.recipient: (r.status, r.reason) for r in rows}


async def _listed(db: Database, org: OrgWithKey) -> dict[str, str]:
    async with db.session() as session:
        rows = await suppressions.list_suppressions(session, org_id=org.id, after_id=None,
                                                    limit=100)  # fmt: skip
    return {f"{s.address}": f"{s.reason}/{s.source}" for s in rows}


async def test_bounces_and_complaints_through_the_webhook(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    other = await make_org(db, "Other")
    sent = await emailed(db, org, 4)
    people, first, ids = sent.people, sent.broadcast_id, sent.message_ids
    connection_id = await smtp_connection(client, org)
    url = f"/bounces/{connection_id}/{TOKEN}"

    async def post(raw: bytes, to: str = url) -> Any:
        response = await client.post(to, content=raw, headers=RFC822)
        return response.status_code, response.json()

    hard = dsn(message_id=ids["p0@example.com"], recipient="p0@example.com")
    wrong = f"/bounces/{connection_id}/wrong-token-0123456789abcdef"
    assert (await client.post(wrong, content=hard, headers=RFC822)).status_code == 404
    assert (await client.post(f"/bounces/{connection_id}/x", content=hard)).status_code == 404
    assert await post(hard) == (200, {"reports": ["bounced"]})
    assert await post(hard) == (200, {"reports": ["duplicate"]})  # re-read: nothing changes
    complaint = arf(message_id=ids["p1@example.com"], recipient="p1@example.com")
    assert await post(complaint) == (200, {"reports": ["complained"]})
    assert await post(complaint) == (200, {"reports": ["duplicate"]})
    assert await post(b"Subject: out of office\r\n\r\nAway.\r\n") == (200, {"reports": []})

    # Another org's token cannot touch this org's messages.
    other_connection = await smtp_connection(client, other)
    victim = dsn(message_id=ids["p3@example.com"], recipient="p3@example.com",
                 report_id="<forged@x.example>")  # fmt: skip
    assert await post(victim, f"/bounces/{other_connection}/{TOKEN}") == (
        200, {"reports": ["ignored"]},
    )  # fmt: skip

    # Soft bounces count, once per report, up to TIDINGS_SOFT_BOUNCE_LIMIT (3).
    for n in range(3):
        soft = dsn(message_id=ids["p2@example.com"], recipient="p2@example.com",
                   action="delayed", status="4.4.1", report_id=f"<soft{n}@mx.example>")  # fmt: skip
        assert await post(soft) == (200, {"reports": ["deferred"]})
        assert await post(soft) == (200, {"reports": ["duplicate"]})
        assert ("p2@example.com" in await _listed(db, org)) is (n == 2)

    assert await _listed(db, org) == {
        "p0@example.com": "hard_bounce/dsn",
        "p1@example.com": "complaint/arf",
        "p2@example.com": "soft_bounces/dsn",
    }
    assert await _listed(db, other) == {}
    state = await _state(db, first)
    assert {r: s for r, (s, _) in state.items()} == {
        "p0@example.com": "bounced", "p1@example.com": "complained",
        "p2@example.com": "sent", "p3@example.com": "sent",
    }  # fmt: skip
    got = (await client.get(f"/v1/orgs/{org.id}/broadcasts/{first}", headers=org.bearer)).json()
    assert (got["sent_count"], got["failed_count"], got["complained_count"]) == (4, 1, 1)

    second = await broadcast_now(db, org, await email_campaign(db, org, name="2"), people.list_id)
    await Dispatcher(db, renderer=Renderer()).drain()
    assert await _state(db, second) == {
        "p0@example.com": ("skipped", "suppressed: hard_bounce"),
        "p1@example.com": ("skipped", "suppressed: complaint"),
        "p2@example.com": ("skipped", "suppressed: soft_bounces"),
        "p3@example.com": ("sent", None),
    }


async def test_a_complaint_s_event_names_the_exact_address(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    ids = (await emailed(db, org, 1)).message_ids
    url = f"/bounces/{await smtp_connection(client, org)}/{TOKEN}"
    # Only the original's To names the recipient, with a display name.
    raw = arf(message_id=ids["p0@example.com"], recipient="P Zero <p0@example.com>")
    head, _, tail = raw.partition(b"Original-Rcpt-To: ")
    response = await client.post(url, content=head + tail.partition(b"\r\n")[2], headers=RFC822)
    assert response.json() == {"reports": ["complained"]}, response.text
    events = await client.get(
        f"/v1/orgs/{org.id}/events", params={"type": "complained"}, headers=org.bearer
    )
    [event] = events.json()["data"]
    assert event["data"]["recipient"] == "p0@example.com"


async def test_bounce_mailbox_polled_over_imap(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    sent = await emailed(db, org, 3)
    first, ids = sent.broadcast_id, sent.message_ids
    with dovecot_server() as server:
        connection_id = await smtp_connection(
            client,
            org,
            settings={"bounce_imap": {"host": "127.0.0.1", "port": server.port,
                                      "security": "none", "username": USER}},
            credentials={"bounce_imap_password": PASSWORD},
        )  # fmt: skip
        shown = await client.get(f"/v1/orgs/{org.id}/connections/{connection_id}",
                                 headers=org.bearer)  # fmt: skip
        assert PASSWORD not in shown.text
        hard = dsn(message_id=ids["p0@example.com"], recipient="p0@example.com")
        server.deliver(hard, "dsn")
        server.deliver(arf(message_id=ids["p1@example.com"], recipient="p1@example.com"), "arf")
        server.deliver(b"Subject: out of office\r\n\r\nAway.\r\n", "vacation")

        outcomes = await poll_once(db, connection_id=connection_id, soft_bounce_limit=3)
        assert sorted(outcomes) == ["bounced", "complained"]
        assert server.seen() == 3  # every message read, reports or not, is marked seen
        assert await poll_once(db, connection_id=connection_id, soft_bounce_limit=3) == []

        server.deliver(hard, "dsn-again")  # the same report delivered twice: applied once
        poller = BouncePoller(db, interval=60, soft_bounce_limit=3)
        await poller.poll_all()
        assert server.seen() == 4
    assert await _listed(db, org) == {
        "p0@example.com": "hard_bounce/dsn",
        "p1@example.com": "complaint/arf",
    }
    got = (await client.get(f"/v1/orgs/{org.id}/broadcasts/{first}", headers=org.bearer)).json()
    assert (got["failed_count"], got["complained_count"]) == (1, 1)


async def test_a_bounce_of_a_message_sent_before_random_message_ids_still_matches(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Emails sent before migration 0020 went with `<message id>.<campaign id>@domain`
    and have no stored Message-ID; their bounces, which arrive days later, still act.
    A legacy-looking id whose campaign does not match is ignored."""
    org = await make_org(db)
    sent = await emailed(db, org, 2)
    async with db.transaction() as session:
        rows = (
            await session.execute(
                select(Message.id, Message.campaign_id, Message.recipient).where(
                    Message.broadcast_id == sent.broadcast_id
                )
            )
        ).all()
        for row in rows:  # as the rows of that time were
            message = await session.get(Message, row.id)
            assert message is not None
            message.email_message_id = None
    legacy = {r.recipient: f"{r.id}.{r.campaign_id}@acme.example" for r in rows}
    connection_id = await smtp_connection(client, org)
    url = f"/bounces/{connection_id}/{TOKEN}"
    # The stored random id no longer names anything: it is not guessed from the address.
    gone = dsn(message_id=sent.message_ids["p0@example.com"], recipient="p0@example.com")
    assert (await client.post(url, content=gone, headers=RFC822)).json() == {"reports": ["ignored"]}
    hard = dsn(message_id=legacy["p0@example.com"], recipient="p0@example.com",
               report_id="<legacy@mx.example>")  # fmt: skip
    assert (await client.post(url, content=hard, headers=RFC822)).json() == {"reports": ["bounced"]}
    mid, cid = legacy["p1@example.com"].split("@")[0].split(".")
    forged = dsn(message_id=f"{mid}.{int(cid) + 1}@acme.example", recipient="p1@example.com",
                 report_id="<forged@mx.example>")  # fmt: skip
    assert (await client.post(url, content=forged, headers=RFC822)).json() == {
        "reports": ["ignored"]
    }
    assert await _listed(db, org) == {"p0@example.com": "hard_bounce/dsn"}
