"""The key store: claims, replays, takeovers of abandoned keys, and a slow request that
lost its key to a takeover storing nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.support.factories import make_org
from tidings.db.engine import Database
from tidings.errors import Conflict, KeyReused
from tidings.idempotency import service
from tidings.idempotency.models import IdempotencyKey

KEEP, IN_FLIGHT = timedelta(hours=24), timedelta(minutes=5)
ROUTE = service.route_digest("POST", "/v1/orgs/1/lists")


async def _begin(
    db: Database, org_id: int, *, fingerprint: str = "a" * 64, route: str = ROUTE
) -> service.Claim | service.Replay:
    async with db.transaction() as session:
        return await service.begin(
            session,
            org_id=org_id,
            route=route,
            key="k",
            fingerprint=fingerprint,
            keep_for=KEEP,
            in_flight_for=IN_FLIGHT,
        )


async def _age(db: Database, by: timedelta) -> None:
    async with db.transaction() as session:
        for row in await session.scalars(select(IdempotencyKey)):
            row.created_at -= by


async def test_claim_then_replay_then_another_body(db: Database) -> None:
    org = await make_org(db)
    claim = await _begin(db, org.id)
    assert isinstance(claim, service.Claim)
    with pytest.raises(Conflict):
        await _begin(db, org.id)  # still in flight
    async with db.transaction() as session:
        await service.finish(
            session, claim=claim, status_code=201, body={"id": 7}, media_type="application/json"
        )
    assert await _begin(db, org.id) == service.Replay(201, {"id": 7}, "application/json")
    with pytest.raises(KeyReused):
        await _begin(db, org.id, fingerprint="b" * 64)
    other_route = await _begin(db, org.id, route=service.route_digest("POST", "/elsewhere"))
    assert isinstance(other_route, service.Claim)


async def test_a_request_whose_key_was_taken_over_stores_nothing(db: Database) -> None:
    org = await make_org(db)
    slow = await _begin(db, org.id)
    assert isinstance(slow, service.Claim)
    await _age(db, IN_FLIGHT + timedelta(seconds=1))
    retry = await _begin(db, org.id)  # the slow one is taken for dead
    assert isinstance(retry, service.Claim)
    assert retry.id == slow.id
    assert retry.claimed_at > slow.claimed_at

    with pytest.raises(Conflict):  # its work's transaction must roll back
        async with db.transaction() as session:
            await service.finish(
                session, claim=slow, status_code=201, body={"id": 1}, media_type=None
            )
    async with db.transaction() as session:
        await service.release(session, claim=slow)  # frees nothing: not its key any more
        await service.finish(session, claim=retry, status_code=201, body={"id": 2}, media_type=None)
    assert await _begin(db, org.id) == service.Replay(201, {"id": 2}, None)


async def test_a_released_key_can_be_claimed_again(db: Database) -> None:
    org = await make_org(db)
    claim = await _begin(db, org.id)
    assert isinstance(claim, service.Claim)
    async with db.transaction() as session:
        await service.release(session, claim=claim)
    assert isinstance(await _begin(db, org.id, fingerprint="c" * 64), service.Claim)


def test_a_json_body_is_compared_in_canonical_form() -> None:
    compact = service.request_hash("POST", "/p", b'{"a":1,"b":[1,2]}')
    spaced = service.request_hash("POST", "/p", b'{ "b": [1, 2],\n "a": 1 }')
    assert compact == spaced
    assert compact != service.request_hash("POST", "/q", b'{"a":1,"b":[1,2]}')
    assert compact != service.request_hash("POST", "/p", b'{"a":1,"b":[2,1]}')
    assert service.request_hash("POST", "/p", b"a,b\n") != service.request_hash(
        "POST", "/p", b"a,b\n1,2\n"
    )
