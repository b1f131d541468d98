"""`build_worker(settings)`, the worker's composition root, and its process entry point.

A worker process runs its loops on one database pool, each an asyncio task named after
it: the dispatcher (messages), the webhook sender (`tidings.webhooks.delivery`), the
delivery reports' housekeeping (`tidings.reports.pending`: reports waiting for their
provider id, refused reports' retention), the retention purge (`tidings.privacy.retention`,
unless `TIDINGS_RETENTION_SWEEP_SECONDS` is 0) and, unless `TIDINGS_BOUNCE_POLL_SECONDS` is 0,
the bounce mailbox poller (`tidings.bounces.imap`).

    run_loops(loops, stop)
      ├─ one task per loop, named ("dispatcher", "webhook sender", …)
      ├─ wait: `stop` set (SIGTERM, Ctrl-C, the API shutting down), or a loop ends
      ├─ every loop stops after the batch in hand
      └─ a loop that ended unasked (raised, or returned): ERROR naming it, with its
         traceback, and LoopDied once the others have stopped

Each loop handles the failures it expects (a database restarting, a provider timing out)
itself and goes on; a loop that ends anyway has a bug, and a worker missing one of its
loops (sending, but delivering no webhooks) must not go on as if it were whole. So the
worker stops, and `tidings worker` exits with status 1 for the service manager to
restart it, as `tidings serve` does when it runs the loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine, Mapping
from datetime import timedelta
from typing import Any

from tidings.bounces.imap import BouncePoller
from tidings.connections.health import breaker_policy
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher, DispatcherConfig
from tidings.links.secret import erasure_key, load_secret
from tidings.links.tokens import TokenSigner
from tidings.privacy.retention import RetentionKeeper
from tidings.reports.pending import ReportsKeeper, hold_for
from tidings.settings import Settings
from tidings.webhooks.delivery import SenderConfig, WebhookSender

log = logging.getLogger(__name__)

Loop = Coroutine[Any, Any, None]


class LoopDied(RuntimeError):
    """A worker loop ended while nothing had asked it to; the worker has stopped."""

    def __init__(self, name: str) -> None:
        super().__init__(f"worker loop {name!r} died")
        self.name = name


def build_worker(settings: Settings, db: Database) -> Dispatcher:
    return Dispatcher(
        db,
        renderer=Renderer(),
        signer=TokenSigner(load_secret(settings)),
        config=DispatcherConfig(
            batch_size=settings.dispatcher_batch_size,
            lease=timedelta(seconds=settings.dispatcher_lease_seconds),
            public_url=settings.public_url,
            heartbeat=settings.worker_heartbeat_seconds,
            dead_after=settings.worker_dead_after_seconds,
            record_every=settings.record_every,
            record_seconds=settings.dispatcher_record_seconds,
            erasure_key=erasure_key(settings),
            breaker=breaker_policy(settings),
        ),
    )


def build_webhook_sender(settings: Settings, db: Database) -> WebhookSender:
    return WebhookSender(db, config=SenderConfig(policy=settings.webhook_policy))


def build_reports_keeper(settings: Settings, db: Database) -> ReportsKeeper:
    return ReportsKeeper(
        db,
        hold=hold_for(timedelta(seconds=settings.dispatcher_lease_seconds)),
        retention=timedelta(days=settings.rejected_report_retention_days),
        soft_bounce_limit=settings.soft_bounce_limit,
    )


def build_loops(settings: Settings, db: Database, stop: asyncio.Event) -> dict[str, Loop]:
    """Every loop a worker runs, by name, not yet started; each stops when `stop` is set."""
    loops = {
        "dispatcher": build_worker(settings, db).run(stop),
        "webhook sender": build_webhook_sender(settings, db).run(stop),
        "reports keeper": build_reports_keeper(settings, db).run(stop),
    }
    if settings.retention_sweep_seconds > 0:
        keeper = RetentionKeeper(
            db, interval=settings.retention_sweep_seconds, batch=settings.retention_batch_size
        )
        loops["retention"] = keeper.run(stop)
    if settings.bounce_poll_seconds > 0:
        poller = BouncePoller(
            db, interval=settings.bounce_poll_seconds, soft_bounce_limit=settings.soft_bounce_limit,
            fallback_window=settings.fallback_bounce_window,
        )  # fmt: skip
        loops["bounce poller"] = poller.run(stop)
    return loops


async def run_loops(loops: Mapping[str, Loop], stop: asyncio.Event) -> None:
    """Run each loop as a task named after it until `stop` is set, then wait for every
    one to finish the batch in hand.

    A loop that ends before `stop` is set (it raised, or returned) sets it: the others
    stop as they would on SIGTERM, its name and traceback are logged at ERROR, and
    LoopDied is raised once they have. Cancelling this stops the loops the same way.
    """
    tasks = [asyncio.create_task(loop, name=name) for name, loop in loops.items()]
    stopped = asyncio.create_task(stop.wait(), name="stop")
    died: asyncio.Task[None] | None = None
    try:
        await asyncio.wait([*tasks, stopped], return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not stop.is_set():
            died = next((task for task in tasks if task.done()), None)
        if died is not None:
            log.error(
                "worker loop %r %s; stopping the worker",
                died.get_name(),
                "died" if _failure(died) else "ended unasked",
                exc_info=_failure(died),
            )
        stop.set()
        await asyncio.wait(tasks)  # each finishes the batch in hand
        stopped.cancel()
    for task in tasks:
        if task is not died and _failure(task) is not None:
            log.error("worker loop %r failed", task.get_name(), exc_info=_failure(task))
    if died is not None:
        raise LoopDied(died.get_name())


def _failure(task: asyncio.Task[None]) -> BaseException | None:
    """What a finished task raised (cancellation included), None when it returned."""
    if task.cancelled():
        return asyncio.CancelledError()
    return task.exception()


async def serve_worker(settings: Settings) -> None:
    """Run the loops until SIGTERM/SIGINT, then finish the batch in hand and stop.
    LoopDied when a loop ended unasked (the others stopped first)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    db = Database(settings)
    try:
        await run_loops(build_loops(settings, db, stop), stop)
    finally:
        await db.dispose()


def run_worker(settings: Settings) -> int:
    """The `tidings worker` process: 0 when stopped by a signal, 1 when a loop died."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is installed with uvicorn[standard]
        runner = asyncio.run
    else:
        runner = uvloop.run
    try:
        runner(serve_worker(settings))
    except LoopDied:  # already logged, with the loop's traceback
        return 1
    return 0
