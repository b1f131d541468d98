"""An org's recent activity, for the console's overview: per channel, the messages
created since a moment and what became of them, and the reasons of those that failed
or were skipped. Read only, scoped by org; both queries read the range of
`ix_messages_org_id_created_at` (migration 0021) since the moment, never the org's
whole history.

`sent` counts the messages handed to a provider (sent, delivered, bounced, complained);
`opened` and `clicked` the messages with a human open or click. Rates are fractions
(0–1, None when the denominator is 0): delivery, failure = / (sent + failed); open,
click = / sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Integer, case, func, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.outbox.models import Message
from tidings.outbox.status import HANDED_OVER, MessageStatus

MS = MessageStatus


@dataclass(frozen=True, slots=True)
class ChannelActivity:
    channel: str
    messages: int
    sent: int
    delivered: int
    failed: int
    skipped: int
    opened: int
    clicked: int

    @staticmethod
    def _rate(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    @property
    def delivery_rate(self) -> float | None:
        return self._rate(self.delivered, self.sent)

    @property
    def failure_rate(self) -> float | None:
        return self._rate(self.failed, self.sent + self.failed)

    @property
    def open_rate(self) -> float | None:
        return self._rate(self.opened, self.sent)

    @property
    def click_rate(self) -> float | None:
        return self._rate(self.clicked, self.sent)


@dataclass(frozen=True, slots=True)
class FailureReason:
    status: str
    reason: str
    count: int


def _count(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(sql_cast(case((condition, 1), else_=0), Integer)), 0)


async def by_channel(
    session: AsyncSession, *, org_id: int, since: datetime
) -> list[ChannelActivity]:
    """Messages created since `since`, per channel (channels with none left out)."""
    rows = await session.execute(
        select(
            Message.channel,
            func.count(),
            _count(Message.status.in_([s.value for s in HANDED_OVER])),
            _count(Message.delivered_at.is_not(None)),
            _count(Message.status == MS.FAILED.value),
            _count(Message.status == MS.SKIPPED.value),
            _count(Message.opened_at.is_not(None)),
            _count(Message.clicked_at.is_not(None)),
        )
        .where(Message.org_id == org_id, Message.created_at >= since)
        .group_by(Message.channel)
        .order_by(Message.channel)
    )
    return [ChannelActivity(str(row[0]), *(int(n) for n in row[1:])) for row in rows]


async def failure_reasons(
    session: AsyncSession, *, org_id: int, since: datetime, limit: int = 10
) -> list[FailureReason]:
    """Failed and skipped messages created since `since`, counted by reason, most first."""
    count = func.count().label("n")
    rows = await session.execute(
        select(Message.status, Message.reason, count)
        .where(
            Message.org_id == org_id,
            Message.created_at >= since,
            Message.status.in_([MS.FAILED.value, MS.SKIPPED.value]),
        )
        .group_by(Message.status, Message.reason)
        .order_by(count.desc(), Message.status, Message.reason)
        .limit(limit)
    )
    return [FailureReason(s, r or "(none given)", int(n)) for s, r, n in rows]
