"""Stats of a broadcast or a campaign: its counters, rates, and events over time.

Counters are read from the broadcast rows (kept by `record_events` and the dispatcher),
so reading them costs one row per broadcast. `bounced` is the number of messages with a
human bounce event (an index range on events by broadcast and type). Rates are fractions
(0–1, null when the denominator is 0):

| rate | numerator / denominator |
|---|---|
| delivery | delivered / sent |
| bounce | bounced / sent |
| open, click, complaint, unsubscribe | opened, clicked, … / accepted (sent − bounced) |

`series` counts human events per bucket of `interval` (minute or hour, UTC) by type:
one bucket per period that had any, the dispatcher's `sent` and `failed` events included
(the `sent` and `failed` counters come from the broadcast rows, not from these events).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.broadcasts.models import Broadcast
from tidings.campaigns.models import Campaign
from tidings.campaigns.service import PUBLIC
from tidings.db.dialect import dialect_name, time_bucket
from tidings.db.owned import get_owned
from tidings.events.models import Event

Interval = Literal["minute", "hour"]
COUNTED = ("recipients", "sent", "failed", "delivered", "opened", "clicked", "played",
           "complained", "unsubscribed")  # fmt: skip


async def broadcast_stats(
    session: AsyncSession, *, org_id: int, broadcast_id: int, interval: Interval
) -> dict[str, Any]:
    """Stats of one of the org's broadcasts (read only); NotFound for another's."""
    broadcast = await get_owned(
        session, Broadcast, org_id=org_id, ident=broadcast_id, what="broadcast"
    )
    ids = select(Broadcast.id).where(Broadcast.id == broadcast.id)
    stats = await _stats(session, [broadcast], ids, interval)
    return {"broadcast_id": broadcast.id, **stats}


async def campaign_stats(
    session: AsyncSession, *, org_id: int, campaign_id: int, interval: Interval
) -> dict[str, Any]:
    """Stats over every broadcast of one of the org's campaigns, deleted ones too (read
    only); NotFound for another org's and a hidden one."""
    campaign = await get_owned(
        session, Campaign, org_id=org_id, ident=campaign_id, what="campaign", where=PUBLIC
    )
    ids = select(Broadcast.id).where(
        Broadcast.org_id == org_id, Broadcast.campaign_id == campaign.id
    )
    broadcasts = list(await session.scalars(select(Broadcast).where(Broadcast.id.in_(ids))))
    stats = await _stats(session, broadcasts, ids, interval)
    return {"campaign_id": campaign.id, "broadcasts": len(broadcasts), **stats}


async def _stats(
    session: AsyncSession,
    broadcasts: list[Broadcast],
    ids: Select[Any],
    interval: Interval,
) -> dict[str, Any]:
    counters = {name: sum(getattr(b, f"{name}_count") for b in broadcasts) for name in COUNTED}
    counters["bounced"] = int(
        await session.scalar(
            select(func.count(func.distinct(Event.message_id))).where(
                Event.broadcast_id.in_(ids), Event.type == "bounced", Event.is_bot.is_(False)
            )
        )
        or 0
    )
    sent = counters["sent"]
    accepted = sent - counters["bounced"]
    rates = {
        "delivery": _rate(counters["delivered"], sent),
        "bounce": _rate(counters["bounced"], sent),
        "open": _rate(counters["opened"], accepted),
        "click": _rate(counters["clicked"], accepted),
        "complaint": _rate(counters["complained"], accepted),
        "unsubscribe": _rate(counters["unsubscribed"], accepted),
    }
    return {
        "counters": counters,
        "rates": rates,
        "denominators": {"sent": sent, "accepted": accepted},
        "interval": interval,
        "series": await _series(session, ids, interval),
    }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole > 0 else None


async def _series(
    session: AsyncSession, ids: Select[Any], interval: Interval
) -> list[dict[str, Any]]:
    bucket = time_bucket(Event.occurred_at, interval, dialect_name(session))
    rows = await session.execute(
        select(bucket.label("at"), Event.type, func.count())
        .where(Event.broadcast_id.in_(ids), Event.is_bot.is_(False))
        .group_by(bucket, Event.type)
        .order_by(bucket)
    )
    points: dict[datetime, dict[str, int]] = {}
    for at, kind, count in rows:
        points.setdefault(_as_utc(at), {})[kind] = int(count)
    return [{"at": at, "counts": counts} for at, counts in sorted(points.items())]


def _as_utc(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
