"""Every dialect answers every error in its own documented shape, never problem+json:
what reaches no route under its base URL (404), a method its path does not take (405),
a body of another media type (415) or too large (413), input it cannot use (ids past
64 bits, date-times past 9999, NUL, bodies that are not UTF-8), and what the shape
function itself is given for the rest (429, 500, 503)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import httpx
import pytest
from fastapi import Response
from pydantic import BaseModel

from tests.support.factories import OrgWithKey, make_org
from tidings.compat import infobip, invent, octopush, walr
from tidings.compat.routing import Failure
from tidings.db.engine import Database
from tidings.errors import FieldError
from tidings.settings import Settings

BIG = str(2**63)
LATE = "9999-12-31T23:59:59-01:00"  # year 10000 in UTC


@dataclass(frozen=True)
class Dialect:
    module: ModuleType
    send: str  # the path of its sending route; {org} is the org's id
    auth: Callable[[OrgWithKey], dict[str, str]]

    @property
    def base(self) -> str:
        base: str = self.module.router.prefix
        return base

    def error(self, body: object) -> BaseModel:
        """The body parsed as the dialect's documented error: fails if it is not one."""
        model: type[BaseModel] = self.module.router.responses[401]["model"]
        return model.model_validate(body)


DIALECTS = {
    "walr": Dialect(walr, "/compat/walr/projects/p/surveys/s/invites", lambda o: o.bearer),
    "octopush": Dialect(octopush, "/compat/octopush/email/campaign/send", lambda o: o.header_pair),
    "invent": Dialect(invent, "/compat/invent/orgs/{org}/broadcasts", lambda o: o.bearer),
    "infobip": Dialect(
        infobip,
        "/compat/infobip/omnichat/1/applications/K/integrations/FACEBOOK/invite",
        lambda o: o.basic,
    ),
}
each = pytest.mark.parametrize("dialect", DIALECTS.values(), ids=DIALECTS.keys())


