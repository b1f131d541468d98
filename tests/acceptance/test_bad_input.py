"""No input breaks a request: each bad input on a representative native route gets the
answer docs/api.md promises (a problem naming the field), never a 500 — on both databases.

Bodies are sent as raw bytes: a NUL or a lone surrogate must reach the server exactly as
a client wrote it (`\\u0000`, `\\ud800`), which no JSON encoder would produce.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.factories import OrgWithKey, make_org
from tidings.db.engine import Database
from tidings.settings import Settings

BIG = str(2**63)  # one past the largest signed 64-bit id
LATE = "9999-12-31T23:59:59-01:00"  # year 10000 in UTC
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class World:
    org: OrgWithKey
    list_id: int
    template_id: int
    campaign_id: int


@pytest.fixture
async def world(client: httpx.AsyncClient, db: Database) -> World:
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}", org.bearer
    listed = await client.post(f"{base}/lists", headers=h, json={"name": "L"})
    template = await client.post(
        f"{base}/templates",
        headers=h,
        json={"name": "t", "channel": "email", "subject": "Hi", "text": "Hello"},
    )
    campaign = await client.post(
        f"{base}/campaigns",
        headers=h,
        json={
            "name": "c",
            "channel": "email",
            "template_id": template.json()["id"],
            "from_email": "news@acme.example",
        },
    )
    assert campaign.status_code == 201, campaign.text
    return World(org, listed.json()["id"], template.json()["id"], campaign.json()["id"])


@dataclass(frozen=True)
class Case:
    method: str
    path: str  # {org}, {list}, {template}, {campaign} filled from the world
    body: bytes | None = None
    headers: dict[str, str] | None = None


def _filled(case: Case, world: World) -> tuple[str, bytes | None]:
    values = {
        "org": world.org.id,
        "list": world.list_id,
        "template": world.template_id,
        "campaign": world.campaign_id,
    }
    path = case.path.format(**values)
    body = case.body
    if body is not None:
        for name, value in values.items():
            body = body.replace(f"<{name}>".encode(), str(value).encode())
    return path, body


NOT_FOUND = {
    "org id past 64 bits": Case("GET", f"/v1/orgs/{BIG}"),
    "list id past 64 bits": Case("GET", f"/v1/orgs/{{org}}/lists/{BIG}"),
    "list id zero": Case("GET", "/v1/orgs/{org}/lists/0"),
    "list id negative": Case("GET", "/v1/orgs/{org}/lists/-1"),
    "list id not a number": Case("GET", "/v1/orgs/{org}/lists/abc"),
    "broadcast id past 64 bits, on an action": Case(
        "POST", f"/v1/orgs/{{org}}/broadcasts/{BIG}/cancel"
    ),
    "version past 32 bits": Case("GET", "/v1/orgs/{org}/templates/{template}/versions/2147483648"),
    "list id past 64 bits, on a delete": Case("DELETE", f"/v1/orgs/{{org}}/lists/{BIG}"),
}


@pytest.mark.parametrize("case", NOT_FOUND.values(), ids=NOT_FOUND.keys())
async def test_a_path_that_names_nothing_is_a_404(
    client: httpx.AsyncClient, world: World, case: Case
) -> None:
    path, _ = _filled(case, world)
    response = await client.request(case.method, path, headers=world.org.bearer)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:tidings:problem:not-found"


INVALID = {
    "query id past 64 bits": (
        Case("GET", f"/v1/orgs/{{org}}/messages?broadcast_id={BIG}"),
        "query.broadcast_id",
    ),
    "query id zero": (Case("GET", "/v1/orgs/{org}/contacts?list_id=0"), "query.list_id"),
    "query id past 64 bits, on events": (
        Case("GET", f"/v1/orgs/{{org}}/events?message_id={BIG}"),
        "query.message_id",
    ),
    "query date-time past 9999 in UTC": (
        Case("GET", f"/v1/orgs/{{org}}/audit?since={LATE}"),
        "query.since",
    ),
    "body id past 64 bits": (
        Case("POST", "/v1/orgs/{org}/broadcasts", f'{{"campaign_id": {BIG}}}'.encode()),
        "campaign_id",
    ),
    "body id in a list past 64 bits": (
        Case("POST", "/v1/orgs/{org}/lists/{list}/members", f'{{"contact_ids": [{BIG}]}}'.encode()),
        "contact_ids[0]",
    ),
    "body id negative": (
        Case(
            "POST",
            "/v1/orgs/{org}/campaigns",
            b'{"name": "x", "channel": "email", "template_id": -3}',
        ),
        "template_id",
    ),
    "segment list id past 64 bits": (
        Case(
            "POST",
            "/v1/orgs/{org}/segments",
            f'{{"name": "s", "filter": {{"in_list": {BIG}}}}}'.encode(),
        ),
        "filter.in_list",
    ),
    "segment number past 64 bits": (
        Case(
            "POST",
            "/v1/orgs/{org}/segments/count",
            f'{{"filter": {{"field": "attributes.n", "op": "eq", "value": {BIG}}}}}'.encode(),
        ),
        "filter.value",
    ),
    "scheduled_at past 9999 in UTC": (
        Case(
            "POST",
            "/v1/orgs/{org}/broadcasts",
            b'{"campaign_id": <campaign>, "send_to_all": true,'
            b' "scheduled_at": "' + LATE.encode() + b'"}',
        ),
        "scheduled_at",
    ),
    "send_at with a five-digit year": (
        Case(
            "POST",
            "/v1/orgs/{org}/messages",
            b'{"campaign_id": <campaign>, "to": {"email": "a@example.com"},'
            b' "send_at": "10000-01-01T00:00:00Z"}',
        ),
        "send_at",
    ),
    "send_at past 9999 in UTC": (
        Case(
            "POST",
            "/v1/orgs/{org}/messages",
            b'{"campaign_id": <campaign>, "to": {"email": "a@example.com"},'
            b' "send_at": "' + LATE.encode() + b'"}',
        ),
        "send_at",
    ),
    "NUL in a list name": (
        Case("POST", "/v1/orgs/{org}/lists", b'{"name": "a\\u0000b"}'),
        "name",
    ),
    "lone surrogate in a contact attribute": (
        Case(
            "POST",
            "/v1/orgs/{org}/contacts",
            b'{"contacts": [{"email": "a@example.com"},'
            b' {"email": "b@example.com", "attributes": {"store": "x\\ud800"}}]}',
        ),
        "contacts[1].attributes.store",
    ),
    "NUL in an attribute's name": (
        Case(
            "POST",
            "/v1/orgs/{org}/contacts",
            b'{"contacts": [{"email": "a@example.com", "attributes": {"a\\u0000": 1}}]}',
        ),
        "contacts[0].attributes.a\x00",
    ),
    "NUL in a message variable": (
        Case(
            "POST",
            "/v1/orgs/{org}/messages",
            b'{"campaign_id": <campaign>, "to": {"email": "a@example.com"},'
            b' "variables": {"code": "\\u0000"}}',
        ),
        "variables.code",
    ),
    "lone low surrogate in a template": (
        Case(
            "POST",
            "/v1/orgs/{org}/templates",
            b'{"name": "t2", "channel": "sms", "text": "\\udc00 hi"}',
        ),
        "text",
    ),
    "NUL in a webhook field": (
        Case(
            "POST",
            "/v1/orgs/{org}/webhooks",
            b'{"url": "https://hooks.example/\\u0000", "events": ["message.sent"]}',
        ),
        "url",
    ),
    "body not UTF-8": (Case("POST", "/v1/orgs/{org}/lists", b'{"name": "caf\xe9"}'), "body"),
    "body with a UTF-8-encoded surrogate": (
        Case("POST", "/v1/orgs/{org}/lists", b'{"name": "\xed\xa0\x80"}'),
        "body",
    ),
    "CRLF in a template's literal subject": (
        Case(
            "POST",
            "/v1/orgs/{org}/templates",
            b'{"name": "t3", "channel": "email", "subject": "Hi\\r\\nBcc: all@example.com",'
            b' "text": "x"}',
        ),
        "subject",
    ),
    "LF in a changed template's subject": (
        Case("PATCH", "/v1/orgs/{org}/templates/{template}", b'{"subject": "Hi\\nthere"}'),
        "subject",
    ),
    "CR in a single send's inline subject": (
        Case(
            "POST",
            "/v1/orgs/{org}/messages",
            b'{"channel": "email", "from_email": "a@acme.example",'
            b' "to": {"email": "a@example.com"},'
            b' "content": {"subject": "Hi\\rBcc: x@example.com", "text": "x"}}',
        ),
        "content.subject",
    ),
    "LF in a single send's sender name": (
        Case(
            "POST",
            "/v1/orgs/{org}/messages",
            b'{"campaign_id": <campaign>, "to": {"email": "a@example.com"},'
            b' "from_name": "Acme\\nBcc: x@example.com"}',
        ),
        "from_name",
    ),
}


@pytest.mark.parametrize(("case", "field"), INVALID.values(), ids=INVALID.keys())
async def test_bad_input_is_a_422_naming_the_field(
    client: httpx.AsyncClient, world: World, case: Case, field: str
) -> None:
    path, body = _filled(case, world)
    headers = {**world.org.bearer, **(JSON if body is not None else {})}
    response = await client.request(case.method, path, headers=headers, content=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["type"] == "urn:tidings:problem:invalid-input"
    assert field in [e["field"] for e in problem["errors"]], problem


async def test_a_surrogate_pair_is_one_character_and_is_kept(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        f"/v1/orgs/{world.org.id}/lists",
        headers={**world.org.bearer, **JSON},
        content=b'{"name": "party \\ud83c\\udf89"}',
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "party \U0001f389"


async def test_a_body_of_another_media_type_is_a_415(
    client: httpx.AsyncClient, world: World
) -> None:
    response = await client.post(
        f"/v1/orgs/{world.org.id}/lists",
        headers={**world.org.bearer, "Content-Type": "text/plain"},
        content=b'{"name": "L2"}',
    )
    assert response.status_code == 415, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:tidings:problem:unsupported-media-type"


class TestBodySize:
    """TIDINGS_MAX_BODY_BYTES (here 2 KiB) and TIDINGS_MAX_IMPORT_BYTES (here 4 KiB)."""

    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(
            database_url=database_url,
            auto_migrate=False,
            dispatcher=False,
            secret_key="test-secret-key-of-at-least-32-characters",
            max_body_bytes=2048,
            max_import_bytes=4096,
        )

    async def test_a_body_over_the_limit_is_a_413_before_it_is_parsed(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        big = b'{"name": "' + b"x" * 3000 + b'"}'
        response = await client.post(
            f"/v1/orgs/{world.org.id}/lists", headers={**world.org.bearer, **JSON}, content=big
        )
        assert response.status_code == 413, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "urn:tidings:problem:too-large"
        not_json = await client.post(  # refused by its size, before anything reads it
            f"/v1/orgs/{world.org.id}/lists",
            headers={**world.org.bearer, **JSON},
            content=b"{" * 3000,
        )
        assert not_json.status_code == 413, not_json.text

    async def test_a_streamed_body_is_cut_off_at_the_limit(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: chunked
            yield b'{"name": "'
            for _ in range(10):
                yield b"x" * 500
            yield b'"}'

        response = await client.post(
            f"/v1/orgs/{world.org.id}/lists", headers={**world.org.bearer, **JSON}, content=chunks()
        )
        assert response.status_code == 413, response.text

    async def test_within_the_limit_is_served(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        response = await client.post(
            f"/v1/orgs/{world.org.id}/lists",
            headers={**world.org.bearer, **JSON},
            content=b'{"name": "' + b"x" * 200 + b'"}',
        )
        assert response.status_code == 201, response.text

    async def test_the_csv_import_has_its_own_larger_limit(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        path = f"/v1/orgs/{world.org.id}/contacts/import"
        headers = {**world.org.bearer, "Content-Type": "text/csv"}
        rows = "".join(f"person{n}@example.com\n" for n in range(120))  # ~2.6 KB
        fits = await client.post(path, headers=headers, content=f"email\n{rows}".encode())
        assert fits.status_code == 200, fits.text
        assert fits.json()["created"] == 120
        rows = "".join(f"person{n}@example.com\n" for n in range(300))  # ~6.6 KB
        over = await client.post(path, headers=headers, content=f"email\n{rows}".encode())
        assert over.status_code == 413, over.text
        assert over.headers["content-type"] == "application/problem+json"


async def test_json_nested_too_deeply_to_parse_is_a_422_on_body(
    client: httpx.AsyncClient, world: World
) -> None:
    deep = b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = await client.post(
        f"/v1/orgs/{world.org.id}/lists", headers={**world.org.bearer, **JSON}, content=deep
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [{"field": "body", "reason": "nested too deeply"}]
