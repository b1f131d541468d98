"""Console test helpers: members, and an httpx client signed in to the console.

    member = await add_member(db, org_id=org.id, role=Role.EDITOR)
    await sign_in(client, member.email)            # the client now carries the cookie
    page = await client.get("/")
    await client.post("/logout", data={"csrf_token": csrf_of(page.text)})

The browser fixtures live in tests/browser/conftest.py.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import httpx

from tests.support.factories import OrgWithKey, make_org
from tidings.db.engine import Database
from tidings.members import service as members
from tidings.members.roles import Role

PASSWORD = "correct horse battery"
_numbers = itertools.count(1)
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass(frozen=True)
class TestMember:
    id: int
    org_id: int
    email: str
    password: str
    role: Role


async def add_member(
    db: Database,
    *,
    org_id: int,
    role: Role = Role.OWNER,
    email: str | None = None,
    password: str = PASSWORD,
    is_operator: bool = False,
) -> TestMember:
    email = email or f"member{next(_numbers)}@example.com"
    async with db.transaction() as session:
        member = await members.add_member(
            session, org_id=org_id, email=email, password=password, role=role,
            is_operator=is_operator,
        )  # fmt: skip
    return TestMember(member.id, org_id, member.email, password, role)


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = PASSWORD, *, next_path: str = "/"
) -> httpx.Response:
    """Sign the client in through the form, as a browser does; the answer to the POST."""
    form = await client.get("/login")
    return await client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(form.text),
              "next": next_path},
    )  # fmt: skip


@dataclass(frozen=True)
class SignedIn:
    org: OrgWithKey
    member: TestMember
    csrf: str  # the session's token, for POSTs


async def signed_in(
    client: httpx.AsyncClient,
    db: Database,
    *,
    role: Role = Role.OWNER,
    org: OrgWithKey | None = None,
    is_operator: bool = False,
) -> SignedIn:
    """A new org (unless given) with a member of `role`, and `client` signed in as them."""
    org = org or await make_org(db)
    member = await add_member(db, org_id=org.id, role=role, is_operator=is_operator)
    answer = await sign_in(client, member.email)
    assert answer.status_code == 303, answer.text
    page = await client.get("/")
    return SignedIn(org=org, member=member, csrf=csrf_of(page.text))
