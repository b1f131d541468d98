"""What a recipient's signed links do. Tokens carry ids only: the message (and, for
clicks, the link) is looked up server-side, never taken from the request.

Opens (`/o`), clicks (`/l`), plays (`/p`) and unsubscribes (`/u`) are recorded as events
(`tidings.events.service`), which alone set the message's timestamps and move the
broadcast's counters: one source for every counter."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.contacts.models import Contact
from tidings.db.base import utcnow
from tidings.events.service import Hit, NewEvent, record_events, track
from tidings.links.models import Link
from tidings.links.tokens import TokenSigner
from tidings.outbox.models import Message

UNSUBSCRIBE = "unsubscribe"


def unsubscribe_url(signer: TokenSigner, public_url: str, message_id: int) -> str:
    return f"{public_url.rstrip('/')}/u/{signer.sign(UNSUBSCRIBE, message_id)}"


def message_of(signer: TokenSigner, token: str) -> int | None:
    """The message an unsubscribe token was made for, or None if it is not ours."""
    values = signer.verify(UNSUBSCRIBE, token, arity=1)
    return values[0] if values else None


async def unsubscribe(session: AsyncSession, *, message_id: int) -> bool | None:
    """Unsubscribe the message's contact from the message's channel.

    None: no such message. False: already unsubscribed. True: unsubscribed now. Either
    way an `unsubscribed` event is recorded once per message, which moves the
    broadcast's unsubscribed_count once however often the link is posted.
    """
    message = (
        await session.execute(
            select(
                Message.org_id,
                Message.contact_id,
                Message.channel,
                Message.broadcast_id,
                Message.campaign_id,
            ).where(Message.id == message_id)
        )
    ).first()
    if message is None:
        return None
    contact = await session.get(Contact, message.contact_id) if message.contact_id else None
    status = "email_status" if message.channel == "email" else "sms_status"
    if contact is None:
        return False
    done: bool = getattr(contact, status) != "unsubscribed"
    setattr(contact, status, "unsubscribed")
    await record_events(
        session,
        events=[
            NewEvent(
                org_id=message.org_id,
                type="unsubscribed",
                source="tracking",
                external_id=f"unsubscribed:{message_id}",
                message_id=message_id,
                broadcast_id=message.broadcast_id,
                campaign_id=message.campaign_id,
            )
        ],
    )
    await session.flush()
    return done


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


async def follow(session: AsyncSession, *, message_id: int, position: int, hit: Hit) -> str | None:
    """The stored URL to redirect to, recording the click; None for an unknown link.

    Side effects: the link's clicks + 1 (every hit, bots included); a `clicked` event per
    message and link (flagged when a bot's, see `tidings.events.bots`), whose first human
    one per message moves the broadcast's clicked_count by one.
    """
    link = await session.get(Link, (message_id, position))
    if link is None:
        return None
    link.clicks += 1
    if link.first_clicked_at is None:
        link.first_clicked_at = utcnow()
    url = link.url
    await track(
        session,
        message_id=message_id,
        kind="clicked",
        hit=hit,
        key=str(position),
        data={"position": position},
    )
    await session.flush()
    return url


OPEN = "open"
PLAY = "play"


def open_url(signer: TokenSigner, public_url: str, message_id: int) -> str:
    """The message's open pixel, `/o/{token}`."""
    return f"{public_url.rstrip('/')}/o/{signer.sign(OPEN, message_id)}"


def play_url(signer: TokenSigner, public_url: str, message_id: int) -> str:
    """The message's `played` beacon, `/p/{token}`, for media and landing pages."""
    return f"{public_url.rstrip('/')}/p/{signer.sign(PLAY, message_id)}"


def tracked_message(signer: TokenSigner, purpose: str, token: str) -> int | None:
    """The message an open or play token was made for, or None if it is not ours."""
    values = signer.verify(purpose, token, arity=1)
    return values[0] if values else None


async def record_hit(session: AsyncSession, *, message_id: int, kind: str, hit: Hit) -> bool:
    """Record an open or play of the message (flagging bots); False for no such message."""
    return await track(session, message_id=message_id, kind=kind, hit=hit)


@dataclass(frozen=True, slots=True)
class ClickedLink:
    url: str
    clicks: int  # every hit, bots included (the link's own counter)
    messages: int  # messages whose recipient followed it


async def top_links(
    session: AsyncSession, *, org_id: int, broadcast_id: int, limit: int = 10
) -> list[ClickedLink]:
    """The org's broadcast's links by clicks, most first, those never clicked left out
    (read only). Bounded by the broadcast: its messages through
    `ix_messages_broadcast_id_status`, their links by the links' key."""
    messages = select(Message.id).where(
        Message.org_id == org_id, Message.broadcast_id == broadcast_id
    )
    clicks = func.sum(Link.clicks).label("clicks")
    rows = await session.execute(
        select(Link.url, clicks, func.count())
        .where(Link.org_id == org_id, Link.message_id.in_(messages), Link.clicks > 0)
        .group_by(Link.url)
        .order_by(clicks.desc(), Link.url)
        .limit(limit)
    )
    return [ClickedLink(url, int(n), int(m)) for url, n, m in rows]
