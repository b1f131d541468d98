"""The dispatcher: start due broadcasts, claim due messages, render, send, record.

    tick() = _prepare() then _complete():
    _prepare():  due broadcasts ──start_due──▶ expanded, SENDING
                 expired leases ──reap──▶ queued again
                 claim(batch) ──▶ skip the suppressed ──▶ render each (renderer.py)
    _complete(): send through the connections (deliverer.py)
                 ──▶ record(outcomes) in one transaction ──▶ finish broadcasts

`run()` overlaps the two: batch N+1 is claimed and rendered while batch N is sent and
recorded (rendering runs in a thread, `RENDER_SLICE` messages at a time, so batch N's
connections keep going), so the process renders while the provider works instead of
waiting for it. Claims commit at once (the lease protects the rows); outcomes are written
a batch at a time; a worker that dies mid-batch leaves leased rows that `reap` queues
again, so a message is lost never and sent twice at most when it was in flight (two
batches, when it dies with one on the wire and the next rendered).

Each batch's outcome is logged at DEBUG, one line with how long each half took.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from tidings import metrics
from tidings.broadcasts.service import due_broadcasts, start_due
from tidings.channels.provider import Builder
from tidings.channels.registry import build_channel
from tidings.content.render import Renderer
from tidings.db.availability import unavailable
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.dispatcher import queries
from tidings.dispatcher.deliverer import Deliverer
from tidings.dispatcher.limits import ConnectionLimiter
from tidings.dispatcher.renderer import MessageRenderer, Rendered
from tidings.dispatcher.retry import RetryPolicy
from tidings.links.tokens import TokenSigner
from tidings.outbox.outcomes import Outcome
from tidings.outbox.queue import Claimed
from tidings.outbox.status import MessageStatus

log = logging.getLogger(__name__)
_T = TypeVar("_T")

RECORD_RETRY_SECONDS = (0.5, 5.0)
"""The record step's first wait and longest wait while the database cannot be reached."""


@dataclass(frozen=True, slots=True)
class DispatcherConfig:
    batch_size: int = 500
    lease: timedelta = timedelta(minutes=5)
    idle_sleep: float = 0.5
    public_url: str = "http://127.0.0.1:8000"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # Keys the hash under which an erased person's suppression is kept
    # (`suppressions.erased`); None (tests that need no erasure): hashed rows are not seen.
    erasure_key: bytes | None = None


@dataclass(slots=True)
class _Batch:
    """What one round found: `found` counts broadcasts started, leases reaped and
    messages claimed; `rendered` is None when nothing was claimed. `seconds`: how long
    preparing it took."""

    found: int
    lease_until: datetime
    claimed: list[Claimed]
    rendered: Rendered | None
    seconds: float = 0.0


