from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.support.factories import make_org
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.errors import Forbidden, Unauthorized
from tidings.keys import secrets, service
from tidings.keys.models import ApiKey
from tidings.keys.schemas import KeyKind, Scope


async def test_only_the_hash_is_stored(db: Database) -> None:
    org = await make_org(db)
    async with db.session() as session:
        stored = list(await session.scalars(select(ApiKey)))
    [key] = stored
    columns = [str(getattr(key, c.key)) for c in ApiKey.__table__.columns]
    assert org.key not in " ".join(columns)
    assert key.secret_hash == secrets.digest(org.key)


async def test_login_must_match_the_keys_org(db: Database) -> None:
    a = await make_org(db, "A")
    b = await make_org(db, "B")
    async with db.session() as session:
        principal = await service.authenticate(session, secret=a.key, login=a.login)
        assert principal.org_id == a.id
        with pytest.raises(Unauthorized):
            await service.authenticate(session, secret=a.key, login=b.login)


async def test_revoked_keys_stop_working(db: Database) -> None:
    org = await make_org(db)
    async with db.transaction() as session:
        issued = await service.create_key(session, org_id=org.id, name="tmp", scopes=[Scope.READ])
    async with db.session() as session:
        await service.authenticate(session, secret=issued.secret, login=None)
    async with db.transaction() as session:
        await service.revoke_key(session, org_id=org.id, key_id=issued.key.id)
    async with db.session() as session:
        with pytest.raises(Unauthorized):
            await service.authenticate(session, secret=issued.secret, login=None)


async def _authenticate_as_the_api_does(db: Database, secret: str) -> None:
    """`authenticate` reads; a stale use is recorded in a write transaction after it."""
    async with db.session() as session:
        principal = await service.authenticate(session, secret=secret, login=None)
    if principal.stale_use:
        async with db.transaction() as session:
            await service.record_use(session, key_id=principal.key_id)


async def test_last_used_at_is_recorded_at_most_once_a_minute(db: Database) -> None:
    org = await make_org(db)
    await _authenticate_as_the_api_does(db, org.key)
    async with db.session() as session:
        first = await session.scalar(select(ApiKey.last_used_at))
    await _authenticate_as_the_api_does(db, org.key)
    async with db.session() as session:
        unchanged = await session.scalar(select(ApiKey.last_used_at))
    assert first is not None
    assert unchanged == first

    async with db.transaction() as session:
        await session.execute(update(ApiKey).values(last_used_at=utcnow() - timedelta(minutes=5)))
    await _authenticate_as_the_api_does(db, org.key)
    async with db.session() as session:
        moved = await session.scalar(select(ApiKey.last_used_at))
    assert moved is not None
    assert moved > first


async def test_a_key_cannot_grant_more_than_it_holds(db: Database) -> None:
    org = await make_org(db)
    async with db.transaction() as session:
        reader = await service.create_key(
            session, org_id=org.id, name="r", scopes=[Scope.READ, Scope.MANAGE]
        )
        test_key = await service.create_key(session, org_id=org.id, name="t", kind=KeyKind.TEST)
    async with db.transaction() as session:
        issuer = await service.authenticate(session, secret=reader.secret, login=None)
        with pytest.raises(Forbidden):
            await service.create_key(
                session, org_id=org.id, name="x", scopes=[Scope.SEND], issuer=issuer
            )
        tester = await service.authenticate(session, secret=test_key.secret, login=None)
        with pytest.raises(Forbidden):
            await service.create_key(
                session, org_id=org.id, name="y", kind=KeyKind.LIVE, issuer=tester
            )
        allowed = await service.create_key(
            session, org_id=org.id, name="z", kind=KeyKind.TEST, issuer=tester
        )
    assert allowed.key.kind == "test"


async def test_begin_write_refuses_an_open_transaction(db: Database) -> None:
    from tidings.db.engine import begin_write

    async with db.session() as session:
        await session.scalar(select(ApiKey.id))
        with pytest.raises(RuntimeError, match="open transaction"):
            await begin_write(session)
