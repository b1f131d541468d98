"""Erasure reaches every copy of a person's data: after it, no text or JSON column of any
table holds their address, phone or name, while their address stays suppressed and other
people's data is untouched."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from sqlalchemy import JSON, String, Text, insert, select, update

from tests.support.factories import OrgWithKey, make_org
from tests.support.sending import Audience, audience, broadcast_now, email_campaign
from tidings.contacts import service as contacts
from tidings.content.render import Renderer
from tidings.db.base import Base
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher, DispatcherConfig
from tidings.events.service import NewEvent, record_events
from tidings.idempotency import service as idempotency
from tidings.links.models import Link
from tidings.links.secret import erasure_key
from tidings.lists import service as lists
from tidings.outbox.models import Message, MessageAttempt
from tidings.privacy import service as privacy
from tidings.reports.models import PendingReport
from tidings.settings import Settings
from tidings.suppressions import service as suppressions
from tidings.suppressions.models import Suppression
from tidings.webhooks.models import WebhookDelivery, WebhookEndpoint

EMAIL = "zebedee.quixote@example.com"
PHONE = "+14155550123"
FIRST, LAST = "Zebedee", "Quixotic"
NEEDLES = (EMAIL, PHONE, PHONE.lstrip("+"), FIRST, LAST)
OTHER = "other.person@example.com"


async def _everything(db: Database) -> list[tuple[str, str, str]]:
    """(table, column, text) of every non-null text or JSON value in the database."""
    found = []
    async with db.session() as session:
        for table in Base.metadata.sorted_tables:
            columns = [c for c in table.columns if isinstance(c.type, String | Text | JSON)]
            if not columns:
                continue
            for row in await session.execute(select(*columns)):
                for column, value in zip(columns, row, strict=True):
                    if value is not None:
                        text = value if isinstance(value, str) else json.dumps(value)
                        found.append((table.name, column.name, text))
    return found


def _mentions(values: list[tuple[str, str, str]], needle: str) -> list[tuple[str, str]]:
    return [(t, c) for t, c, text in values if needle.casefold() in text.casefold()]


async def _person_everywhere(db: Database, org: OrgWithKey) -> tuple[int, int]:
    """A person (and another) sent an email, with every kind of record that quotes them:
    sink copies, a failure reason, tracked links, events with details (and their webhook
    deliveries), a pending report, a stored Idempotency-Key answer, suppressions and a
    soft-bounce count. Returns (their contact id, their message id)."""
    async with db.transaction() as session:
        session.add(
            WebhookEndpoint(org_id=org.id, url="https://hooks.example/t", event_types=["*"],
                            secret="whsec_test")
        )  # fmt: skip
    people = await audience(
        db,
        org,
        [
            {"email": EMAIL, "phone": PHONE, "first_name": FIRST, "last_name": LAST,
             "attributes": {"nickname": f"{FIRST} the brave"}},
            {"email": OTHER, "first_name": "Otto"},
        ],
    )  # fmt: skip
    await broadcast_now(db, org, await email_campaign(db, org), people.list_id)
    await Dispatcher(db, renderer=Renderer()).drain()
    async with db.transaction() as session:
        message = await session.scalar(
            select(Message).where(Message.contact_id == people.contact_ids[0])
        )
        assert message is not None
        assert message.recipient == EMAIL
        message_id = message.id
        await session.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(reason=f"550 5.1.1 <{EMAIL.upper()}>: no such user", provider_id="prov-1")
        )
        await session.execute(
            insert(Link),
            [{"message_id": message_id, "position": 0, "org_id": org.id,
              "url": f"https://survey.example/?who={EMAIL}", "clicks": 0}],
        )  # fmt: skip
        session.add(  # an attempt before the last, whose provider quoted the address
            MessageAttempt(org_id=org.id, message_id=message_id, attempt=1, connection_id=None,
                           outcome="retried", reason=f"451 4.2.0 <{EMAIL}>: try later",
                           at=message.created_at)
        )  # fmt: skip
        await record_events(
            session,
            events=[
                NewEvent(org_id=org.id, type="complained", source="arf", external_id="arf-1",
                         message_id=message_id,
                         data={"recipient": f'"{FIRST} {LAST}" <{EMAIL}>',
                               "diagnostic": f"complaint from {FIRST} {LAST}"}),
                NewEvent(org_id=org.id, type="opened", source="tracking", external_id="o-1",
                         message_id=message_id,
                         data={"user_agent": "Mozilla/5.0 Zebedee-Phone", "ip": "203.0.113.9"}),
            ],
        )  # fmt: skip
        session.add(
            PendingReport(org_id=org.id, connection_id=await _a_connection(session, org.id),
                          source="kannel", provider_id="prov-1",
                          report={"type": "delivered", "data": {"to": PHONE.lstrip("+")}})
        )  # fmt: skip
        await suppressions.suppress(
            session, org_id=org.id, channel="email", address=EMAIL, reason="complaint",
            source="arf", note=f"by {EMAIL}",
        )  # fmt: skip
        await suppressions.note_soft_bounce(session, org_id=org.id, channel="sms", address=PHONE,
                                            limit=5, source="kannel")  # fmt: skip
    async with db.transaction() as session:
        claim = await idempotency.begin(session, org_id=org.id, key="k-1", **_KEY)
        assert isinstance(claim, idempotency.Claim)
        await idempotency.finish(
            session, claim=claim, status_code=201, media_type="application/json",
            body={"id": message_id, "recipient": PHONE, "to": {"first_name": FIRST}},
        )  # fmt: skip
    return people.contact_ids[0], message_id


_KEY: dict[str, Any] = {
    "route": idempotency.route_digest("POST", "/v1/orgs/1/messages"), "fingerprint": "f",
    "keep_for": timedelta(days=1), "in_flight_for": timedelta(minutes=5),
}  # fmt: skip
"""The rest of the stored answer's key (a single send's)."""


async def _again(db: Database, org: OrgWithKey) -> Audience:
    """The erased person's address signs up again, on a list of its own."""
    async with db.transaction() as session:
        made = await lists.create_list(session, org_id=org.id, name="again", description=None)
    async with db.transaction() as session:
        report = await contacts.upsert_contacts(
            session, org_id=org.id, rows=[{"email": EMAIL}], list_ids=[made.list.id]
        )
    return Audience(made.list.id, [o.contact_id for o in report.outcomes if o.contact_id])