class Dispatcher:
    """One worker. `tick()` does one round; `run()` ticks until stopped."""

    def __init__(
        self,
        db: Database,
        *,
        renderer: Renderer,
        config: DispatcherConfig | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        signer: TokenSigner | None = None,
        channels: Builder = build_channel,
    ) -> None:
        """`channels` builds a connection's live channel (the registry's providers; a test
        may hand in `tidings.testing.RecordingChannel`)."""
        self.db = db
        self.renderer = renderer
        self.config = config or DispatcherConfig()
        self.clock = clock
        self.rng = rng or random.Random()  # noqa: S311 (jitter, not security)
        # Without the configured key (tests, one-off runs) links verify in this process only.
        self.signer = signer or TokenSigner(secrets.token_bytes(32))
        holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.limiter = ConnectionLimiter(db, holder=holder, clock=lambda: self.clock().timestamp())
        self.messages = MessageRenderer(
            db, renderer=renderer, signer=self.signer, public_url=self.config.public_url,
            clock=clock, max_attempts=self.config.retry.max_attempts,
        )  # fmt: skip
        self.deliverer = Deliverer(
            db, limiter=self.limiter, retry=self.config.retry,
            hold_seconds=self.config.lease.total_seconds(), clock=clock, rng=self.rng,
            channels=channels,
        )  # fmt: skip

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until `stop` is set; sleep briefly when there was nothing to do."""
        try:
            await self._run(stop)
        finally:
            await self.close()

    async def close(self) -> None:
        """Close every provider connection this worker opened."""
        await self.deliverer.close()

    async def _run(self, stop: asyncio.Event) -> None:
        # Two batches overlap: while one is on the wire and being recorded, the next is
        # claimed and rendered, so this process renders while the provider works.
        sending: asyncio.Task[int | None] | None = None
        try:
            while not stop.is_set():
                batch = await self._guarded(self._prepare(), "claiming a batch")
                busy = (await sending or 0) if sending is not None else 0
                sending = None
                if batch is not None and batch.claimed:
                    sending = asyncio.create_task(self._guarded(self._complete(batch), "sending"))
                    continue
                if batch is not None:
                    busy += await self._guarded(self._complete(batch), "sending") or 0
                if not busy:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=self.config.idle_sleep)
        finally:
            if sending is not None:  # the batch in hand is sent and recorded
                await sending

    async def _guarded(self, step: Awaitable[_T], what: str) -> _T | None:
        # A failed step is logged and the next round tries again; its messages wait for
        # their lease to run out. The database being unreachable is not a bug: one line,
        # and a pause, so that an outage is not a hot loop of tracebacks.
        try:
            return await step
        except Exception as exc:
            if unavailable(exc):
                log.warning("dispatcher %s: the database is unavailable (%r)", what, exc)
                await asyncio.sleep(RECORD_RETRY_SECONDS[0])
            else:
                log.exception("dispatcher failed %s; retrying", what)
            return None

    async def drain(self, max_ticks: int = 10_000, *, horizon: float = 5.0) -> None:
        """Tick until nothing is left to do now or within `horizon` seconds (deferred by a
        connection's limits), waiting for it in real time (for tests and one-shot runs)."""
        for _ in range(max_ticks):
            if await self.tick():
                continue
            async with self.db.session() as session:
                due = await queries.next_due(session)
            before = self.clock()
            wait = (due - before).total_seconds() if due is not None else None
            if wait is None or wait > horizon:
                return
            await asyncio.sleep(max(wait, 0.0) + 0.01)
            if self.clock() == before:  # an injected clock that only its owner moves
                return
        raise RuntimeError("dispatcher did not drain")

    async def tick(self) -> int:
        """One round; returns how much work it found (0 = idle)."""
        return await self._complete(await self._prepare())

    async def _prepare(self) -> _Batch:
        """Start due broadcasts, queue expired leases again, claim and render a batch."""
        started_at = time.perf_counter()
        now = self.clock()
        started = await self._start_due_broadcasts(now)
        lease_until = now + self.config.lease
        async with self.db.transaction() as session:  # the claim step
            reaped = await queries.reap(session, now=now)
            if reaped:
                metrics.LEASES_REAPED.inc(reaped)
            claimed = await queries.claim(
                session, now=now, lease_until=lease_until, limit=self.config.batch_size
            )
            # Checked again at the last moment: an address suppressed since the message
            # was made (a bounce, a complaint, a STOP mid-broadcast) is skipped, not sent.
            claimed = await queries.skip_suppressed(
                session, claimed=claimed, now=now, erasure_key=self.config.erasure_key
            )
        rendered = await self.messages.render_batch(claimed) if claimed else None
        found = started + reaped + len(claimed)
        return _Batch(found, lease_until, claimed, rendered, time.perf_counter() - started_at)

    async def _complete(self, batch: _Batch) -> int:
        """Send a prepared batch, record its outcomes, finish broadcasts; returns the work
        done (0 = idle)."""
        started_at = time.perf_counter()
        outcomes: list[Outcome] = []
        if batch.rendered is not None:
            outcomes = await self.deliverer.send(batch.rendered)
            await self._record(batch, outcomes)
        async with self.db.transaction() as session:  # the finish step
            finished = await queries.finish_broadcasts(session, now=self.clock())
        if (batch.found or finished) and log.isEnabledFor(logging.DEBUG):
            log.debug(
                "batch: %d claimed (%s); %d broadcasts started or leases reaped, "
                "%d broadcasts finished; prepared in %.3f s, sent and recorded in %.3f s",
                len(batch.claimed),
                _tally(outcomes),
                batch.found - len(batch.claimed),
                finished,
                batch.seconds,
                time.perf_counter() - started_at,
            )
        return batch.found + finished

    async def _record(self, batch: _Batch, outcomes: list[Outcome]) -> None:
        """The record step, retried while the database cannot be reached (a restart): the
        outcomes stay in memory and are written once it is back, so what is known to be
        sent is not sent again. Given up when the batch's lease has run out meanwhile
        (another worker may have claimed it again: its rows then change nothing)."""
        assert batch.rendered is not None
        deadline = time.monotonic() + self.config.lease.total_seconds()
        wait = RECORD_RETRY_SECONDS[0]
        while True:
            try:
                async with self.db.transaction() as session:
                    await queries.record(
                        session,
                        outcomes=outcomes,
                        lease_until=batch.lease_until,
                        now=self.clock(),
                        links=batch.rendered.links,
                        charged={c.id: c for c in batch.claimed if c.cost},
                    )
                return
            except Exception as exc:
                if not unavailable(exc) or time.monotonic() + wait > deadline:
                    raise
                metrics.OUTCOME_WRITE_RETRIES.inc()
                log.warning(
                    "outcomes of %d messages kept: the database is unavailable (%r); "
                    "writing them again in %.1f s", len(outcomes), exc, wait,
                )  # fmt: skip
                await asyncio.sleep(wait)
                wait = min(wait * 2, RECORD_RETRY_SECONDS[1])

    async def _start_due_broadcasts(self, now: datetime) -> int:
        async with self.db.transaction(write=False) as session:
            due = await due_broadcasts(session, now=now)
        started = 0
        for broadcast_id in due:  # one transaction each
            async with self.db.transaction() as session:
                started += await start_due(session, broadcast_id=broadcast_id, now=now)
        return started


def _tally(outcomes: Sequence[Outcome]) -> str:
    """The outcomes counted by kind, e.g. `3 sent, 1 failed, 2 retried, 5 deferred`."""
    counts = Counter(
        "deferred" if o.deferred else "retried" if o.status is MessageStatus.QUEUED else o.status
        for o in outcomes
    )
    order = ("sent", "failed", "retried", "deferred")
    return ", ".join(f"{counts[kind]} {kind}" for kind in order if counts[kind]) or "none sent"
