"""A broadcast through the real dispatcher into the built-in sink, on both databases."""

from __future__ import annotations

import email
from email import policy

from sqlalchemy import select

from tests.support.factories import make_org
from tests.support.sending import audience, broadcast_now, email_campaign
from tidings.broadcasts.models import Broadcast
from tidings.channels.models import SinkMessage
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher, DispatcherConfig
from tidings.outbox.models import Message


async def test_every_recipient_gets_one_personalised_message(db: Database) -> None:
    org = await make_org(db)
    campaign_id = await email_campaign(db, org, purpose="marketing")
    rows = [
        {
            "email": f"p{i}@example.com",
            "first_name": f"First{i}",
            "last_name": f"Last{i}",
            "attributes": {"plan": "pro" if i % 2 else "team", "code": f"C{i:04d}"},
        }
        for i in range(300)
    ]
    rows.append({"phone": "+14155550100", "first_name": "NoEmail"})
    rows.append({"email": "gone@example.com", "subscriptions": {"email": "unsubscribed"}})
    target = await audience(db, org, rows)
    broadcast_id = await broadcast_now(db, org, campaign_id, target.list_id)

    await Dispatcher(db, renderer=Renderer(), config=DispatcherConfig(batch_size=64)).drain()

    async with db.session() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
        messages = list(await session.scalars(select(Message).order_by(Message.id)))
        sunk = list(await session.scalars(select(SinkMessage).order_by(SinkMessage.id)))
    assert broadcast is not None
    assert broadcast.status == "SENT"
    counters = (
        broadcast.contacts_count,
        broadcast.recipients_count,
        broadcast.skipped_count,
        broadcast.sent_count,
        broadcast.failed_count,
    )
    assert counters == (302, 300, 2, 300, 0)
    reasons = {m.recipient or "": m.reason for m in messages if m.status == "skipped"}
    assert reasons == {"": "no email address", "gone@example.com": "unsubscribed"}
    assert sorted(s.recipient or "" for s in sunk) == sorted(
        f"p{i}@example.com" for i in range(300)
    )
    assert len({s.message_id for s in sunk}) == 300

    for stored in sunk:
        parsed = email.message_from_bytes((stored.content or "").encode(), policy=policy.default)
        i = int((stored.recipient or "")[1:].split("@")[0])
        assert parsed["Subject"] == f"Hello First{i}, your {'pro' if i % 2 else 'team'} plan"
        assert parsed["To"].addresses[0].addr_spec == f"p{i}@example.com"
        assert parsed["From"].addresses[0].display_name == "Acme Research"
        html = parsed.get_body(("html",))
        text = parsed.get_body(("plain",))
        assert html is not None
        assert f"Code C{i:04d}" in html.get_content()
        assert text is not None
        assert f"Dear First{i}, code C{i:04d}" in text.get_content()
        assert parsed["Message-ID"].startswith(f"<{stored.message_id}.")
