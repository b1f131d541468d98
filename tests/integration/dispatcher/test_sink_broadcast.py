"""A broadcast through the real dispatcher into the built-in sink, on both databases."""

from __future__ import annotations

import email
import re
from email import policy

from sqlalchemy import select

from tests.support.factories import make_org
from tests.support.sending import audience, broadcast_now, campaign, email_campaign
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
    ids = {m.id: m.email_message_id for m in messages if m.status == "sent"}

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
        assert parsed["Message-ID"] == f"<{ids[stored.message_id]}>"
        assert re.fullmatch(r"[0-9a-f]{14}\.[0-9a-f]{32}@acme\.example", ids[stored.message_id])
        assert parsed["List-Id"] == f"<campaign-{campaign_id}.org-{org.id}.acme.example>"
    assert len(set(ids.values())) == 300


async def test_html_only_templates_get_a_text_part_and_the_pixel_comes_last(
    db: Database,
) -> None:
    """A substitution-only HTML template gets its text made once, from its source; one
    that runs code, from each rendered HTML. Either way links stay readable in the text,
    and a short marketing message with an open pixel is text and HTML, the pixel a
    1×1 image without alt text after all of the template's content."""
    org = await make_org(db)
    target = await audience(db, org, [{"email": "ada@example.com", "first_name": "Ada"}])
    html = '<p>Hi {{ first_name }}, read <a href="https://news.example/a">our news</a>.</p>'
    sent = {}
    for name, source in (("plain", html), ("code", html.replace("first_name", "first_name|upper"))):
        campaign_id = await campaign(
            db, org, channel="email", subject="News", html=source, text=None,
            template_name=name, name=name, purpose="marketing", from_email="n@acme.example",
            track_opens=True, track_clicks=True,
        )  # fmt: skip
        broadcast_id = await broadcast_now(db, org, campaign_id, target.list_id)
        await Dispatcher(db, renderer=Renderer()).drain()
        async with db.session() as session:
            stored = await session.scalar(
                select(SinkMessage)
                .join(Message, Message.id == SinkMessage.message_id)
                .where(Message.broadcast_id == broadcast_id)
            )
        assert stored is not None
        sent[name] = email.message_from_bytes(
            (stored.content or "").encode(), policy=policy.default
        )
    for name, first in (("plain", "Ada"), ("code", "ADA")):
        parsed = sent[name]
        assert parsed.get_content_type() == "multipart/alternative"
        text = parsed.get_body(("plain",))
        body = parsed.get_body(("html",))
        assert text is not None
        assert body is not None
        words = text.get_content()
        assert re.match(rf"Hi {first}, read our news \(http://[^)]+/l/[^)]+\)\.", words), words
        assert "To stop receiving these emails: http" in words
        content = body.get_content()
        images = re.findall(r"<img [^>]*>", content)
        assert len(images) == 1
        assert 'width="1" height="1" alt=""' in images[0]
        assert content.index("<img") > content.index("our news")