async def _a_connection(session: Any, org_id: int) -> int:
    from tidings.connections.models import Connection

    connection = Connection(org_id=org_id, name="kannel", kind="sink", channel="sms", settings={})
    session.add(connection)
    await session.flush()
    return connection.id


async def test_erase_leaves_the_person_nowhere_and_keeps_them_suppressed(
    db: Database, settings: Settings
) -> None:
    org = await make_org(db)
    contact_id, message_id = await _person_everywhere(db, org)
    before = await _everything(db)
    for needle in NEEDLES:  # the set-up did put them everywhere it says
        assert _mentions(before, needle), needle
    tables = {t for needle in NEEDLES for t, _ in _mentions(before, needle)}
    everywhere = {"contacts", "messages", "message_attempts", "sink_messages", "links", "events",
                  "webhook_deliveries", "pending_reports", "idempotency_keys", "suppressions",
                  "soft_bounces"}  # fmt: skip
    assert everywhere <= tables

    key = erasure_key(settings)
    async with db.transaction() as session:
        await privacy.erase_contact(session, org_id=org.id, contact_id=contact_id, erasure_key=key)

    after = await _everything(db)
    for needle in NEEDLES:
        assert _mentions(after, needle) == [], needle
    # Other people's data is intact, and the history stays (statuses, events, counts).
    assert _mentions(after, OTHER)
    assert ("sink_messages", "content") in _mentions(after, OTHER)
    async with db.session() as session:
        kept = await session.get(Message, message_id)
        assert kept is not None
        assert (kept.status, kept.recipient) == ("complained", None)
        assert kept.reason == "550 5.1.1 <[erased]>: no such user"
        assert await session.scalar(select(MessageAttempt.id)) is None
        listed = list(await session.scalars(select(Suppression)))
        assert [s.reason for s in listed] == ["complaint"]
        assert listed[0].address.startswith("erased:")
        replay = await idempotency.begin(session, org_id=org.id, key="k-1", **_KEY)
    assert isinstance(replay, idempotency.Replay)
    assert replay.body["recipient"] == "[erased]"
    assert replay.body["id"] == message_id

    # The address comes back (a new sign-up): a new send to it is skipped, never sent.
    again = await _again(db, org)
    await broadcast_now(db, org, await email_campaign(db, org, name="again"), again.list_id)
    config = DispatcherConfig(erasure_key=key)
    await Dispatcher(db, renderer=Renderer(), config=config).drain()
    async with db.session() as session:
        status, reason = (
            await session.execute(
                select(Message.status, Message.reason).where(
                    Message.contact_id == again.contact_ids[0]
                )
            )
        ).one()
        sent_since = await session.scalar(
            select(WebhookDelivery.id).where(WebhookDelivery.event_type == "sent").limit(1)
        )
    assert (status, reason) == ("skipped", "suppressed: complaint")
    assert sent_since is not None  # webhook deliveries of others' events still exist


async def test_erase_twice_and_a_hashed_suppression_under_another_key_is_not_matched(
    db: Database, settings: Settings
) -> None:
    org = await make_org(db)
    people = await audience(db, org, [{"email": EMAIL}])
    async with db.transaction() as session:
        await suppressions.suppress(session, org_id=org.id, channel="email", address=EMAIL,
                                    reason="hard_bounce", source="dsn")  # fmt: skip
    key = erasure_key(settings)
    for _ in range(2):
        async with db.transaction() as session:
            await privacy.erase_contact(
                session, org_id=org.id, contact_id=people.contact_ids[0], erasure_key=key
            )
    again = await _again(db, org)
    await broadcast_now(db, org, await email_campaign(db, org), again.list_id)
    await Dispatcher(
        db, renderer=Renderer(), config=DispatcherConfig(erasure_key=b"another key")
    ).drain()
    async with db.session() as session:
        status = await session.scalar(
            select(Message.status).where(Message.contact_id == again.contact_ids[0])
        )
        rows = list(await session.scalars(select(Suppression.address)))
    assert status == "sent"  # the hash is keyed: without the key it matches nothing
    assert len(rows) == 1
    assert rows[0].startswith("erased:")
