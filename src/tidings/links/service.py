"""What a recipient's signed links do. Tokens carry ids only: the message (and, for
clicks, the link) is looked up server-side, never taken from the request."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.broadcasts.models import Broadcast
from tidings.contacts.models import Contact
from tidings.db.base import utcnow
from tidings.db.engine import begin_write
from tidings.links.models import Link
from tidings.links.tokens import TokenSigner
from tidings.messages.models import Message

UNSUBSCRIBE = "unsubscribe"


def unsubscribe_url(signer: TokenSigner, public_url: str, message_id: int) -> str:
    return f"{public_url.rstrip('/')}/u/{signer.sign(UNSUBSCRIBE, message_id)}"


def message_of(signer: TokenSigner, token: str) -> int | None:
    """The message an unsubscribe token was made for, or None if it is not ours."""
    values = signer.verify(UNSUBSCRIBE, token, arity=1)
    return values[0] if values else None


async def unsubscribe(session: AsyncSession, *, message_id: int) -> bool | None:
    """Unsubscribe the message's contact from the message's channel.

    None: no such message. False: already unsubscribed (idempotent: counted once).
    True: unsubscribed now, and the broadcast's unsubscribed_count moved by one.
    """
    await begin_write(session)
    message = (
        await session.execute(
            select(Message.contact_id, Message.channel, Message.broadcast_id).where(
                Message.id == message_id
            )
        )
    ).first()
    if message is None:
        await session.rollback()
        return None
    contact = await session.get(Contact, message.contact_id) if message.contact_id else None
    status = "email_status" if message.channel == "email" else "sms_status"
    if contact is None or getattr(contact, status) == "unsubscribed":
        await session.rollback()
        return False
    setattr(contact, status, "unsubscribed")
    if message.broadcast_id is not None:
        await session.execute(
            update(Broadcast)
            .where(Broadcast.id == message.broadcast_id)
            .values(unsubscribed_count=Broadcast.unsubscribed_count + 1)
        )
    await session.commit()
    return True


CLICK = "click"
INVITE_POSITION = 32_767
"""The link position of a message's invite link (`{{ invite_link }}`): the largest a
position can be, far past any link that click tracking numbers from 0."""


def click_url(signer: TokenSigner, public_url: str, message_id: int, position: int) -> str:
    return f"{public_url.rstrip('/')}/l/{signer.sign(CLICK, message_id, position)}"


def link_of(signer: TokenSigner, token: str) -> tuple[int, int] | None:
    """(message id, link position) a click token was made for, or None if not ours."""
    values = signer.verify(CLICK, token, arity=2)
    return (values[0], values[1]) if values else None


async def follow(session: AsyncSession, *, message_id: int, position: int) -> str | None:
    """The stored URL to redirect to, counting the click; None for an unknown link.

    Side effects: the link's clicks + 1; the message's first click of any of its links
    moves the broadcast's clicked_count by one (a recipient is counted once).
    """
    await begin_write(session)
    link = await session.get(Link, (message_id, position))
    if link is None:
        await session.rollback()
        return None
    clicked_before = await session.scalar(
        select(Link.position)
        .where(Link.message_id == message_id, Link.first_clicked_at.is_not(None))
        .limit(1)
    )
    now = utcnow()
    link.clicks += 1
    if link.first_clicked_at is None:
        link.first_clicked_at = now
    if clicked_before is None:
        broadcast_id = await session.scalar(
            select(Message.broadcast_id).where(Message.id == message_id)
        )
        if broadcast_id is not None:
            await session.execute(
                update(Broadcast)
                .where(Broadcast.id == broadcast_id)
                .values(clicked_count=Broadcast.clicked_count + 1)
            )
    url = link.url
    await session.commit()
    return url
