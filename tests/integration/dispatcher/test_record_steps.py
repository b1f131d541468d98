"""A worker hands a provider no more than twice `record_every` messages whose outcome it
has not written down, however slow the writes: what a kill can make it send twice is bounded by
the record step, not by how far the database lags behind the provider (issue 13, item 3:
before this bound, a write slowed by a busy machine let 2,000 outcomes pile up behind it,
and a SIGKILLed worker re-sent 300–1,000 messages)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import select

from tests.support.factories import make_org
from tests.support.sending import audience, broadcast_now, email_campaign
from tidings.channels.base import Outgoing, Report, Result
from tidings.connections import service as connections
from tidings.connections.schemas import ConnectionCreate
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.dispatcher import queries
from tidings.dispatcher.loop import Dispatcher, DispatcherConfig
from tidings.outbox.models import Message
from tidings.testing import RecordingChannel

EVERY = 10


class Counting(RecordingChannel):
    """A streaming channel (an SMTP pool of 4) that notes, at each call, how many messages
    it was handed in all while only `written` outcomes were written down."""

    def __init__(self, written: list[int]) -> None:
        super().__init__(parallelism=4)
        self.written = written
        self.unwritten_at_calls: list[int] = []

    async def send(
        self, batch: Sequence[Outgoing], *, report: Report | None = None
    ) -> Sequence[Result]:
        handed = len(self.messages) + len(batch)
        self.unwritten_at_calls.append(handed - self.written[0])
        results = await super().send(batch, report=report)
        await asyncio.sleep(0)  # the replies come in over time
        return results


async def test_no_more_than_twice_record_every_messages_go_unwritten_behind_a_slow_database(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = await make_org(db)
    async with db.transaction() as session:
        await connections.create_connection(
            session,
            org_id=org.id,
            body=ConnectionCreate(name="pool", channel="email", kind="sink", is_default=True),
        )
    rows = [{"email": f"r{i}@example.com", "first_name": f"R{i}"} for i in range(60)]
    everyone = await audience(db, org, rows)
    broadcast = await broadcast_now(db, org, await email_campaign(db, org), everyone.list_id)

    written = [0]  # outcomes written down so far
    steps: list[int] = []
    record = queries.record

    async def slow_record(session: Any, **kwargs: Any) -> int:
        await asyncio.sleep(0.05)  # a database slower than the provider
        found = await record(session, **kwargs)
        steps.append(len(kwargs["outcomes"]))
        written[0] += len(kwargs["outcomes"])
        return found

    monkeypatch.setattr(queries, "record", slow_record)
    channel = Counting(written)
    config = DispatcherConfig(batch_size=100, record_every=EVERY, record_seconds=60)
    worker = Dispatcher(db, renderer=Renderer(), config=config, channels=lambda spec, db: channel)
    await asyncio.wait_for(worker.drain(), timeout=60)

    async with db.session() as session:
        statuses = list(
            (
                await session.execute(
                    select(Message.status).where(Message.broadcast_id == broadcast)
                )
            ).scalars()
        )
    assert statuses == ["sent"] * 60
    assert max(channel.unwritten_at_calls) <= 2 * EVERY
    assert {len(b) for b in channel.batches} <= set(range(1, EVERY // 2 + 1))
    assert len(steps) >= 60 // (2 * EVERY)  # written in steps as it went, not at the end
    assert max(steps) <= 2 * EVERY
