"""Every PostgreSQL connection cut mid-batch (`pg_terminate_backend`, as a restart does):
the worker keeps the outcomes it could not write, writes them once it can, claims again
by itself, and hands no message over twice (issue 13, item 4). PostgreSQL only: SQLite has
no connection to cut."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from tests.support.factories import make_org
from tests.support.sending import audience, broadcast_now, email_campaign
from tidings import metrics
from tidings.broadcasts.models import Broadcast
from tidings.channels.base import Outgoing, Report, Result, Sent
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.dispatcher import queries, recorder
from tidings.dispatcher.loop import Dispatcher, DispatcherConfig
from tidings.outbox.models import Message
from tidings.settings import Settings
from tidings.testing import RecordingChannel

RECIPIENTS = 300
CUT_AT = 120  # messages handed over before the cut


async def cut_every_connection(url: str) -> int:
    """Terminate every other backend of the database; returns how many."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        return int(
            await connection.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await connection.close()


class Streaming(RecordingChannel):
    """Sends its batch one message at a time, reporting each as it goes (like SMTP)."""

    async def send(
        self, batch: Sequence[Outgoing], *, report: Report | None = None
    ) -> Sequence[Result]:
        results: list[Result] = []
        for outgoing in batch:
            self.messages.append(outgoing)
            await asyncio.sleep(0.001)  # the provider's reply
            results.append(Sent(f"id-{outgoing.message_id}"))
            if report is not None:
                report(len(results) - 1, results[-1])
        return results


async def test_a_connection_cut_mid_batch_costs_seconds_and_resends_nothing(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    if settings.is_sqlite:
        pytest.skip("PostgreSQL only: terminates the database's backends")
    monkeypatch.setattr(recorder, "RECORD_RETRY_SECONDS", (0.05, 0.2))
    channel = Streaming()
    cuts: list[int] = []
    record = queries.record

    async def cut_before_commit(session: AsyncSession, **kwargs: Any) -> int:
        """The first record step after CUT_AT messages were handed over: written, then
        every connection cut before it commits (its own included)."""
        written = await record(session, **kwargs)
        if not cuts and len(channel.messages) >= CUT_AT:
            cuts.append(await cut_every_connection(settings.database_url))
        return written

    monkeypatch.setattr(queries, "record", cut_before_commit)
    retries = metrics.OUTCOME_WRITE_RETRIES._value.get()
    org = await make_org(db)
    campaign_id = await email_campaign(db, org)
    target = await audience(db, org, [{"email": f"c{i}@example.com"} for i in range(RECIPIENTS)])
    broadcast_id = await broadcast_now(db, org, campaign_id, target.list_id)
    worker_db = Database(settings)
    config = DispatcherConfig(batch_size=100, record_every=10, heartbeat=0.2, dead_after=1.0)
    dispatcher = Dispatcher(
        worker_db, renderer=Renderer(), config=config, channels=lambda spec, db: channel
    )
    stop = asyncio.Event()
    running = asyncio.create_task(dispatcher.run(stop))
    try:
        # The lease is 300 s: finishing within the minute means nothing waited for it.
        for _ in range(600):
            async with db.session() as session:
                status = await session.scalar(
                    select(Broadcast.status).where(Broadcast.id == broadcast_id)
                )
            if status == "SENT" or running.done():
                break
            await asyncio.sleep(0.1)
    finally:
        stop.set()
        await running
        await worker_db.dispose()
    assert cuts[0] > 0  # the cut happened, mid-broadcast, inside a record step
    assert metrics.OUTCOME_WRITE_RETRIES._value.get() > retries  # its outcomes were kept
    handed = [m.message_id for m in channel.messages]
    assert len(handed) == len(set(handed)) == RECIPIENTS  # nothing sent twice, none lost
    async with db.session() as session:
        statuses = dict(
            (
                await session.execute(
                    select(Message.status, func.count())
                    .where(Message.broadcast_id == broadcast_id)
                    .group_by(Message.status)
                )
            ).all()
        )
    assert statuses == {"sent": RECIPIENTS}
    assert status == "SENT"
