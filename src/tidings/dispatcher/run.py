"""`build_worker(settings)`, the worker's composition root, and its process entry point.

A worker process runs its loops on one database pool: the dispatcher (messages), the
webhook sender (`tidings.webhooks.delivery`), the delivery reports' housekeeping
(`tidings.reports.pending`: reports waiting for their provider id, refused reports'
retention) and, unless `TIDINGS_BOUNCE_POLL_SECONDS` is 0, the bounce mailbox poller
(`tidings.bounces.imap`), each stopping after the batch in hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

from tidings.bounces.imap import BouncePoller
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher, DispatcherConfig
from tidings.links.secret import load_secret
from tidings.links.tokens import TokenSigner
from tidings.reports.pending import ReportsKeeper, hold_for
from tidings.settings import Settings
from tidings.webhooks.delivery import SenderConfig, WebhookSender


def build_worker(settings: Settings, db: Database) -> Dispatcher:
    return Dispatcher(
        db,
        renderer=Renderer(),
        signer=TokenSigner(load_secret(settings)),
        config=DispatcherConfig(
            batch_size=settings.dispatcher_batch_size,
            lease=timedelta(seconds=settings.dispatcher_lease_seconds),
            public_url=settings.public_url,
        ),
    )


def build_webhook_sender(settings: Settings, db: Database) -> WebhookSender:
    return WebhookSender(db, config=SenderConfig(allow_private=settings.webhook_allow_private))


def build_reports_keeper(settings: Settings, db: Database) -> ReportsKeeper:
    return ReportsKeeper(
        db,
        hold=hold_for(timedelta(seconds=settings.dispatcher_lease_seconds)),
        retention=timedelta(days=settings.rejected_report_retention_days),
        soft_bounce_limit=settings.soft_bounce_limit,
    )


def build_loops(
    settings: Settings, db: Database, stop: asyncio.Event
) -> list[Coroutine[Any, Any, None]]:
    """Every loop a worker runs, not yet started."""
    loops = [
        build_worker(settings, db).run(stop),
        build_webhook_sender(settings, db).run(stop),
        build_reports_keeper(settings, db).run(stop),
    ]
    if settings.bounce_poll_seconds > 0:
        poller = BouncePoller(
            db, interval=settings.bounce_poll_seconds, soft_bounce_limit=settings.soft_bounce_limit
        )
        loops.append(poller.run(stop))
    return loops


async def serve_worker(settings: Settings) -> None:
    """Tick until SIGTERM/SIGINT, then finish the batch in hand and stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    db = Database(settings)
    try:
        await asyncio.gather(*build_loops(settings, db, stop))
    finally:
        await db.dispose()


def run_worker(settings: Settings) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is installed with uvicorn[standard]
        asyncio.run(serve_worker(settings))
    else:
        uvloop.run(serve_worker(settings))
