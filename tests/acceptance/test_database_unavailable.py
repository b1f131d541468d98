"""While the database cannot be reached, the API answers 503 with Retry-After — in
problem+json natively, in each dialect's own shape under /compat — never a 500 or a
dropped connection; liveness stays up and readiness says not ready."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from tidings.app import create_app
from tidings.settings import Settings

KEY = "tdg_live_" + "x" * 43  # well formed: authenticating it needs the database


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens there once it is closed


@pytest.fixture
async def unreachable() -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        database_url=f"postgresql+asyncpg://tidings@127.0.0.1:{_closed_port()}/tidings",
        auto_migrate=False,
        dispatcher=False,
        secret_key="unavailable-test-secret-key-of-32-characters",
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield http


async def test_native_routes_answer_503_with_retry_after(
    unreachable: httpx.AsyncClient,
) -> None:
    bearer = {"Authorization": f"Bearer {KEY}"}
    for method, path in (("GET", "/v1/orgs/1/contacts"), ("POST", "/v1/orgs/1/lists")):
        response = await unreachable.request(method, path, headers=bearer, json={"name": "x"})
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "5"
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "urn:tidings:problem:unavailable"


async def test_a_dialect_answers_503_in_its_own_shape(unreachable: httpx.AsyncClient) -> None:
    response = await unreachable.post(
        "/compat/walr/projects/p/surveys/s/invites",
        headers={"Authorization": f"Bearer {KEY}"},
        json={"campaignId": "c", "recipients": []},
    )
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "5"
    assert response.json() == {
        "error": "the database cannot be reached right now; retry shortly",
        "statusCode": 503,
    }


async def test_liveness_stays_up_and_readiness_says_not_ready(
    unreachable: httpx.AsyncClient,
) -> None:
    assert (await unreachable.get("/healthz")).status_code == 200
    assert (await unreachable.get("/readyz")).status_code == 503
