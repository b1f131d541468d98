from __future__ import annotations

import asyncio

from tests.support.factories import make_org
from tidings.db.engine import Database
from tidings.errors import InvalidInput
from tidings.lists import service


async def _create(db: Database, org_id: int, name: str) -> object:
    async with db.transaction() as session:
        return await service.create_list(session, org_id=org_id, name=name, description=None)


async def test_concurrent_creates_with_one_name_give_one_list_and_clear_errors(
    db: Database,
) -> None:
    org = await make_org(db)
    outcomes = await asyncio.gather(
        *(_create(db, org.id, "panel") for _ in range(6)), return_exceptions=True
    )
    created = [o for o in outcomes if isinstance(o, service.CountedList)]
    refused = [o for o in outcomes if isinstance(o, InvalidInput)]
    assert len(created) == 1
    assert len(refused) == 5
    assert all(e.errors[0].field == "name" for e in refused)


async def test_the_same_name_in_two_orgs_is_fine(db: Database) -> None:
    a = await make_org(db, "A")
    b = await make_org(db, "B")
    await _create(db, a.id, "panel")
    await _create(db, b.id, "panel")
    async with db.session() as session:
        listed = await service.list_lists(session, org_id=b.id, after_id=None, limit=10)
    assert [item.list.name for item in listed] == ["panel"]
