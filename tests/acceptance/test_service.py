"""The service's own endpoints: health, readiness, the OpenAPI document and /docs."""

from __future__ import annotations

from pathlib import Path

import httpx

from tidings.app import create_app
from tidings.db import migrate
from tidings.db.engine import Database
from tidings.settings import Settings


async def test_healthz_and_readyz(client: httpx.AsyncClient, db: Database) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["revision"] == migrate.head()
    assert ready.json()["database"] == db.dialect


async def test_readyz_fails_on_an_unmigrated_database(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}", dispatcher=False
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/readyz")
    assert response.status_code == 503
    assert "expected" in response.json()["database"]


async def test_openapi_documents_auth_and_examples(client: httpx.AsyncClient, db: Database) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    assert {s["type"] for s in schemes.values()} >= {"http", "apiKey"}
    upsert = spec["paths"]["/v1/orgs/{org_id}/contacts"]["post"]
    body_ref = upsert["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body_schema = spec["components"]["schemas"][body_ref.rsplit("/", 1)[1]]
    assert body_schema["examples"][0]["contacts"][0]["email"] == "ada@example.com"
    imported = spec["paths"]["/v1/orgs/{org_id}/contacts/import"]["post"]
    assert "text/csv" in imported["requestBody"]["content"]
    docs = await client.get("/docs")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


async def test_unknown_routes_answer_problem_json(client: httpx.AsyncClient, db: Database) -> None:
    response = await client.get("/v1/nowhere")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
