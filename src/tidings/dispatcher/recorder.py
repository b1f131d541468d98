"""A batch's outcomes, written down in small steps while the batch is still being sent.

    async with Recorder(write, every=100, seconds=0.5, give_up_after=lease) as recorder:
        await deliverer.send(rendered, recorder)      # outcomes as they are known
    # leaving the block writes what is left

One writer task beside the sending: it writes what has come in once `every` outcomes
wait or the oldest has waited `seconds`, one write at a time (what comes in meanwhile
goes in the next). The sender asks `room(n)` before it hands `n` more messages to a
provider, and waits while that would leave more than `2 × every` messages handed over
whose outcome is not written down — the step being written and the next (the writer
then writes what it has at once): a worker killed mid-batch sends again at most that
many, those on the wire included. Without that bound a write slowed by a busy machine
(measured: 60–900 ms) let the outcomes behind it pile up to 1,880, and each kill sent
150–980 messages twice. (A bound of `every` alone kept the sender waiting for each
write: one PostgreSQL dispatcher sent about 1,900 messages/s instead of 2,700.)

A write the database refuses because it cannot be reached (a restart) is tried again,
waiting RECORD_RETRY_SECONDS[0] and doubling up to [1], with the outcomes kept in memory
and what comes in meanwhile joining them, until it goes through or `give_up_after`
seconds have passed since the recorder opened (the batch's lease: by then another worker
may have claimed the messages again, and writing changes nothing). What is known to be
sent is never sent again by this worker. Any other failure is a bug: logged with its
traceback, and that step's messages are left to their lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType

from tidings import metrics
from tidings.db.availability import unavailable
from tidings.outbox.outcomes import Outcome
from tidings.outbox.status import MessageStatus

log = logging.getLogger(__name__)

RECORD_RETRY_SECONDS = (0.5, 5.0)
"""A write's first wait and longest wait while the database cannot be reached."""

Write = Callable[[list[Outcome]], Awaitable[None]]
"""Writes outcomes in one transaction (the dispatcher's record step)."""


class Recorder:
    """Collects one batch's outcomes (`add`) and writes them in steps (see the module)."""

    def __init__(self, write: Write, *, every: int, seconds: float, give_up_after: float) -> None:
        self._write = write
        self.every = every
        self.seconds = seconds
        self._deadline = time.monotonic() + give_up_after
        self._pending: list[Outcome] = []
        self._in_write = 0  # outcomes in the write under way
        self._oldest = 0.0  # when the oldest pending outcome came in (monotonic)
        self._wake = asyncio.Event()
        self._written = asyncio.Event()  # set after each write step, failed or not
        self._hurry = False  # the sender waits for room: write what is pending now
        self._closing = False
        self._writer: asyncio.Task[None] | None = None
        self.tally: Counter[str] = Counter()  # the outcomes written, by kind
        self.steps = 0  # writes that went through

    async def __aenter__(self) -> Recorder:
        self._writer = asyncio.create_task(self._writing(), name="recorder")
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._closing = True
        self._wake.set()
        assert self._writer is not None
        await self._writer

    @property
    def unwritten(self) -> int:
        """Outcomes known and not yet written down (pending, or in the write under way)."""
        return len(self._pending) + self._in_write

    async def room(self, count: int) -> None:
        """Wait until `count` more messages may be handed over: until the outcomes not yet
        written down leave room for them within `2 × every` (when `count` is more, a
        provider request that carries that many: until all are written). The writer
        writes what it has meanwhile, without waiting for `every` or `seconds`."""
        limit = max(2 * self.every - count, 0)
        while self.unwritten > limit and self._writer is not None and not self._writer.done():
            self._hurry = True
            self._written.clear()
            self._wake.set()
            await self._written.wait()
        self._hurry = False

    def add(self, outcomes: Sequence[Outcome]) -> None:
        """Outcomes to write down (never blocks: the writer task writes them)."""
        if not outcomes:
            return
        if not self._pending:
            self._oldest = time.monotonic()
            self._wake.set()  # the writer starts its clock
        self._pending.extend(outcomes)
        if len(self._pending) >= self.every:
            self._wake.set()

    async def _writing(self) -> None:
        while True:
            if not self._pending:
                if self._closing:
                    return
                await self._wake.wait()
                self._wake.clear()
                continue
            if not (self._closing or self._hurry) and len(self._pending) < self.every:
                left = self._oldest + self.seconds - time.monotonic()
                if left > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=left)
                    self._wake.clear()
                    continue
            await self._write_step()

    async def _write_step(self) -> None:
        """Write what is pending, trying again while the database cannot be reached."""
        try:
            await self._write_pending()
        finally:
            self._in_write = 0
            self._written.set()

    async def _write_pending(self) -> None:
        wait = RECORD_RETRY_SECONDS[0]
        while True:
            step, self._pending = self._pending, []
            self._in_write = len(step)
            try:
                await self._write(step)
            except Exception as exc:
                self._in_write = 0
                if not unavailable(exc):
                    log.exception("writing %d outcomes failed: left to their lease", len(step))
                    return
                self._pending = step + self._pending  # kept, and written with what came since
                if time.monotonic() + wait > self._deadline:
                    log.error(
                        "gave up writing %d outcomes: the database has been unavailable for "
                        "the batch's whole lease (%r)", len(self._pending), exc,
                    )  # fmt: skip
                    self._pending = []
                    return
                metrics.OUTCOME_WRITE_RETRIES.inc()
                log.warning(
                    "outcomes of %d messages kept: the database is unavailable (%r); "
                    "writing them again in %.1f s", len(self._pending), exc, wait,
                )  # fmt: skip
                await asyncio.sleep(wait)
                wait = min(wait * 2, RECORD_RETRY_SECONDS[1])
                continue
            self.steps += 1
            self.tally.update(_kind(o) for o in step)
            return


def _kind(outcome: Outcome) -> str:
    if outcome.deferred:
        return "deferred"
    if outcome.status is MessageStatus.QUEUED:
        return "retried"
    return str(outcome.status)


def tally(counts: Counter[str]) -> str:
    """The outcomes counted by kind, e.g. `3 sent, 1 failed, 2 retried, 5 deferred`."""
    order = ("sent", "failed", "retried", "deferred")
    return ", ".join(f"{counts[kind]} {kind}" for kind in order if counts[kind]) or "none sent"