def _in_its_shape(dialect: Dialect, response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json", response.headers
    body: dict[str, Any] = response.json()
    dialect.error(body)
    return body


@pytest.fixture
async def org(db: Database) -> OrgWithKey:
    return await make_org(db)


@each
async def test_a_path_no_route_serves_is_a_404_in_its_shape(
    client: httpx.AsyncClient, org: OrgWithKey, dialect: Dialect
) -> None:
    response = await client.get(f"{dialect.base}/no/such/thing", headers=dialect.auth(org))
    _in_its_shape(dialect, response, 404)


@each
async def test_a_method_the_path_does_not_take_is_a_405_in_its_shape(
    client: httpx.AsyncClient, org: OrgWithKey, dialect: Dialect
) -> None:
    path = dialect.send.format(org=org.id)
    response = await client.delete(path, headers=dialect.auth(org))
    _in_its_shape(dialect, response, 405)
    assert "POST" in response.headers["allow"]


@each
async def test_a_body_of_another_media_type_is_refused_in_its_shape(
    client: httpx.AsyncClient, org: OrgWithKey, dialect: Dialect
) -> None:
    if dialect.module is octopush:
        pytest.skip("seed 001 is lenient: it reads any body as JSON (docs/compat.md)")
    path = dialect.send.format(org=org.id)
    headers = {**dialect.auth(org), "Content-Type": "application/xml"}
    response = await client.post(path, headers=headers, content=b"<invite/>")
    _in_its_shape(dialect, response, 415)


@each
async def test_a_body_that_is_not_utf8_is_refused_in_its_shape(
    client: httpx.AsyncClient, org: OrgWithKey, dialect: Dialect
) -> None:
    path = dialect.send.format(org=org.id)
    headers = {**dialect.auth(org), "Content-Type": "application/json"}
    response = await client.post(path, headers=headers, content=b'{"name": "caf\xe9"}')
    _in_its_shape(dialect, response, 400)  # each dialect answers bad input with its 400


# A NUL where each dialect keeps a string (seed 001 strips control characters instead).
NUL_BODIES = {
    "walr": b'{"campaignId": "c\\u0000", "recipients": []}',
    "invent": b'{"name": "spring\\u0000", "send_to_all": true}',
    "infobip": b'{"to": "41793026727", "linkPlaceholder": "<l>", "message": "\\ud800 <l>"}',
}


@pytest.mark.parametrize("name", NUL_BODIES)
async def test_nul_or_a_lone_surrogate_is_refused_in_its_shape(
    client: httpx.AsyncClient, org: OrgWithKey, name: str
) -> None:
    dialect = DIALECTS[name]
    headers = {**dialect.auth(org), "Content-Type": "application/json"}
    path = dialect.send.format(org=org.id)
    response = await client.post(path, headers=headers, content=NUL_BODIES[name])
    body = _in_its_shape(dialect, response, 400)
    assert any(field in json.dumps(body) for field in ("campaignId", "name", "message")), body


class TestBodySize:
    @pytest.fixture
    def settings(self, database_url: str) -> Settings:
        return Settings(
            database_url=database_url,
            auto_migrate=False,
            dispatcher=False,
            secret_key="test-secret-key-of-at-least-32-characters",
            max_body_bytes=2048,
        )

    @each
    async def test_a_body_over_the_limit_is_a_413_in_its_shape(
        self, client: httpx.AsyncClient, org: OrgWithKey, dialect: Dialect
    ) -> None:
        path = dialect.send.format(org=org.id)
        headers = {**dialect.auth(org), "Content-Type": "application/json"}
        big = b'{"name": "' + b"x" * 3000 + b'"}'
        response = await client.post(path, headers=headers, content=big)
        _in_its_shape(dialect, response, 413)


async def test_walr_send_time_past_9999_is_a_400_naming_it(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    response = await client.post(
        DIALECTS["walr"].send,
        headers=org.bearer,
        json={"campaignId": "c", "recipients": [], "sendTimeUtc": LATE},
    )
    body = _in_its_shape(DIALECTS["walr"], response, 400)
    assert "sendTimeUtc" in body["error"]


async def test_invent_ids_past_64_bits_and_late_dates_are_refused_in_its_shape(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    dialect, base = DIALECTS["invent"], f"/compat/invent/orgs/{org.id}/broadcasts"
    got = await client.get(f"{base}/{BIG}", headers=org.bearer)
    assert _in_its_shape(dialect, got, 404)["error"]["code"] == "NOT_FOUND"
    for body, field in (
        ({"name": "n", "segment_ids": [BIG]}, "segment_ids"),
        ({"name": "n", "send_to_all": True, "campaign_id": int(BIG)}, "campaign_id"),
        ({"name": "n", "send_to_all": True, "scheduled_at": LATE}, "scheduled_at"),
    ):
        created = await client.post(base, headers=org.bearer, json=body)
        error = _in_its_shape(dialect, created, 400)["error"]
        assert error["code"] == "BAD_REQUEST"
        assert field in error["message"]
    other_org = await client.get(f"/compat/invent/orgs/{BIG}/broadcasts", headers=org.bearer)
    assert _in_its_shape(dialect, other_org, 403)["error"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize("message_id", [BIG, "0", "²", "-1", "12a"])
async def test_infobip_logs_of_an_id_that_names_nothing_are_empty(
    client: httpx.AsyncClient, org: OrgWithKey, message_id: str
) -> None:
    response = await client.get(
        "/compat/infobip/sms/1/logs", params={"messageId": message_id}, headers=org.basic
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"results": []}


async def test_octopush_ignores_a_send_at_past_9999_and_sends_now(
    client: httpx.AsyncClient, org: OrgWithKey
) -> None:
    for send_at in (LATE, "99999999999999999999", "²"):
        response = await client.post(
            DIALECTS["octopush"].send,
            headers=org.header_pair,
            json={
                "recipients": [{"email": "ada@example.com"}],
                "text": "Hello",
                "subject": "Hi",
                "email_from": "news@acme.example",
                "send_at": send_at,
            },
        )
        assert response.status_code == 200, (send_at, response.text)
        assert response.json()["number_of_contacts"] == 1


SHAPED = [404, 405, 409, 413, 415, 429, 500, 503]


@each
@pytest.mark.parametrize("status", SHAPED)
def test_the_shape_answers_every_status_in_the_documented_body(
    dialect: Dialect, status: int
) -> None:
    kinds = {404: "not-found", 405: "method-not-allowed", 409: "conflict", 413: "too-large",
             415: "unsupported-media-type", 500: "internal-error", 503: "unavailable"}  # fmt: skip
    shape: Callable[[Failure], Response] = dialect.module.error_shape
    response = shape(Failure(status, kinds.get(status, "http"), "what happened"))
    assert response.status_code == status
    dialect.error(json.loads(bytes(response.body)))


@each
def test_invalid_input_is_the_dialects_400(dialect: Dialect) -> None:
    shape: Callable[[Failure], Response] = dialect.module.error_shape
    failure = Failure(422, "invalid-input", "name: bad", [FieldError("name", "bad")])
    response = shape(failure)
    assert response.status_code == 400
    dialect.error(json.loads(bytes(response.body)))


@each
async def test_json_nested_too_deeply_is_its_bad_request(
    client: httpx.AsyncClient, org: OrgWithKey, dialect: Dialect
) -> None:
    path = dialect.send.format(org=org.id)
    headers = {**dialect.auth(org), "Content-Type": "application/json"}
    deep = b'{"name": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = await client.post(path, headers=headers, content=deep)
    _in_its_shape(dialect, response, 400)
