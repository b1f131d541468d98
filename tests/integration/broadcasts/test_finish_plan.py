"""A broadcast waits for its fallback messages before it is SENT: `finish_broadcasts`
reaches them through the partial index of the messages that fell back, never by reading
all of a SENDING broadcast's finished messages (the plans are read from the database
itself)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.broadcasts import counters
from tidings.db.base import utcnow
from tidings.db.dialect import dialect_name
from tidings.db.engine import Database


class _Capture:
    """Stands in for the session to keep the statement `finish_broadcasts` runs."""

    statement: Any = None

    async def execute(self, statement: Any) -> Any:
        self.statement = statement

        class Result:
            rowcount = 0

        return Result()


async def _plan(session: AsyncSession, now: datetime) -> str:
    capture = _Capture()
    await counters.finish_broadcasts(capture, now=now)  # type: ignore[arg-type]
    connection = await session.connection()
    compiled = capture.statement.compile(
        dialect=connection.dialect, compile_kwargs={"literal_binds": True}
    )
    if dialect_name(session) == "sqlite":
        rows = await connection.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled))
    else:
        rows = await connection.exec_driver_sql("EXPLAIN " + str(compiled))
    return "\n".join(" ".join(str(part) for part in row) for row in rows)


async def test_finishing_reads_only_the_messages_that_fell_back(db: Database) -> None:
    """2,000 messages of 20 broadcasts, 10 of which fell back (PostgreSQL's statistics
    gathered): the plan probes the partial index, not each broadcast's messages."""
    now = utcnow()
    async with db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO messages (org_id, broadcast_id, channel, status, is_test, attempts,"
                " due_at, cost, created_at, fell_back_to) VALUES (1, :b, 'email', :status, :f,"
                " 1, :at, 0, :at, :fell)"
            ),
            [
                {"b": i % 20, "status": "failed" if i < 10 else "sent", "f": False,
                 "at": now, "fell": 10_000 + i if i < 10 else None}
                for i in range(2_000)
            ],
        )  # fmt: skip
        if db.dialect != "sqlite":  # as autovacuum would have (SQLite keeps none by default)
            await session.execute(text("ANALYZE messages"))
    async with db.transaction() as session:
        plan = await _plan(session, now)
    assert "ix_messages_broadcast_id_fell_back_to" in plan, plan
    if db.dialect == "sqlite":
        assert "USING INTEGER PRIMARY KEY" in plan, plan  # each fallback by its key
    else:
        assert "pk_messages" in plan, plan
