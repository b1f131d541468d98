"""What a broadcast's report page shows beyond its counters (`events.stats`) and its
top links (`links.service.top_links`): its messages that did not go out, by outcome and
reason, what became of its fallback messages on the other channel, and exactly what it
sent, the campaign and template version it froze when it was
accepted. Read only, scoped by org: another org's broadcast is not found.

Outcomes are counted through `ix_messages_broadcast_id_status` (a range per status).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from tidings.broadcasts.service import get_broadcast
from tidings.campaigns.models import CampaignVersion
from tidings.outbox.models import Message
from tidings.outbox.status import HANDED_OVER, UNFINISHED, MessageStatus
from tidings.templates.models import TemplateVersion

NOT_SENT = (MessageStatus.FAILED, MessageStatus.SKIPPED, MessageStatus.CANCELLED)


@dataclass(frozen=True, slots=True)
class Reason:
    status: str
    reason: str
    count: int


@dataclass(frozen=True, slots=True)
class Content:
    campaign: CampaignVersion
    template: TemplateVersion


async def reasons(session: AsyncSession, *, org_id: int, broadcast_id: int) -> list[Reason]:
    """Failed, skipped and cancelled messages counted by status and reason, most first."""
    await get_broadcast(session, org_id=org_id, broadcast_id=broadcast_id)
    count = func.count().label("n")
    rows = await session.execute(
        select(Message.status, Message.reason, count)
        .where(
            Message.broadcast_id == broadcast_id,
            Message.status.in_([s.value for s in NOT_SENT]),
        )
        .group_by(Message.status, Message.reason)
        .order_by(count.desc(), Message.status, Message.reason)
    )
    return [Reason(status, reason or "(none given)", int(n)) for status, reason, n in rows]


@dataclass(frozen=True, slots=True)
class Fallbacks:
    """What became of the fallback messages made instead of some of the broadcast's
    (`fallback_count` of them, on the other channel): they belong to no broadcast, so
    its own counters leave them out."""

    sent: int = 0  # handed over: sent, and delivered, bounced or complained since
    failed: int = 0
    skipped: int = 0  # skipped or cancelled
    waiting: int = 0  # queued, held or being sent: the broadcast is not SENT yet

    @property
    def total(self) -> int:
        return self.sent + self.failed + self.skipped + self.waiting


async def fallbacks(session: AsyncSession, *, org_id: int, broadcast_id: int) -> Fallbacks:
    """The broadcast's fallback messages counted by outcome (read only): reached through
    the `fell_back_to` of its messages that fell back (the partial index
    `ix_messages_broadcast_id_fell_back_to`, only those), each by its key."""
    await get_broadcast(session, org_id=org_id, broadcast_id=broadcast_id)
    preferred = aliased(Message)
    rows = await session.execute(
        select(Message.status, func.count())
        .join(preferred, preferred.fell_back_to == Message.id)
        .where(
            preferred.broadcast_id == broadcast_id,
            preferred.fell_back_to.is_not(None),
            Message.org_id == org_id,
        )
        .group_by(Message.status)
    )
    counts = {"sent": 0, "failed": 0, "skipped": 0, "waiting": 0}
    for status, n in rows:
        found = MessageStatus(status)
        if found in HANDED_OVER:
            counts["sent"] += int(n)
        elif found is MessageStatus.FAILED:
            counts["failed"] += int(n)
        elif found in UNFINISHED:
            counts["waiting"] += int(n)
        else:
            counts["skipped"] += int(n)
    return Fallbacks(**counts)


async def content_sent(session: AsyncSession, *, org_id: int, broadcast_id: int) -> Content | None:
    """The campaign version the broadcast froze and its template version; None for a
    draft that has none yet."""
    broadcast = await get_broadcast(session, org_id=org_id, broadcast_id=broadcast_id)
    if broadcast.campaign_version_id is None:
        return None
    row = (
        await session.execute(
            select(CampaignVersion, TemplateVersion)
            .join(TemplateVersion, TemplateVersion.id == CampaignVersion.template_version_id)
            .where(
                CampaignVersion.org_id == org_id,
                CampaignVersion.id == broadcast.campaign_version_id,
            )
        )
    ).first()
    return None if row is None else Content(row[0], row[1])
