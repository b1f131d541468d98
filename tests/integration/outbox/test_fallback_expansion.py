"""Cross-channel fallback at expansion, on both databases: an email campaign whose
fallback is an SMS campaign, sent to 30 contacts — only a phone, only an email, both,
unsubscribed from email, suppressed on email. Each skipped email that falls back gets one
SMS (the fallback's own skip rule applied), both messages linked, the broadcast counting
them, each charged its channel's price; the estimate and the dry run say what the
expansion then makes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from tests.integration.outbox.test_rules import _campaign
from tests.support.factories import make_org
from tidings.broadcasts import preview
from tidings.broadcasts import service as broadcasts
from tidings.broadcasts.models import Broadcast
from tidings.broadcasts.routes import estimate_out
from tidings.broadcasts.schemas import BroadcastCreate
from tidings.campaigns.models import Campaign
from tidings.contacts import service as contacts
from tidings.contacts.models import Contact
from tidings.credits import service as credits
from tidings.db.engine import Database
from tidings.outbox.models import Message
from tidings.outbox.rules import falls_back
from tidings.suppressions import service as suppressions

NOW = datetime(2026, 3, 28, 12, tzinfo=UTC)
EMAIL_PRICE, SMS_PRICE = 1_000, 50_000


def _phone(i: int) -> str:
    return f"+336123400{i:02d}"


def _rows() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(6):  # only a phone: 2 of them unsubscribed from SMS too
        row: dict[str, Any] = {"phone": _phone(i)}
        if i < 2:
            row["subscriptions"] = {"sms": "unsubscribed"}
        rows.append(row)
    rows += [{"email": f"only{i}@example.com"} for i in range(6)]
    rows += [{"email": f"both{i}@example.com", "phone": _phone(10 + i)} for i in range(6)]
    rows += [
        {"email": f"unsub{i}@example.com", "phone": _phone(20 + i),
         "subscriptions": {"email": "unsubscribed"}}
        for i in range(6)
    ]  # fmt: skip
    rows += [{"email": f"bounced{i}@example.com", "phone": _phone(30 + i)} for i in range(6)]
    return rows


async def _setup(db: Database) -> tuple[int, Campaign, Campaign]:
    org = await make_org(db)
    async with db.transaction() as session:
        report = await contacts.upsert_contacts(session, org_id=org.id, rows=_rows())
        assert report.failed == 0, report.errors
        for i in range(6):
            await suppressions.suppress(
                session, org_id=org.id, channel="email", address=f"bounced{i}@example.com",
                reason="hard_bounce", source="test",
            )  # fmt: skip
        await credits.set_prices(
            session,
            org_id=org.id,
            prices=[credits.PriceRow("email", "*", EMAIL_PRICE),
                    credits.PriceRow("sms", "*", SMS_PRICE)],
        )  # fmt: skip
        await credits.top_up(session, org_id=org.id, amount=10_000_000)
    email = await _campaign(db, org.id, channel="email", purpose="marketing")
    sms = await _campaign(db, org.id, channel="sms", purpose="marketing")
    async with db.transaction() as session:
        await session.execute(
            update(Campaign).where(Campaign.id == email.id).values(fallback_campaign_id=sms.id)
        )
    return org.id, email, sms


async def test_skipped_emails_fall_back_to_one_sms_each(db: Database) -> None:
    org_id, email, sms = await _setup(db)
    body = BroadcastCreate(name="b", campaign_id=email.id, send_to_all=True)
    async with db.transaction() as session:
        dry = await preview.dry_run(session, org_id=org_id, body=body, now=NOW)
    async with db.transaction() as session:
        created = await broadcasts.create_broadcast(session, org_id=org_id, body=body, now=NOW)
        broadcast_id = created.broadcast.id
    async with db.transaction() as session:
        estimated = await preview.estimate_broadcast(
            session, org_id=org_id, broadcast_id=broadcast_id, now=NOW
        )
    async with db.transaction() as session:
        assert await broadcasts.start_due(session, broadcast_id=broadcast_id, now=NOW)
    async with db.session() as session:
        ours = (
            (await session.scalars(select(Message).where(Message.broadcast_id == broadcast_id)))
            .unique()
            .all()
        )
        fallbacks = (
            await session.scalars(
                select(Message).where(Message.fallback_of.in_([m.id for m in ours]))
            )
        ).all()
        broadcast = await session.get(Broadcast, broadcast_id)
        balance = await credits.balance_of(session, org_id=org_id)
    assert broadcast is not None

    queued = [m for m in ours if m.status == "queued"]
    skipped = [m for m in ours if m.status == "skipped"]
    assert len(ours) == 30
    assert {m.channel for m in queued} == {"email"}
    assert sorted(m.recipient for m in queued) == sorted(
        [f"only{i}@example.com" for i in range(6)] + [f"both{i}@example.com" for i in range(6)]
    )
    reasons: dict[str, int] = {}
    for m in skipped:
        reasons[m.reason or ""] = reasons.get(m.reason or "", 0) + 1
    assert reasons == {"no email address": 6, "unsubscribed": 6, "suppressed: hard_bounce": 6}

    # One SMS per skipped email that falls back, but for the two unsubscribed from SMS.
    assert len(fallbacks) == 16
    assert {(f.channel, f.status, f.broadcast_id) for f in fallbacks} == {("sms", "queued", None)}
    assert {f.campaign_id for f in fallbacks} == {sms.id}
    assert sorted(f.recipient for f in fallbacks) == sorted(
        [_phone(i) for i in range(2, 6)] + [_phone(20 + i) for i in range(6)]
        + [_phone(30 + i) for i in range(6)]
    )  # fmt: skip
    by_id = {m.id: m for m in ours}
    for f in fallbacks:
        original = by_id[f.fallback_of or 0]
        assert original.fell_back_to == f.id
        assert original.contact_id == f.contact_id
        assert falls_back(original.reason)
    unreached = [m for m in skipped if m.fell_back_to is None]
    assert len(unreached) == 2
    assert {m.reason for m in unreached} == {"no email address"}

    # Counted on the broadcast; each channel charged at its own price.
    assert (broadcast.contacts_count, broadcast.recipients_count) == (30, 12)
    assert (broadcast.skipped_count, broadcast.fallback_count) == (18, 16)
    assert {m.cost for m in queued} == {EMAIL_PRICE}
    assert {f.cost for f in fallbacks} == {SMS_PRICE}
    cost = 12 * EMAIL_PRICE + 16 * SMS_PRICE
    assert balance == 10_000_000 - cost

    # The estimate (and the dry run, and a draft's estimate) said so before.
    async with db.transaction() as session:
        draft = await broadcasts.create_broadcast(
            session, org_id=org_id, now=NOW,
            body=BroadcastCreate(name="d", campaign_id=email.id, send_to_all=True, draft=True),
        )  # fmt: skip
        drafted = await preview.estimate_broadcast(
            session, org_id=org_id, broadcast_id=draft.broadcast.id, now=NOW
        )
    assert drafted.fallbacks == 16
    assert drafted.cost == cost
    assert estimate_out(drafted).recipients == {"email": 12, "sms": 16}  # the API's answer
    for figures in (estimated, dry):
        assert (figures.channel, figures.fallback_channel) == ("email", "sms")
        assert (figures.contacts, figures.recipients, figures.fallbacks) == (30, 12, 16)
        assert figures.skipped == reasons
        assert figures.cost == cost
        assert figures.sms_segments == 16
        assert figures.schedule == [(NOW, 28)]


async def test_no_fallback_when_its_own_channel_skips_the_contact_too(db: Database) -> None:
    org_id, email, _ = await _setup(db)
    # Every phone unsubscribed from SMS: nobody can get the fallback.
    async with db.transaction() as session:
        await session.execute(
            update(Contact).where(Contact.org_id == org_id)
            .values(sms_status="unsubscribed")
        )  # fmt: skip
        created = await broadcasts.create_broadcast(
            session, org_id=org_id, now=NOW,
            body=BroadcastCreate(name="b", campaign_id=email.id, send_to_all=True),
        )  # fmt: skip
        broadcast_id = created.broadcast.id
    async with db.transaction() as session:
        estimated = await preview.estimate_broadcast(
            session, org_id=org_id, broadcast_id=broadcast_id, now=NOW
        )
    async with db.transaction() as session:
        assert await broadcasts.start_due(session, broadcast_id=broadcast_id, now=NOW)
    async with db.session() as session:
        made = (await session.execute(select(Message.status, Message.reason, Message.fell_back_to,
                                             Message.broadcast_id))).all()  # fmt: skip
        broadcast = await session.get(Broadcast, broadcast_id)
    assert broadcast is not None
    assert all(m.broadcast_id == broadcast_id for m in made)  # no message outside it
    assert all(m.fell_back_to is None for m in made)
    skipped = sorted(m.reason for m in made if m.status == "skipped")
    assert skipped == sorted(
        ["no email address"] * 6 + ["unsubscribed"] * 6 + ["suppressed: hard_bounce"] * 6
    )
    assert (broadcast.skipped_count, broadcast.fallback_count) == (18, 0)
    assert (estimated.fallbacks, estimated.recipients) == (0, 12)
    assert estimated.cost == 12 * EMAIL_PRICE


async def test_pause_resume_and_cancel_move_the_fallbacks_too(db: Database) -> None:
    org_id, email, _ = await _setup(db)
    async with db.transaction() as session:
        created = await broadcasts.create_broadcast(
            session, org_id=org_id, now=NOW,
            body=BroadcastCreate(name="b", campaign_id=email.id, send_to_all=True),
        )  # fmt: skip
        broadcast_id = created.broadcast.id
    async with db.transaction() as session:
        assert await broadcasts.start_due(session, broadcast_id=broadcast_id, now=NOW)

    async def statuses() -> dict[str, set[str]]:
        async with db.session() as session:
            rows = (await session.execute(select(Message.channel, Message.status)
                                          .where(Message.status != "skipped"))).all()  # fmt: skip
        found: dict[str, set[str]] = {}
        for channel, status in rows:
            found.setdefault(channel, set()).add(status)
        return found

    assert await statuses() == {"email": {"queued"}, "sms": {"queued"}}
    async with db.transaction() as session:
        await broadcasts.pause(session, org_id=org_id, broadcast_id=broadcast_id)
    assert await statuses() == {"email": {"held"}, "sms": {"held"}}
    async with db.transaction() as session:
        await broadcasts.resume(session, org_id=org_id, broadcast_id=broadcast_id)
    assert await statuses() == {"email": {"queued"}, "sms": {"queued"}}
    async with db.transaction() as session:
        await broadcasts.cancel(session, org_id=org_id, broadcast_id=broadcast_id)
    assert await statuses() == {"email": {"cancelled"}, "sms": {"cancelled"}}
    async with db.session() as session:  # both channels' reservations given back
        assert await credits.balance_of(session, org_id=org_id) == 10_000_000
