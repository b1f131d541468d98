"""Cross-channel fallback: a recipient whose message fails, or hard-bounces soon after
it was sent, gets the message of its campaign's fallback campaign (the other channel)
instead — once, recorded on both messages, counted on the broadcast.

    record step (a message ends FAILED) ──┐
    bounces (a DSN: hard bounce, within  ─┼─▶ fall_back(message ids)
             TIDINGS_FALLBACK_BOUNCE_WINDOW_SECONDS of sent_at)
        ──▶ those whose frozen campaign has a fallback, not fallen back yet, not a
            fallback themselves (one SELECT; nothing more when none)
        ──▶ each: the fallback campaign's message to the same contact (`outbox.create.
            add_one`: the other channel's address and skip rules), its credit reserved,
            in a savepoint: a balance that cannot cover it costs only that fallback
        ──▶ fallback_of / fell_back_to set, broadcasts' fallback_count + the queued ones

The fallback message has no broadcast (a broadcast has one message per contact: the
unique key the expansion relies on); it points at its original through `fallback_of`,
which holds the broadcast. Query helper: the caller's transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.broadcasts.counters import add_to_counters
from tidings.campaigns.models import CampaignVersion
from tidings.contacts.models import Contact
from tidings.credits.service import charge_messages
from tidings.errors import InsufficientCredit
from tidings.orgs.models import Org
from tidings.outbox import create as outbox
from tidings.outbox.models import Message
from tidings.outbox.status import MessageStatus

log = logging.getLogger(__name__)


async def fall_back(
    session: AsyncSession,
    *,
    message_ids: Sequence[int],
    now: datetime,
    sent_since: datetime | None = None,
) -> int:
    """Side effects (see the module): the fallback message of each of these messages
    that may fall back (given `sent_since`: only those sent since then), its credit,
    both messages' links, the broadcasts' fallback_count. Returns how many were made."""
    if not message_ids:
        return 0
    query = (
        select(Message, CampaignVersion.fallback_version_id)
        .join(CampaignVersion, CampaignVersion.id == Message.campaign_version_id)
        .where(
            Message.id.in_(sorted(set(message_ids))),
            CampaignVersion.fallback_version_id.is_not(None),
            Message.fell_back_to.is_(None),
            Message.fallback_of.is_(None),
            Message.contact_id.is_not(None),
        )
        .order_by(Message.id)
    )
    if sent_since is not None:
        query = query.where(Message.sent_at >= sent_since)
    found = (await session.execute(query)).all()
    deltas: dict[int, dict[str, int]] = {}
    made = 0
    for original, fallback_version_id in found:
        version = await session.get(CampaignVersion, fallback_version_id)
        contact = await session.get(Contact, original.contact_id)
        org = await session.get(Org, original.org_id)
        assert version is not None  # campaign versions, contacts and orgs are never deleted
        assert contact is not None
        assert org is not None
        try:
            async with session.begin_nested():
                message = await outbox.add_one(
                    session,
                    batch=outbox.Batch(original.org_id, None, version, original.is_test, now),
                    contact=contact,
                    variables=original.variables,
                    sms_countries=org.sms_countries,
                )
                message.fallback_of = original.id
                original.fell_back_to = message.id
                await session.flush()
                if message.status == MessageStatus.QUEUED:
                    await charge_messages(
                        session,
                        org_id=original.org_id,
                        channel=version.channel,
                        where=Message.id == message.id,
                        reference=f"message:{message.id}",
                    )
        except InsufficientCredit:
            log.warning(
                "message %d: no fallback on %s, the balance cannot cover it",
                original.id, version.channel,
                extra={"message_id": original.id, "org_id": original.org_id},
            )  # fmt: skip
            continue
        made += 1
        if original.broadcast_id is not None and message.status == MessageStatus.QUEUED:
            counters = deltas.setdefault(original.broadcast_id, {"fallback_count": 0})
            counters["fallback_count"] += 1
    await add_to_counters(session, deltas=deltas)
    return made
