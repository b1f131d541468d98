"""A person's data, wherever Tidings keeps it: exporting it (GDPR art. 15, 20) and
erasing it (art. 17). Retention, the expiry of everyone's data, is `retention.py`.

The contact row is personal data's home, but copies live beside it, and erasing reaches
them all (tests/integration/privacy/test_erase_everywhere.py looks in every column of
every table afterwards):

    contacts             the row stays, every personal field emptied, `erased_at` set
    list_members         the contact's memberships, deleted
    messages             `recipient` and `variables` emptied, `reason` scrubbed (providers
                         quote the address); statuses, times and counts stay
    sink_messages        what the sink recorded of them: address, subject, content emptied
    links                the tracked links of those messages (personalised URLs), deleted
    message_attempts     their attempts that did not end them (a provider's reason may
                         quote the address), deleted; the last one is the message row
    events               their details scrubbed (recipient, display name, IP, user agent
                         and any quotation of the address)
    webhook_deliveries   the payloads made of those events, scrubbed likewise
    pending_reports      delivery reports still waiting for those messages, scrubbed
    idempotency_keys     stored answers (kept a day for replays) quoting the person
    suppressions         kept under a keyed hash of the address (`suppressions.erased`),
                         so the person stays suppressed; soft-bounce counts deleted

This package sits above contacts, lists, the outbox, events and the rest, which it reads
and writes; none of them imports it. Its functions are query helpers in the entry point's
transaction, which an audit log can wrap (`export_contact`, `erase_contact`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Text, cast, delete, func, null, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.channels.models import SinkMessage
from tidings.contacts.models import Contact
from tidings.contacts.service import get_contact
from tidings.db.base import utcnow
from tidings.events.models import Event
from tidings.idempotency.models import IdempotencyKey
from tidings.links.models import Link
from tidings.lists.models import ContactList, ListMember
from tidings.outbox.models import Message, MessageAttempt
from tidings.privacy.scrub import Person
from tidings.reports.models import PendingReport
from tidings.suppressions import erased
from tidings.suppressions.models import SoftBounce, Suppression
from tidings.webhooks.models import WebhookDelivery

SCRUB_BATCH = 500


@dataclass(frozen=True, slots=True)
class Export:
    """Everything held about one contact (`export_contact`)."""

    contact: Contact
    lists: list[tuple[int, str, datetime]]  # (list id, name, joined at)
    suppressions: list[Suppression]
    soft_bounces: list[SoftBounce]
    messages: list[Message]
    contents: dict[int, SinkMessage]  # message id → what the sink kept of it
    links: dict[int, list[str]]  # message id → its tracked links, in order
    events: list[Event]


async def export_contact(session: AsyncSession, *, org_id: int, contact_id: int) -> Export:
    """Everything Tidings holds about one contact (GDPR art. 15 and 20), read only: the
    contact, its list memberships, the suppressions and soft-bounce counts of its addresses,
    every message with
    what was kept of its content (the sink's copy, the tracked links), every event of them.
    An erased contact's export holds what erasure left: no personal data."""
    contact = await get_contact(session, org_id=org_id, contact_id=contact_id)
    memberships = await session.execute(
        select(ContactList.id, ContactList.name, ListMember.created_at)
        .join(ListMember, ListMember.list_id == ContactList.id)
        .where(ListMember.org_id == org_id, ListMember.contact_id == contact_id)
        .order_by(ContactList.id)
    )
    addresses = [(c, a) for c, a in (("email", contact.email), ("sms", contact.phone)) if a]
    suppressions = (
        list(
            await session.scalars(
                select(Suppression)
                .where(
                    Suppression.org_id == org_id,
                    or_(*(
                        (Suppression.channel == c) & (Suppression.address == a)
                        for c, a in addresses
                    )),
                )
                .order_by(Suppression.id)
            )
        )
        if addresses
        else []
    )  # fmt: skip
    soft_bounces = list(
        await session.scalars(
            select(SoftBounce)
            .where(SoftBounce.org_id == org_id, SoftBounce.address.in_([a for _, a in addresses]))
            .order_by(SoftBounce.address)
        )
    )
    messages = list(
        await session.scalars(
            select(Message)
            .where(Message.org_id == org_id, Message.contact_id == contact_id)
            .order_by(Message.id)
        )
    )
    contents: dict[int, SinkMessage] = {}
    links: dict[int, list[str]] = {}
    events: list[Event] = []
    ids = [m.id for m in messages]
    for start in range(0, len(ids), SCRUB_BATCH):
        chunk = ids[start : start + SCRUB_BATCH]
        for sunk in await session.scalars(
            select(SinkMessage)
            .where(SinkMessage.org_id == org_id, SinkMessage.message_id.in_(chunk))
            .order_by(SinkMessage.id)
        ):
            if sunk.message_id is not None:
                contents[sunk.message_id] = sunk
        for link in await session.scalars(
            select(Link)
            .where(Link.org_id == org_id, Link.message_id.in_(chunk))
            .order_by(Link.message_id, Link.position)
        ):
            links.setdefault(link.message_id, []).append(link.url)
        events += await session.scalars(
            select(Event)
            .where(Event.org_id == org_id, Event.message_id.in_(chunk))
            .order_by(Event.id)
        )
    return Export(
        contact=contact,
        lists=[(row.id, row.name, row.created_at) for row in memberships],
        suppressions=suppressions,
        soft_bounces=soft_bounces,
        messages=messages,
        contents=contents,
        links=links,
        events=events,
    )


async def erase_contact(
    session: AsyncSession, *, org_id: int, contact_id: int, erasure_key: bytes
) -> Contact:
    """Erase a contact's personal data (GDPR art. 17) everywhere it lives (the module
    docstring lists where), keeping a row without it.

    Email, phone, names, attributes, locale and time zone are emptied, list memberships
    removed, and the contact is marked unsubscribed so that nothing is sent to the row.
    Its suppressions keep the address's keyed hash under `erasure_key`, so the address
    stays suppressed if it comes back. Idempotent: erasing again changes nothing.
    """
    contact = await get_contact(session, org_id=org_id, contact_id=contact_id)
    if contact.erased_at is not None:
        return contact
    person = Person.of(
        email=contact.email,
        phone=contact.phone,
        first_name=contact.first_name,
        last_name=contact.last_name,
    )
    for channel, address in (("email", contact.email), ("sms", contact.phone)):
        if address is not None:
            await erased.hide(
                session, org_id=org_id, key=erasure_key, channel=channel, address=address
            )
    contact.email = contact.phone = contact.phone_country = None
    contact.first_name = contact.last_name = None
    contact.locale = contact.timezone = None
    contact.attributes = {}
    contact.email_status = contact.sms_status = "unsubscribed"
    contact.erased_at = utcnow()
    await session.execute(
        delete(ListMember).where(ListMember.org_id == org_id, ListMember.contact_id == contact_id)
    )
    message_ids = list(
        await session.scalars(
            select(Message.id).where(Message.org_id == org_id, Message.contact_id == contact_id)
        )
    )
    for start in range(0, len(message_ids), SCRUB_BATCH):
        await _scrub_messages(
            session, org_id=org_id, ids=message_ids[start : start + SCRUB_BATCH], person=person
        )
    await _scrub_answers(session, org_id=org_id, person=person)
    await session.flush()
    return contact


async def _scrub_messages(
    session: AsyncSession, *, org_id: int, ids: list[int], person: Person
) -> None:
    """One batch of the person's messages and everything kept beside them."""
    reasons = await session.execute(
        select(Message.id, Message.reason).where(Message.id.in_(ids), Message.reason.is_not(None))
    )
    for message_id, reason in reasons:
        await session.execute(
            update(Message).where(Message.id == message_id).values(reason=person.scrub(reason))
        )
    await session.execute(
        update(Message)
        .where(Message.org_id == org_id, Message.id.in_(ids))
        .values(recipient=None, variables=null())
    )
    await session.execute(
        update(SinkMessage)
        .where(SinkMessage.org_id == org_id, SinkMessage.message_id.in_(ids))
        .values(recipient=None, subject=None, content=None)
    )
    await session.execute(delete(Link).where(Link.org_id == org_id, Link.message_id.in_(ids)))
    await session.execute(
        delete(MessageAttempt).where(
            MessageAttempt.org_id == org_id, MessageAttempt.message_id.in_(ids)
        )
    )
    events = (
        await session.execute(
            select(Event.id, Event.data).where(Event.org_id == org_id, Event.message_id.in_(ids))
        )
    ).all()
    for event_id, data in events:
        if data:
            await session.execute(
                update(Event).where(Event.id == event_id).values(data=person.scrub(data) or None)
            )
    if events:
        await _rewrite(
            session,
            WebhookDelivery.payload,
            WebhookDelivery.org_id == org_id,
            WebhookDelivery.event_id.in_([e.id for e in events]),
            person=person,
            extra=WebhookDelivery.last_error,
        )
    await _rewrite(
        session,
        PendingReport.report,
        PendingReport.org_id == org_id,
        or_(
            PendingReport.message_id.in_(ids),
            PendingReport.provider_id.in_(
                select(Message.provider_id).where(
                    Message.id.in_(ids), Message.provider_id.is_not(None)
                )
            ),
        ),
        person=person,
    )


async def _rewrite(
    session: AsyncSession,
    document: Any,
    *conditions: ColumnElement[bool],
    person: Person,
    extra: Any = None,
) -> None:
    """Scrub the JSON `document` column (and the text column `extra`) of matching rows."""
    table = document.class_
    columns = [table.id, document] + ([extra] if extra is not None else [])
    for row in (await session.execute(select(*columns).where(*conditions))).all():
        values = {document.key: person.scrub(row[1])}
        if extra is not None and row[2] is not None:
            values[extra.key] = person.scrub(row[2])
        await session.execute(update(table).where(table.id == row[0]).values(**values))


async def _scrub_answers(session: AsyncSession, *, org_id: int, person: Person) -> None:
    """Stored `Idempotency-Key` answers (kept a day, `idempotency.service.KEEP_FOR`) that
    quote the person: a replay must not give their address back. The database picks the
    answers whose JSON text contains one of the person's identifiers (in any ASCII case,
    as written or JSON-escaped), a page at a time; `Person.scrub` rewrites them."""
    text = func.lower(cast(IdempotencyKey.response, Text))
    spellings = {n.lower() for n in person.needles} | {
        json.dumps(n.lower())[1:-1] for n in person.needles
    }
    if not spellings:
        return
    quoting = or_(*(text.contains(s, autoescape=True) for s in sorted(spellings)))
    after = 0
    while True:
        rows = (
            await session.execute(
                select(IdempotencyKey.id, IdempotencyKey.response)
                .where(IdempotencyKey.org_id == org_id, IdempotencyKey.id > after, quoting)
                .order_by(IdempotencyKey.id)
                .limit(SCRUB_BATCH)
            )
        ).all()
        for key_id, response in rows:
            cleaned = person.scrub(response, shared=True)
            if cleaned != response:
                await session.execute(
                    update(IdempotencyKey)
                    .where(IdempotencyKey.id == key_id)
                    .values(response=cleaned)
                )
        if len(rows) < SCRUB_BATCH:
            return
        after = rows[-1][0]
