"""Writers of one process take turns on SQLite in arrival order (db/engine.py)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from tidings.db.engine import Database, begin_write
from tidings.orgs.models import Org


async def _write(db: Database, log: list[str], name: str, *, hold: float, fail: bool) -> None:
    async with db.session() as session:
        await begin_write(session)
        log.append(f"{name} in")
        await session.execute(text("UPDATE orgs SET name = :name"), {"name": name})
        await asyncio.sleep(hold)
        log.append(f"{name} out")
        if fail:
            raise RuntimeError(name)
        await session.commit()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_writers_take_turns_in_arrival_order(db: Database) -> None:
    async with db.session() as session:
        await begin_write(session)
        session.add(Org(name="first", login="first"))
        await session.commit()
    log: list[str] = []
    tasks = []
    for i in range(5):
        tasks.append(asyncio.create_task(_write(db, log, f"w{i}", hold=0.02, fail=i == 2)))
        await asyncio.sleep(0.005)  # arrival order w0 … w4
    results = await asyncio.gather(*tasks, return_exceptions=True)

    assert [type(r) for r in results] == [type(None)] * 2 + [RuntimeError] + [type(None)] * 2
    # Never two writers inside at once, and each in its turn (w2's error ends its turn too).
    assert log == [f"w{i} {step}" for i in range(5) for step in ("in", "out")]
    async with db.session() as session:
        names = (await session.execute(text("SELECT name FROM orgs"))).scalars().all()
    assert names == ["w4"]


async def test_a_write_turn_ends_with_its_transaction(db: Database) -> None:
    """Commit, rollback, an error and a closed session each give the turn back."""
    for end in ("commit", "rollback", "close"):
        async with db.session() as session:
            await begin_write(session)
            await session.execute(text("SELECT 1"))
            if end == "commit":
                await session.commit()
            elif end == "rollback":
                await session.rollback()
        # A second writer gets in at once (a kept turn would block it for the timeout).
        async with db.session() as session:
            await asyncio.wait_for(begin_write(session), timeout=5)
            await session.commit()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_begin_write_inside_an_open_transaction_is_refused(db: Database) -> None:
    async with db.session() as session:
        await session.execute(text("SELECT 1"))
        with pytest.raises(RuntimeError, match="inside an open transaction"):
            await begin_write(session)
        await session.rollback()
        await asyncio.wait_for(begin_write(session), timeout=5)
        await session.commit()
