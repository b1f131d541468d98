"""A worker's heartbeat: it says it is alive, keeps what it holds, and frees what dead
workers held — within seconds of their death, not when their lease runs out.

    join()      INSERT its row in `workers` (retried while the database is away)
    run(stop)   every `interval` seconds, one transaction:
                  beat        its heartbeat_epoch = now (row gone: it was taken for dead;
                              it joins again under the same id and says so)
                  renew       the connection slots it holds expire `dead_after` from now
                  free_dead_workers  workers silent for `dead_after`: their claimed
                              messages QUEUED again, due now; their slots and rows deleted
    leave()     its own claims without an outcome queued again, its slots and row deleted

A worker of the same host (the same name in `workers.host`) silent for two heartbeats
whose process id no longer runs is dead at once, without waiting for `dead_after`: a
worker that a service manager restarts after a crash frees its predecessor's claims at
its first heartbeat. (A process id taken again by another process only makes it wait
for `dead_after`, as a worker of another host does.)

The claim step tags each message with the claiming worker's id (`messages.worker_id`),
so a heartbeat renews every message the worker holds at once, without touching them, and
freeing a dead worker's messages is one UPDATE through the partial index of leased rows.
The lease (`TIDINGS_DISPATCHER_LEASE_SECONDS`) stays as the limit for a worker that is
alive but stuck.

After the database was away (a restart), every worker's heartbeat is stale at once; a
worker therefore frees others only once its own heartbeats have gone through for
`dead_after` seconds since it last failed, so that the others have had their turn to
beat. (A worker that never failed since it started frees at once: it may be the
replacement of one that died.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import datetime

from tidings import metrics
from tidings.db.availability import unavailable
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.dispatcher import queries
from tidings.dispatcher.limits import ConnectionLimiter

log = logging.getLogger(__name__)


class Heartbeat:
    """One worker's row in `workers` and what keeps it alive. `worker_id` is None until
    `join()`; claims made meanwhile are protected by their lease only."""

    def __init__(
        self,
        db: Database,
        *,
        limiter: ConnectionLimiter,
        interval: float,
        dead_after: float,
        clock: Callable[[], float] = time.time,
        wall: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.limiter = limiter
        self.name = limiter.holder  # the slots it holds carry the same name
        self.interval = interval
        self.dead_after = dead_after
        self.clock = clock
        self.wall = wall
        self.worker_id: int | None = None
        self.host = socket.gethostname()
        self.started_at = wall()
        # Since when heartbeats have gone through without a failure; None after a failure
        # until the next success. `_failed` says whether any ever failed.
        self._connected_since: float | None = None
        self._failed = False

    async def join(self, stop: asyncio.Event) -> bool:
        """Insert this worker's row, trying again while the database cannot be reached;
        False when `stop` was set first."""
        while not stop.is_set():
            try:
                async with self.db.transaction() as session:
                    self.worker_id = await queries.join(
                        session, name=self.name, host=self.host, pid=os.getpid(),
                        started_at=self.started_at, now=self.clock(),
                    )  # fmt: skip
            except Exception as exc:
                if not unavailable(exc):
                    raise
                self._failed = True
                log.warning("worker cannot join: the database is unavailable (%r)", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.interval)
                continue
            self._connected_since = self.clock()
            log.info("worker %s joined as worker %d", self.name, self.worker_id)
            return True
        return False

    async def run(self, stop: asyncio.Event) -> None:
        """Beat every `interval` seconds until `stop` is set. The database being away is
        logged and tried again at the next beat; anything else is a bug and raises."""
        while not stop.is_set():
            try:
                await self.beat()
            except Exception as exc:
                if not unavailable(exc):
                    raise
                log.warning("worker heartbeat: the database is unavailable (%r)", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)

    async def beat(self) -> queries.Freed:
        """One heartbeat (see the module's docstring); returns what it freed of dead
        workers. Raises what the database raised (and then waits `dead_after` of good
        heartbeats before it takes others for dead)."""
        try:
            return await self._beat()
        except Exception:
            self._failed = True
            self._connected_since = None
            raise

    async def _beat(self) -> queries.Freed:
        assert self.worker_id is not None, "join() first"
        now = self.clock()
        freed = queries.Freed([], 0, 0)
        async with self.db.transaction() as session:
            if not await queries.beat(session, worker_id=self.worker_id, now=now):
                log.warning(
                    "worker %d (%s) was taken for dead and its claims freed: joining again",
                    self.worker_id, self.name,
                )  # fmt: skip
                await queries.join(
                    session, name=self.name, host=self.host, pid=os.getpid(),
                    started_at=self.started_at, now=now, worker_id=self.worker_id,
                )  # fmt: skip
            await queries.renew(
                session,
                slot_ids=self.limiter.held,
                holder=self.name,
                expires_epoch=now + self.dead_after,
            )
            if self._may_free(now):
                here = queries.Here(self.host, now - 2 * self.interval, running=_running)
                freed = await queries.free_dead_workers(
                    session, silent_since=now - self.dead_after, now=self.wall(), here=here
                )
        if self._connected_since is None:
            self._connected_since = now
        if freed.workers:
            metrics.CLAIMS_FREED.inc(freed.messages)
            for worker_id, name in freed.workers:
                log.warning("worker %d (%s) taken for dead", worker_id, name)
            log.warning(
                "freed %d claimed messages and %d connection slots of %d dead workers",
                freed.messages, freed.slots, len(freed.workers),
            )  # fmt: skip
        return freed

    def _may_free(self, now: float) -> bool:
        """Whether this worker's view is fresh enough to call others dead (see the
        module's docstring)."""
        if not self._failed:
            return True
        return self._connected_since is not None and now - self._connected_since >= self.dead_after

    async def leave(self) -> None:
        """A clean stop: whatever this worker claimed and holds no outcome for is queued
        again, its slots and its row deleted. While the database cannot be reached this
        is left to the others (they take it for dead)."""
        if self.worker_id is None:
            return
        try:
            async with self.db.transaction() as session:
                freed = await queries.free_workers(
                    session, workers=[(self.worker_id, self.name)], now=self.wall()
                )
        except Exception as exc:
            if not unavailable(exc):
                raise
            log.warning("worker %d left without a word: %r", self.worker_id, exc)
            return
        if freed.messages:
            log.warning("worker %d left %d claimed messages to the others", self.worker_id,
                        freed.messages)  # fmt: skip
        self.worker_id = None


def _running(pid: int) -> bool:
    """Whether a process `pid` runs on this host (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
