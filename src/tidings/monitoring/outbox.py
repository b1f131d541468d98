"""The outbox as `/metrics` shows it: messages by status and channel, and how late the
oldest due message is — read from the database at most once every `seconds`, however
often and however many scrapers ask (concurrent scrapes share one read).

    tidings_messages{status,channel}             every status: queued, sending, sent, …
    tidings_oldest_due_seconds                   since the oldest queued message became due
    tidings_connection_state{connection,state}   each connection's circuit breaker: 1 for
                                                 its state, 0 for the other two

Counting every message by status scans the outbox (a million rows: a fraction of a
second on PostgreSQL); the cache keeps that to once per `seconds` per API process. The
values are read by the process a scrape reaches, not shared between processes: any
process gives the same answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tidings.connections import health
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.outbox import queue

READ_EVERY_SECONDS = 10.0
"""The longest the outbox's figures are reused before the database is read again."""


@dataclass(frozen=True, slots=True, eq=False)  # hashed by identity, as a registry does
class OutboxFigures(Collector):
    """One read of the outbox, as Prometheus gauges."""

    counts: dict[tuple[str, str], int] = field(default_factory=dict)
    oldest_due_seconds: float = 0.0
    breakers: dict[int, health.BreakerState] = field(default_factory=dict)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        messages = GaugeMetricFamily(
            "tidings_messages",
            "Messages in the outbox, by status and channel (read at most every "
            f"{READ_EVERY_SECONDS:g} s)",
            labels=["status", "channel"],
        )
        for (status, channel), count in sorted(self.counts.items()):
            messages.add_metric([status, channel], count)
        yield messages
        yield GaugeMetricFamily(
            "tidings_oldest_due_seconds",
            "Seconds since the oldest queued message became due (0 when none is late)",
            value=self.oldest_due_seconds,
        )
        states = GaugeMetricFamily(
            "tidings_connection_state",
            "Each connection's circuit breaker: 1 for its current state (closed, open, "
            "half_open), 0 for the others (connections that have sent)",
            labels=["connection", "state"],
        )
        for connection_id, state in sorted(self.breakers.items()):
            for each in health.BreakerState:
                states.add_metric([str(connection_id), each.value], float(each is state))
        yield states


class OutboxGauges:
    """The outbox's figures, read again once they are `seconds` old."""

    def __init__(
        self, *, seconds: float = READ_EVERY_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self.clock = clock
        self.reads = 0  # reads of the database so far
        self._figures: OutboxFigures | None = None
        self._read_at = 0.0
        self._lock = asyncio.Lock()

    async def figures(self, db: Database) -> OutboxFigures:
        async with self._lock:  # a scrape arriving during a read waits for it
            if self._figures is None or self.clock() - self._read_at >= self.seconds:
                self._figures = await _read(db)
                self._read_at = self.clock()
                self.reads += 1
            return self._figures


async def _read(db: Database) -> OutboxFigures:
    now = utcnow()
    async with db.session() as session:
        counts = await queue.status_counts(session)
        oldest = await queue.oldest_due(session, now=now)
        breakers = await health.breaker_states(session, now=now)
    late = (now - oldest).total_seconds() if oldest is not None else 0.0
    return OutboxFigures(counts, max(late, 0.0), breakers)
