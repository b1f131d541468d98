"""The members service and console sessions, on both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from tests.support.factories import make_org
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.errors import Conflict, InvalidInput, NotFound, Unauthorized
from tidings.members import service as members
from tidings.members import sessions
from tidings.members.models import ConsoleSession, Member
from tidings.members.roles import Role

PASSWORD = "correct horse battery"
LIFETIMES = sessions.Lifetimes(lifetime=timedelta(hours=12), idle=timedelta(minutes=60))


async def _member(
    db: Database, org_id: int, email: str = "ada@acme.example", *, is_operator: bool = False
) -> Member:
    async with db.transaction() as session:
        return await members.add_member(session, org_id=org_id, email=email, password=PASSWORD,
                                        role=Role.EDITOR, is_operator=is_operator)  # fmt: skip


async def test_an_email_is_one_member_across_orgs(db: Database) -> None:
    a, b = await make_org(db, "A"), await make_org(db, "B")
    made = await _member(db, a.id, " Ada@ACME.example ")
    assert made.email == "ada@acme.example"
    assert made.password_hash.startswith("$argon2id$")
    with pytest.raises(Conflict):
        await _member(db, b.id, "ADA@acme.example")
    with pytest.raises(InvalidInput) as bad:
        await _member(db, b.id, "not an email")
    assert bad.value.errors[0].field == "email"
    async with db.transaction(write=False) as session:
        assert [m.email for m in await members.list_members(session, org_id=b.id)] == []
        assert len(await members.list_members(session, org_id=None)) == 1


async def test_sign_in_refuses_a_wrong_password_an_unknown_email_and_a_disabled_member(
    db: Database,
) -> None:
    org = await make_org(db)
    made = await _member(db, org.id)
    async with db.transaction(write=False) as session:
        found = await members.check_sign_in(session, email="ADA@acme.example", password=PASSWORD)
        assert found.id == made.id
        for email, password in [(made.email, "wrong password"), ("bob@acme.example", PASSWORD),
                                ("", PASSWORD)]:  # fmt: skip
            with pytest.raises(Unauthorized):
                await members.check_sign_in(session, email=email, password=password)
    async with db.transaction() as session:
        await session.execute(update(Member).values(disabled_at=utcnow()))
    async with db.transaction(write=False) as session:
        with pytest.raises(Unauthorized):
            await members.check_sign_in(session, email=made.email, password=PASSWORD)


async def test_a_session_resolves_until_it_expires_idles_or_is_revoked(db: Database) -> None:
    org = await make_org(db)
    made = await _member(db, org.id)

    async def opened() -> str:
        async with db.transaction() as session:
            return sessions.open_session(session, member=made, lifetimes=LIFETIMES).token

    async def resolves(token: str) -> bool:
        async with db.transaction(write=False) as session:
            return await sessions.resolve(session, token=token, lifetimes=LIFETIMES) is not None

    live, idle, old, revoked = [await opened() for _ in range(4)]
    assert not await resolves("a token nobody was given")
    now = utcnow()
    async with db.transaction() as session:
        await session.execute(
            update(ConsoleSession)
            .where(ConsoleSession.token_hash == sessions.digest(idle))
            .values(last_seen_at=now - LIFETIMES.idle - timedelta(seconds=1))
        )
        await session.execute(
            update(ConsoleSession)
            .where(ConsoleSession.token_hash == sessions.digest(old))
            .values(expires_at=now - timedelta(seconds=1))
        )
    async with db.transaction() as session:
        resolved = await sessions.resolve(session, token=revoked, lifetimes=LIFETIMES)
        assert resolved is not None
        await sessions.revoke(session, session_id=resolved.session.id)
    assert [await resolves(t) for t in (live, idle, old, revoked)] == [True, False, False, False]

    async with db.transaction() as session:
        ended = await members.reset_password(session, member_id=made.id, password="new password 1")
    assert ended == 2  # the live one and the idle one; not the expired nor the revoked
    assert not await resolves(live)


async def test_a_session_switched_to_another_org_ends_when_the_operator_flag_does(
    db: Database,
) -> None:
    a, b = await make_org(db, "A"), await make_org(db, "B")
    operator = await _member(db, a.id, is_operator=True)
    async with db.transaction() as session:
        issued = sessions.open_session(session, member=operator, lifetimes=LIFETIMES)
        await session.flush()
        shown = await sessions.show_org(session, session_id=issued.row.id, org_id=b.id)
        assert shown.id == b.id
        with pytest.raises(NotFound):
            await sessions.show_org(session, session_id=issued.row.id, org_id=999)
    async with db.transaction(write=False) as session:
        found = await sessions.resolve(session, token=issued.token, lifetimes=LIFETIMES)
        assert found is not None
        assert found.org.id == b.id
    async with db.transaction() as session:
        await session.execute(update(Member).values(is_operator=False))
    async with db.transaction(write=False) as session:
        assert await sessions.resolve(session, token=issued.token, lifetimes=LIFETIMES) is None
