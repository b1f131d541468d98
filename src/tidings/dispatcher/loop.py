"""The dispatcher: start due broadcasts, claim due messages, render, send, record.

    run(stop):   join `workers` ──▶ heartbeat task beside the loop (heartbeat.py)
                 ──▶ tick until stopped ──▶ leave (what it could not finish goes back)
    tick() = _prepare() then _complete():
    _prepare():  due broadcasts ──start_due──▶ expanded, SENDING
                 expired leases ──reap──▶ queued again
                 claim(batch) for this worker ──▶ skip the suppressed ──▶ render each
                 ──▶ settle each charged SMS's segments (its final text's, not the
                 estimate reserved at acceptance; one that the balance cannot cover
                 fails alone, "insufficient credit")
    _complete(): send through the connections (deliverer.py), each outcome to the
                 batch's recorder (recorder.py) as it is known ──▶ written in small steps
                 ──▶ finish broadcasts

`run()` overlaps the two: batch N+1 is claimed and rendered while batch N is sent and
recorded (rendering runs in a thread, `RENDER_SLICE` messages at a time, so batch N's
connections keep going), so the process renders while the provider works instead of
waiting for it. Claims commit at once (the worker's heartbeat and the lease protect the
rows); outcomes are written every `record_every` outcomes or `record_seconds`, whichever
comes first. A worker that dies mid-batch leaves claimed rows that any live worker queues
again once its heartbeat is `dead_after` seconds old, so a message is lost never and sent
twice at most when it was answered by the provider but not yet written down.

Every step survives the database being away (a restart): a failed step is logged in one
line and tried again after a pause; outcomes are kept and written once it is back.

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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from tidings import metrics
from tidings.broadcasts.service import due_broadcasts, start_due
from tidings.channels.base import (
    PermanentSendError,
    SendError,
    TransientSendError,
    internal_error,
)
from tidings.channels.provider import Builder
from tidings.channels.registry import build_channel
from tidings.connections.health import BreakerPolicy
from tidings.content.render import Renderer
from tidings.credits import service as credits
from tidings.db.availability import unavailable
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.dispatcher import queries
from tidings.dispatcher.deliverer import Deliverer
from tidings.dispatcher.heartbeat import Heartbeat
from tidings.dispatcher.limits import ConnectionLimiter
from tidings.dispatcher.recorder import RECORD_RETRY_SECONDS, Recorder, Write, tally
from tidings.dispatcher.renderer import Link, MessageRenderer, Rendered, unrendered
from tidings.dispatcher.retry import RetryPolicy
from tidings.links.tokens import TokenSigner
from tidings.outbox.outcomes import Outcome
from tidings.outbox.queue import Claimed

log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class DispatcherConfig:
    batch_size: int = 500
    lease: timedelta = timedelta(minutes=5)
    idle_sleep: float = 0.5
    public_url: str = "http://127.0.0.1:8000"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    heartbeat: float = 2.0  # seconds between heartbeats
    dead_after: float = 10.0  # a worker silent this long is dead
    record_every: int = 100  # outcomes written at once, at most
    record_seconds: float = 0.5  # the longest an outcome waits to be written
    # Keys the hash under which an erased person's suppression is kept
    # (`suppressions.erased`); None (tests that need no erasure): hashed rows are not seen.
    erasure_key: bytes | None = None
    # When a connection's breaker opens, and for how long (`connections.health`).
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)


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
        self.heartbeat = Heartbeat(
            db, limiter=self.limiter, interval=self.config.heartbeat,
            dead_after=self.config.dead_after, clock=lambda: self.clock().timestamp(), wall=clock,
        )  # fmt: skip
        self.messages = MessageRenderer(
            db, renderer=renderer, signer=self.signer, public_url=self.config.public_url,
            clock=clock, max_attempts=self.config.retry.max_attempts,
            probes=self.config.breaker.probes,
        )  # fmt: skip
        self.deliverer = Deliverer(
            db, limiter=self.limiter, retry=self.config.retry,
            hold_seconds=self.config.dead_after, clock=clock, rng=self.rng,
            channels=channels,
        )  # fmt: skip

    async def run(self, stop: asyncio.Event) -> None:
        """Join the workers, then tick until `stop` is set, sleeping briefly when there was
        nothing to do, with the heartbeat beside; then leave. A heartbeat that fails for
        any other reason than the database being away stops the loop and is raised."""
        try:
            if await self.heartbeat.join(stop):
                await self._run_beating(stop)
        finally:
            await self.close()

    async def _run_beating(self, stop: asyncio.Event) -> None:
        halt = asyncio.Event()  # `stop`, or the heartbeat died
        beating = asyncio.create_task(self.heartbeat.run(halt), name="heartbeat")
        stopping = asyncio.create_task(stop.wait(), name="stop")
        for task in (beating, stopping):
            task.add_done_callback(lambda _: halt.set())
        try:
            await self._run(halt)
        finally:
            halt.set()
            stopping.cancel()
            await asyncio.wait([beating])
            await self.heartbeat.leave()
        if beating.exception() is not None:
            raise RuntimeError("the worker's heartbeat failed") from beating.exception()

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
                session,
                now=now,
                lease_until=lease_until,
                limit=self.config.batch_size,
                worker_id=self.heartbeat.worker_id,
            )
            # Checked again at the last moment: an address suppressed since the message
            # was made (a bounce, a complaint, a STOP mid-broadcast) is skipped, not sent.
            claimed = await queries.skip_suppressed(
                session, claimed=claimed, now=now, erasure_key=self.config.erasure_key
            )
        rendered = None
        if claimed:
            try:
                rendered = await self.messages.render_batch(claimed)
            except Exception as exc:  # claimed, so each gets an outcome: the batch fails alike
                rendered = unrendered(claimed, exc)
            await self._settle(rendered, lease_until)
        found = started + reaped + len(claimed)
        return _Batch(found, lease_until, claimed, rendered, time.perf_counter() - started_at)

    async def _complete(self, batch: _Batch) -> int:
        """Send a prepared batch, its outcomes written as they come, then finish
        broadcasts; returns the work done (0 = idle)."""
        started_at = time.perf_counter()
        tallied = "none sent"
        if batch.rendered is not None:
            async with Recorder(
                self._writer(batch),
                every=self.config.record_every,
                seconds=self.config.record_seconds,
                give_up_after=self.config.lease.total_seconds(),
            ) as recorder:
                await self.deliverer.send(batch.rendered, recorder)
            tallied = tally(recorder.tally)
        async with self.db.transaction() as session:  # the finish step
            finished = await queries.finish_broadcasts(session, now=self.clock())
        if (batch.found or finished) and log.isEnabledFor(logging.DEBUG):
            log.debug(
                "batch: %d claimed (%s); %d broadcasts started or leases reaped, "
                "%d broadcasts finished; prepared in %.3f s, sent and recorded in %.3f s",
                len(batch.claimed),
                tallied,
                batch.found - len(batch.claimed),
                finished,
                batch.seconds,
                time.perf_counter() - started_at,
            )
        return batch.found + finished

    async def _settle(self, rendered: Rendered, lease_until: datetime) -> None:
        """The settle step (one transaction, only when a charged SMS's final text takes
        other segments than it reserved): the messages the balance cannot cover fail
        alone, "insufficient credit". If the step itself fails, the messages it was for
        are not handed over and the rest of the batch goes on: while the database is
        away they are queued again with their attempt given back; any other error is a
        bug, logged, and costs each an attempt (as `unrendered`)."""
        wanted = [
            found
            for message, outgoing in rendered.outgoing()
            if message.channel == "sms" and outgoing.segments is not None
            for found in [
                credits.settlement(
                    message_id=message.id,
                    org_id=message.org_id,
                    reserved=message.cost,
                    reserved_segments=message.segments,
                    segments=outgoing.segments,
                )
            ]
            if found is not None
        ]
        if not wanted:
            return
        try:
            async with self.db.transaction() as session:
                refused = await queries.settle(session, settlements=wanted, lease_until=lease_until)
        except Exception as exc:
            error: SendError
            if unavailable(exc):
                log.warning("SMS segments not settled: the database is unavailable (%r)", exc)
                error = TransientSendError(
                    "not settled: the database is unavailable", attempted=False, retry_after=1.0
                )
            else:
                log.exception("SMS segments not settled", exc_info=exc)
                error = TransientSendError(internal_error(exc))
            rendered.fail({s.message_id for s in wanted}, error)
            return
        rendered.fail(refused, PermanentSendError(credits.INSUFFICIENT_CREDIT))

    def _writer(self, batch: _Batch) -> Write:
        """The record step of `batch`'s outcomes (one transaction each): only rows still
        held under its lease are written, with their links and their credit."""
        assert batch.rendered is not None
        links: dict[int, list[Link]] = {}
        for link in batch.rendered.links:
            links.setdefault(link["message_id"], []).append(link)

        async def write(outcomes: list[Outcome]) -> None:
            async with self.db.transaction() as session:
                await queries.record(
                    session,
                    outcomes=outcomes,
                    lease_until=batch.lease_until,
                    now=self.clock(),
                    links=[link for o in outcomes for link in links.get(o.message_id, ())],
                    breaker=self.config.breaker,
                )

        return write

    async def _start_due_broadcasts(self, now: datetime) -> int:
        async with self.db.transaction(write=False) as session:
            due = await due_broadcasts(session, now=now)
        started = 0
        for broadcast_id in due:  # one transaction each
            async with self.db.transaction() as session:
                started += await start_due(session, broadcast_id=broadcast_id, now=now)
        return started
