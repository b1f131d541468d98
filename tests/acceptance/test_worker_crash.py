"""A worker killed with SIGKILL mid-broadcast loses nothing: another one finishes it.

Runs `python -m tidings worker` as real subprocesses on the test's database. Every
recipient must end `sent`, each exactly once in the sink except messages that were in
the dead worker's hands, which may be sent twice: no more than one batch.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

from sqlalchemy import func, select

from tests.support.factories import make_org
from tests.support.sending import audience, broadcast_now, email_campaign
from tidings.broadcasts.models import Broadcast
from tidings.channels.models import SinkMessage
from tidings.db.engine import Database
from tidings.outbox.models import Message
from tidings.settings import Settings

RECIPIENTS = 3_000
BATCH = 25


def _worker(settings: Settings) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TIDINGS_DATABASE_URL": settings.database_url,
        "TIDINGS_AUTO_MIGRATE": "false",
        "TIDINGS_DISPATCHER_BATCH_SIZE": str(BATCH),
        "TIDINGS_DISPATCHER_LEASE_SECONDS": "1",
    }
    if settings.secret_key is not None:  # every process must share the link-signing key
        env["TIDINGS_SECRET_KEY"] = settings.secret_key.get_secret_value()
    return subprocess.Popen(
        [sys.executable, "-m", "tidings", "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _count(db: Database, query: object) -> int:
    async with db.session() as session:
        return int(await session.scalar(query) or 0)  # type: ignore[call-overload]


async def _wait_for(db: Database, query: object, predicate: object, within: float) -> int:
    deadline = time.monotonic() + within
    while True:
        value = await _count(db, query)
        if predicate(value) or time.monotonic() > deadline:  # type: ignore[operator]
            return value
        await asyncio.sleep(0.02)


async def test_sigkill_mid_broadcast_loses_nothing(settings: Settings, db: Database) -> None:
    org = await make_org(db)
    campaign_id = await email_campaign(db, org)
    rows = [{"email": f"k{i}@example.com", "first_name": f"K{i}"} for i in range(RECIPIENTS)]
    target = await audience(db, org, rows)
    broadcast_id = await broadcast_now(db, org, campaign_id, target.list_id)
    sunk = select(func.count()).select_from(SinkMessage)

    first = _worker(settings)
    try:
        at_kill = await _wait_for(db, sunk, lambda n: n >= RECIPIENTS // 10, within=60)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    assert 0 < at_kill < RECIPIENTS, (
        "the worker must die mid-broadcast for this test to mean anything"
    )

    second = _worker(settings)
    try:
        finished = select(func.count()).select_from(Broadcast).where(Broadcast.status == "SENT")
        await _wait_for(db, finished, lambda n: n == 1, within=120)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=20)
    assert second.returncode == 0  # SIGTERM: finishes its batch and exits cleanly

    async with db.session() as session:
        statuses = dict(
            (
                await session.execute(select(Message.status, func.count()).group_by(Message.status))
            ).all()
        )
        per_message = (
            await session.execute(
                select(SinkMessage.message_id, func.count()).group_by(SinkMessage.message_id)
            )
        ).all()
        broadcast = await session.get(Broadcast, broadcast_id)
    assert statuses == {"sent": RECIPIENTS}
    assert len(per_message) == RECIPIENTS  # nobody lost
    duplicates = sum(n - 1 for _, n in per_message)
    assert duplicates <= BATCH  # at most the dead worker's batch in flight
    assert broadcast is not None
    assert (broadcast.status, broadcast.sent_count) == ("SENT", RECIPIENTS)
