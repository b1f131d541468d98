"""The console's door: signing in and out, CSRF, roles, an operator's org switch, and
the frame every page shares."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from tests.support.console import PASSWORD, add_member, sign_in, signed_in
from tests.support.factories import make_org
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.console.deps import Viewer
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.members import limits, sessions
from tidings.members.models import ConsoleSession, Member, SignInAttempt
from tidings.members.roles import Role


async def test_a_visitor_signed_out_is_sent_to_sign_in_then_back(
    client: httpx.AsyncClient, db: Database
) -> None:
    answer = await client.get("/?page=2")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=%2F%3Fpage%3D2"

    org = await make_org(db)
    member = await add_member(db, org_id=org.id)
    signed = await sign_in(client, member.email, next_path="/?page=2")
    assert signed.status_code == 303
    assert signed.headers["location"] == "/?page=2"
    cookie = signed.headers["set-cookie"]
    assert "tidings_session=" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # public_url is http here

    page = await client.get("/")
    assert page.status_code == 200
    assert member.email in page.text
    assert 'action="/logout"' in page.text
    async with db.transaction(write=False) as session:
        stored = await session.scalar(select(ConsoleSession.token_hash))
        seen = await session.scalar(select(Member.last_sign_in_at))
    assert stored is not None
    assert stored not in cookie  # only a hash of the token is kept
    assert seen is not None


async def test_a_wrong_password_or_email_is_refused_alike(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    member = await add_member(db, org_id=org.id)
    wrong_password = await sign_in(client, member.email, "not the password")
    wrong_email = await sign_in(client, "nobody@example.com", PASSWORD)
    for answer in (wrong_password, wrong_email):
        assert answer.status_code == 401
        assert "Wrong email or password." in answer.text
        assert "tidings_session" not in answer.headers.get("set-cookie", "")
    assert (await client.get("/")).status_code == 303


async def test_a_next_elsewhere_is_not_followed(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    member = await add_member(db, org_id=org.id)
    answer = await sign_in(client, member.email, next_path="//evil.example/")
    assert answer.headers["location"] == "/"


async def test_a_post_without_the_csrf_token_is_refused(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db)
    refused = await client.post("/logout", data={})
    assert refused.status_code == 403
    assert "did not come from the console" in refused.text
    forged = await client.post("/logout", data={"csrf_token": "x" * 43})
    assert forged.status_code == 403
    assert (await client.get("/")).status_code == 200  # still signed in

    by_header = await client.post("/logout", headers={"X-CSRF-Token": me.csrf})
    assert by_header.status_code == 303


async def test_the_sign_in_form_refuses_a_post_from_elsewhere(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    member = await add_member(db, org_id=org.id)
    answer = await client.post(
        "/login", data={"email": member.email, "password": PASSWORD, "csrf_token": "forged"}
    )
    assert answer.status_code == 403
    assert "tidings_session" not in answer.headers.get("set-cookie", "")


async def test_signing_out_ends_the_session_for_good(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db)
    token = client.cookies["tidings_session"]
    answer = await client.post("/logout", data={"csrf_token": me.csrf})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login"
    client.cookies.set("tidings_session", token)  # a copy of the cookie kept elsewhere
    assert (await client.get("/")).status_code == 303


async def test_an_operator_switches_org_and_a_member_cannot(
    client: httpx.AsyncClient, db: Database
) -> None:
    other = await make_org(db, "Other")
    me = await signed_in(client, db, is_operator=True)
    page = await client.get("/")
    assert 'action="/switch-org"' in page.text
    switched = await client.post("/switch-org", data={"org_id": other.id, "csrf_token": me.csrf})
    assert switched.status_code == 303
    page = await client.get("/")
    assert "Now showing Other" in page.text  # the flash message, once
    assert f"org {other.id}" in page.text
    assert "Now showing" not in (await client.get("/")).text
    missing = await client.post("/switch-org", data={"org_id": 999, "csrf_token": me.csrf})
    assert missing.status_code == 404

    client.cookies.clear()
    plain = await signed_in(client, db, org=other, role=Role.ADMIN)
    assert 'action="/switch-org"' not in (await client.get("/")).text
    refused = await client.post("/switch-org", data={"org_id": me.org.id, "csrf_token": plain.csrf})
    assert refused.status_code == 403


async def test_the_menu_follows_the_role(client: httpx.AsyncClient, db: Database) -> None:
    await signed_in(client, db, role=Role.VIEWER)
    page = (await client.get("/")).text
    assert 'href="/broadcasts"' in page
    assert 'href="/compose"' not in page  # a viewer cannot send
    assert 'href="/keys"' not in page  # nor manage


async def test_a_bad_form_field_is_a_422_page_naming_it(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, is_operator=True)
    answer = await client.post("/switch-org", data={"org_id": "x", "csrf_token": me.csrf})
    assert answer.status_code == 422
    assert "<code>org_id</code>" in answer.text


async def test_console_pages_are_private_and_unframed(
    client: httpx.AsyncClient, db: Database
) -> None:
    await signed_in(client, db)
    page = await client.get("/")
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["content-type"].startswith("text/html")


async def test_assets_are_served_from_tidings_with_cache_headers(
    client: httpx.AsyncClient,
) -> None:
    for name, kind in [("htmx.min.js", "javascript"), ("console.js", "javascript"),
                       ("tidings.css", "text/css")]:  # fmt: skip
        answer = await client.get(f"/static/{name}")
        assert answer.status_code == 200
        assert kind in answer.headers["content-type"]
        assert answer.headers["cache-control"] == "public, max-age=86400"
    htmx = (await client.get("/static/htmx.min.js")).text
    assert htmx.startswith("/*! htmx 2.")
    assert "Zero-Clause BSD" in htmx


async def test_failed_sign_ins_are_limited_per_email_and_cleared_by_success(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    member = await add_member(db, org_id=org.id)
    other = await add_member(db, org_id=org.id)
    for _ in range(limits.PER_EMAIL):
        assert (await sign_in(client, member.email, "wrong password")).status_code == 401
    refused = await sign_in(client, member.email.upper())  # the right password, too late
    assert refused.status_code == 429
    assert "Too many failed sign-ins for this email address" in refused.text
    assert 0 < int(refused.headers["retry-after"]) <= limits.WINDOW.total_seconds()
    assert "tidings_session" not in refused.headers.get("set-cookie", "")

    # Another member is not locked out by it; their success clears their own count.
    assert (await sign_in(client, other.email, "wrong password")).status_code == 401
    assert (await sign_in(client, other.email)).status_code == 303
    async with db.transaction(write=False) as session:
        left = list(await session.scalars(select(SignInAttempt.email)))
    assert left == [member.email] * limits.PER_EMAIL


async def test_failed_sign_ins_are_limited_per_client_address(
    client: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "PER_ADDRESS", 3)
    org = await make_org(db)
    member = await add_member(db, org_id=org.id)
    for n in range(3):
        assert (await sign_in(client, f"guess{n}@example.com", "x")).status_code == 401
    refused = await sign_in(client, member.email)
    assert refused.status_code == 429
    assert "from your network address" in refused.text


async def test_a_request_keeps_the_session_alive_writing_at_most_once_a_minute(
    client: httpx.AsyncClient, db: Database
) -> None:
    await signed_in(client, db)
    long_ago = utcnow() - sessions.SEEN_RESOLUTION * 2
    async with db.transaction() as session:
        await session.execute(update(ConsoleSession).values(last_seen_at=long_ago))
    assert (await client.get("/")).status_code == 200
    async with db.transaction(write=False) as session:
        seen = await session.scalar(select(ConsoleSession.last_seen_at))
    assert seen is not None
    assert seen > long_ago + sessions.SEEN_RESOLUTION  # moved up to the request

    recent = utcnow() - timedelta(seconds=5)
    async with db.transaction() as session:
        await session.execute(update(ConsoleSession).values(last_seen_at=recent))
    assert (await client.get("/")).status_code == 200
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(ConsoleSession.last_seen_at)) == recent  # no write


async def test_a_viewer_is_an_audit_actor_named_member(db: Database) -> None:
    org = await make_org(db)
    viewer = Viewer(member_id=7, email="a@b.example", role=Role.ADMIN, is_operator=False,
                    org_id=org.id, org_login=org.login, org_name="Acme", session_id=1,
                    csrf_token="t")  # fmt: skip
    async with db.transaction() as session:
        entry = await audit.record(session, org_id=org.id, by=viewer, action=Action.LIST_CREATE,
                                   target_id=1, changes={})  # fmt: skip
    assert (entry.actor, entry.key_id) == ("member 7", None)


async def test_an_htmx_request_signed_out_is_told_where_to_go(client: httpx.AsyncClient) -> None:
    answer = await client.get("/", headers={"HX-Request": "true"})
    assert answer.status_code == 200  # htmx acts on HX-Redirect, not on a 303 it follows
    assert answer.headers["hx-redirect"] == "/login?next=%2F"
