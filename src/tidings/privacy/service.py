"""A person's data, wherever Tidings keeps it: erasing it (GDPR art. 17).

The contact row is personal data's home, but copies live beside the outbox (a message's
address and variables) and in the sink's record of what was sent; erasing reaches them
all. This package sits above contacts, lists and the outbox, which it reads and writes;
none of them imports it.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.channels.models import SinkMessage
from tidings.contacts.models import Contact
from tidings.contacts.service import get_contact
from tidings.db.base import utcnow
from tidings.lists.models import ListMember
from tidings.outbox.models import Message


async def erase_contact(session: AsyncSession, *, org_id: int, contact_id: int) -> Contact:
    """Erase a contact's personal data (GDPR art. 17), keeping a row without it.

    Email, phone, names, attributes, locale and time zone are emptied, list memberships
    removed, and the contact is marked unsubscribed so that nothing is sent to the row.
    Its message history keeps only non-personal fields: each message's address and
    variables are emptied, and what the sink recorded of them (address, subject, content)
    too; statuses, timestamps and counts stay. Idempotent.
    """
    contact = await get_contact(session, org_id=org_id, contact_id=contact_id)
    if contact.erased_at is None:
        contact.email = contact.phone = contact.phone_country = None
        contact.first_name = contact.last_name = None
        contact.locale = contact.timezone = None
        contact.attributes = {}
        contact.email_status = contact.sms_status = "unsubscribed"
        contact.erased_at = utcnow()
        await session.execute(
            delete(ListMember).where(
                ListMember.org_id == org_id, ListMember.contact_id == contact_id
            )
        )
        messages = select(Message.id).where(
            Message.org_id == org_id, Message.contact_id == contact_id
        )
        await session.execute(
            update(SinkMessage)
            .where(SinkMessage.org_id == org_id, SinkMessage.message_id.in_(messages))
            .values(recipient=None, subject=None, content=None)
        )
        await session.execute(
            update(Message)
            .where(Message.org_id == org_id, Message.contact_id == contact_id)
            .values(recipient=None, variables=None)
        )
        await session.flush()
    return contact
