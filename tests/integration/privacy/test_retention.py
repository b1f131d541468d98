"""Retention with a clock the test moves: content first, then events and message rows, in
bounded batches; unfinished messages and orgs that keep forever are left alone."""

from __future__ import annotations

from pydantic import SecretStr
from sqlalchemy import func, select, update

from tests.support.factories import make_org
from tests.support.sending import emailed
from tidings.channels.models import SinkMessage
from tidings.db.engine import Database
from tidings.events.models import Event
from tidings.orgs import service as orgs
from tidings.outbox.models import Message, MessageAttempt
from tidings.privacy.retention import RetentionKeeper
from tidings.settings import Settings
from tidings.testing import Clock


async def _counts(db: Database, org_id: int) -> tuple[int, int, int, int]:
    """(messages, with variables, events, sink copies) of the org."""
    async with db.session() as session:
        messages = await session.scalar(select(func.count()).where(Message.org_id == org_id))
        variables = await session.scalar(
            select(func.count()).where(Message.org_id == org_id, Message.variables.is_not(None))
        )
        events = await session.scalar(select(func.count()).where(Event.org_id == org_id))
        sunk = await session.scalar(select(func.count()).where(SinkMessage.org_id == org_id))
    return int(messages or 0), int(variables or 0), int(events or 0), int(sunk or 0)


async def test_retention_purges_content_then_events_and_messages_in_batches(db: Database) -> None:
    org = await make_org(db)
    keeper_org = await make_org(db, "Keeper")
    async with db.transaction() as session:
        await orgs.update_org(
            session, org_id=keeper_org.id,
            changes={"content_retention_days": None, "event_retention_days": None,
                     "message_retention_days": None},
        )  # fmt: skip
    sent = await emailed(db, org, 5)
    await emailed(db, keeper_org, 2)
    async with db.transaction() as session:  # the personalisation a send keeps
        await session.execute(update(Message).values(variables={"code": "1"}))
        # One message still waiting (a paused broadcast's): never purged while unfinished.
        await session.execute(
            update(Message)
            .where(Message.recipient == "p4@example.com", Message.org_id == org.id)
            .values(
                status="queued",
                due_at=Message.created_at + (Message.created_at - Message.created_at),
            )
        )
    assert await _counts(db, org.id) == (5, 5, 5, 5)
    assert sent.broadcast_id
    async with db.transaction() as session:  # an attempt before the last of each message
        rows = await session.execute(select(Message.id, Message.org_id, Message.created_at))
        for message_id, org_id, at in rows.all():
            session.add(MessageAttempt(
                org_id=org_id, message_id=message_id, attempt=1, connection_id=None,
                outcome="retried", reason="451 try later", at=at,
            ))  # fmt: skip

    clock = Clock()
    keeper = RetentionKeeper(db, interval=60, batch=2, clock=clock)
    clock.advance(29 * 86_400)
    assert (await keeper.tick()).total == 0

    clock.advance(2 * 86_400)  # 31 days: content (30) goes, rows and events stay
    purged = await keeper.tick()
    assert (purged.contents, purged.events, purged.messages) == (5 + 4, 0, 0)
    assert await _counts(db, org.id) == (5, 1, 5, 0)

    clock.advance(370 * 86_400)  # 401 days: events (400) and finished rows (400) go
    purged = await keeper.tick()
    # Four events went with their messages; the waiting message's by event retention.
    assert (purged.events, purged.messages) == (1, 4)
    assert await _counts(db, org.id) == (1, 1, 0, 0)
    async with db.session() as session:
        left = await session.scalar(select(Message.status).where(Message.org_id == org.id))
        kept = await session.scalar(select(func.count()).where(MessageAttempt.org_id == org.id))
    assert left == "queued"
    assert kept == 1  # the waiting message's attempt; the purged messages' went with them
    assert await _counts(db, keeper_org.id) == (2, 2, 2, 2)  # keeps forever


async def test_one_purge_round_at_a_time_on_postgresql(db: Database) -> None:
    from tidings.db.dialect import alone

    async with alone(db.engine, 42) as first, alone(db.engine, 42) as second:
        pass
    async with alone(db.engine, 42) as after:
        pass
    postgres = db.engine.dialect.name == "postgresql"
    assert (first, second, after) == (True, not postgres, True)


async def test_the_worker_runs_the_retention_loop_and_hashes_with_the_erasure_key(
    db: Database, settings: Settings
) -> None:
    import asyncio

    from tidings.dispatcher.run import build_loops, build_worker
    from tidings.links.secret import erasure_key

    def names(settings: Settings) -> set[str]:
        loops = build_loops(settings, db, asyncio.Event())
        for loop in loops.values():
            loop.close()  # built, never started
        return set(loops)

    assert "retention" in names(settings)
    assert "retention" not in names(settings.model_copy(update={"retention_sweep_seconds": 0}))
    assert build_worker(settings, db).config.erasure_key == erasure_key(settings)
    chosen = settings.model_copy(update={"erasure_key": SecretStr("an operator's own key")})
    assert erasure_key(chosen) == b"an operator's own key" != erasure_key(settings)
