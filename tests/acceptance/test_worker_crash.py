"""A worker killed with SIGKILL mid-broadcast loses nothing, and costs seconds: another one
takes it for dead once it has missed its heartbeats, frees its claims and finishes the
broadcast (issue 13, item 3).

Runs `python -m tidings worker` as real subprocesses on the test's database, with the
default 300 s lease: the broadcast can only finish within the test's minute because the
dead worker's claims were freed by a live worker's heartbeat, not by the lease. Every
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
from tidings.dispatcher.worker_models import Worker
from tidings.outbox.models import Message
from tidings.settings import Settings

RECIPIENTS = 3_000
BATCH = 25
DEAD_AFTER = 2  # seconds; heartbeats every 0.5 s


def _worker(settings: Settings) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TIDINGS_DATABASE_URL": settings.database_url,
        "TIDINGS_AUTO_MIGRATE": "false",
        "TIDINGS_DISPATCHER_BATCH_SIZE": str(BATCH),
        "TIDINGS_WORKER_HEARTBEAT_SECONDS": "0.5",
        "TIDINGS_WORKER_DEAD_AFTER_SECONDS": str(DEAD_AFTER),
        "TIDINGS_BOUNCE_POLL_SECONDS": "0",
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


async def _broadcast(db: Database) -> int:
    org = await make_org(db)
    campaign_id = await email_campaign(db, org)
    rows = [{"email": f"k{i}@example.com", "first_name": f"K{i}"} for i in range(RECIPIENTS)]
    target = await audience(db, org, rows)
    return await broadcast_now(db, org, campaign_id, target.list_id)


SUNK = select(func.count()).select_from(SinkMessage)
FINISHED = select(func.count()).select_from(Broadcast).where(Broadcast.status == "SENT")
WORKERS = select(func.count()).select_from(Worker)


def _kill(worker: subprocess.Popen[bytes]) -> None:
    worker.send_signal(signal.SIGKILL)
    worker.wait(timeout=10)


def _stop(worker: subprocess.Popen[bytes]) -> int:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    return worker.returncode


async def test_a_worker_started_after_a_sigkill_finishes_the_broadcast(
    settings: Settings, db: Database
) -> None:
    broadcast_id = await _broadcast(db)
    first = _worker(settings)
    try:
        at_kill = await _wait_for(db, SUNK, lambda n: n >= RECIPIENTS // 10, within=60)
        _kill(first)
    finally:
        _stop(first)
    assert 0 < at_kill < RECIPIENTS, (
        "the worker must die mid-broadcast for this test to mean anything"
    )

    second = _worker(settings)
    try:
        await _wait_for(db, FINISHED, lambda n: n == 1, within=60)
    finally:
        assert _stop(second) == 0  # SIGTERM: finishes its batch and exits cleanly
    await _everyone_sent_once(db, broadcast_id)
    assert await _count(db, WORKERS) == 0  # the dead one freed, the live one left


async def test_a_live_worker_frees_a_killed_ones_claims_within_seconds(
    settings: Settings, db: Database
) -> None:
    broadcast_id = await _broadcast(db)
    doomed, survivor = _worker(settings), _worker(settings)
    try:
        await _wait_for(db, WORKERS, lambda n: n == 2, within=30)
        at_kill = await _wait_for(db, SUNK, lambda n: n >= RECIPIENTS // 5, within=60)
        _kill(doomed)
        held = select(func.count()).select_from(Message).where(Message.status == "sending")
        # The dead worker's claims are freed by the survivor's heartbeat within seconds
        # (the lease is 300 s): the broadcast finishes, and only the survivor is left.
        await _wait_for(db, FINISHED, lambda n: n == 1, within=60)
        assert await _count(db, held) == 0
        # The dead one's row goes at the survivor's first heartbeat past its silence (the
        # broadcast may finish before that, when the kill caught the doomed one between
        # batches, holding nothing).
        assert await _wait_for(db, WORKERS, lambda n: n == 1, within=30) == 1
    finally:
        _stop(doomed)
        assert _stop(survivor) == 0
    assert 0 < at_kill < RECIPIENTS
    await _everyone_sent_once(db, broadcast_id)
    assert await _count(db, WORKERS) == 0


async def _everyone_sent_once(db: Database, broadcast_id: int) -> None:
    """Every message sent, each in the sink once but for at most a batch sent twice."""
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
